# The README's two commands: `make run` and `make test`. Each sets up .venv by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck bench clean

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
	$(BIN)/haima ingest docs -c haima-docs --keyword --path ./haima_data
	@echo
	@echo "Serving ./haima_data on http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs)"
	@echo "In another terminal, try:"
	@echo "  $(BIN)/haima search 'how do filters stay correct at low selectivity' -c haima-docs --mode hybrid"
	@echo "  $(BIN)/haima search '中文分词' -c haima-docs --mode keyword"
	@echo
	$(BIN)/haima run --path ./haima_data --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check haima tests benchmarks
	$(BIN)/ruff format --check haima tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy haima

test: lint typecheck
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/core.py

clean:
	rm -rf $(VENV) haima_data .pytest_cache .mypy_cache .ruff_cache

# A longer fuzzing of the HTTP API than the test run's (docs/server.md, "OpenAPI and
# fuzzing"): about 15 minutes. Prints the counts; writes fuzz-report.json.
HAIMA_FUZZ_EXAMPLES ?= 300
.PHONY: fuzz
fuzz: $(STAMP)
	HAIMA_FUZZ_EXAMPLES=$(HAIMA_FUZZ_EXAMPLES) HAIMA_FUZZ_REPORT=fuzz-report.json \
		$(BIN)/python -m pytest -q -s -rxX --timeout=0 tests/test_fuzz_http.py
