# The README's two commands: `make run` and `make test`. Each sets up .venv by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
SUITE_VENV := .venv-chroma-suite
SUITE_STAMP := $(SUITE_VENV)/.installed

# An editable install compiles nothing, and where PYTHONDONTWRITEBYTECODE is set no import
# writes bytecode either: every `haima` process (the tests start hundreds) would compile
# its ~80 modules again, 0.25 s of a server's start. A wheel install compiles them; `run`
# and `test` do (only what changed).
COMPILE := $(BIN)/python -m compileall -q haima

.PHONY: run test lint typecheck bench clean chroma-suite

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first, so that sentence-transformers never pulls a CUDA one.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

RUN_STAMP := $(VENV)/.installed-run

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,rag]'
	touch $(RUN_STAMP)

# Ingest the project's own docs (incrementally: a second run re-ingests nothing), then serve.
run: $(RUN_STAMP)
	$(COMPILE)
	$(BIN)/haima ingest docs -c haima-docs --path ./haima_data
	@echo
	@echo "Serving ./haima_data on http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs)"
	@echo "In another terminal, try:"
	@echo "  $(BIN)/haima search 'how do filters stay correct at low selectivity' -c haima-docs      # hybrid by default"
	@echo "  $(BIN)/haima search '中文分词' -c haima-docs --mode keyword"
	@echo
	$(BIN)/haima run --path ./haima_data --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check haima tests benchmarks
	$(BIN)/ruff format --check haima tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy haima

test: lint typecheck $(SUITE_STAMP)
	$(COMPILE)
	$(BIN)/python -m pytest -q
	$(BIN)/python tests/chroma_suite/run.py --suite-python $(SUITE_VENV)/bin/python

# Chroma's own property suite against `haima run`, in its own environment (its conftest
# needs pytest < 9). `make test` runs a small profile; this one the larger.

$(SUITE_STAMP): tests/chroma_suite/requirements.txt
	$(PYTHON) -m venv $(SUITE_VENV)
	$(SUITE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SUITE_VENV)/bin/python -m pip install --quiet -r tests/chroma_suite/requirements.txt
	touch $(SUITE_STAMP)

chroma-suite: $(STAMP) $(SUITE_STAMP)
	$(BIN)/python tests/chroma_suite/run.py --suite-python $(SUITE_VENV)/bin/python --full

bench: $(STAMP)
	$(BIN)/python benchmarks/core.py

# Issue 19's long runs, kept out of `make test`. torture: 100 rounds of SIGKILL at a random
# moment for an embedded writer and 50 for `haima run` under four writing clients, each
# followed by a full check of the store. soak: RSS and throughput under 200,000 mixed
# queries in-process and 20,000 over HTTP (prints the curves).
.PHONY: torture soak
torture: $(STAMP)
	HAIMA_TORTURE_ROUNDS=100 HAIMA_TORTURE_SERVER_ROUNDS=50 \
		$(BIN)/python -m pytest -q -s tests/test_torture.py tests/test_torture_server.py

soak: $(STAMP)
	HAIMA_SOAK=1 $(BIN)/python -m pytest -q -s tests/test_memory.py

clean:
	rm -rf $(VENV) $(SUITE_VENV) haima_data .pytest_cache .mypy_cache .ruff_cache

# A longer fuzzing of the HTTP API than the test run's (docs/server.md, "OpenAPI and
# fuzzing"): about 15 minutes. Prints the counts; writes fuzz-report.json.
HAIMA_FUZZ_EXAMPLES ?= 300
.PHONY: fuzz
fuzz: $(STAMP)
	HAIMA_FUZZ_EXAMPLES=$(HAIMA_FUZZ_EXAMPLES) HAIMA_FUZZ_REPORT=fuzz-report.json \
		$(BIN)/python -m pytest -q -s -rxX --timeout=0 tests/test_fuzz_http.py
