"""Hostile input over HTTP: schemathesis generates requests from the server's own
`/openapi.json` and sends them to a real `haima run`; every response must be no server
error, have a documented status, and match the documented schema.

The run (tests/helpers/fuzz.py) has three parts: every operation through schemathesis'
phases (the document's examples, boundary values, generated requests, and stateful
sequences that follow the document's links from created tenants, databases and
collections); then the coverage and fuzzing phases on each of a few prepared
collections. Its failures are sorted into classes: the engine bugs of issue 19 in
`KNOWN_ENGINE_BUGS` (known before) and `FOUND_ENGINE_BUGS` (found by this fuzzing), all
fixed, each with a regression test that runs its reproduction and fails if the fuzz run
shows it again, and everything else, which fails `test_fuzzing_found_nothing_unexplained`.

Budget: HAIMA_FUZZ_EXAMPLES examples per operation and phase (default 25, about two
minutes here), HAIMA_FUZZ_SEED; HAIMA_FUZZ_REPORT names a JSON file for the counts and
one reproduction per failure class. `make fuzz` runs this file with a larger budget.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("schemathesis")

from tests.helpers import fuzz
from tests.helpers.fuzz import Exchange, FuzzRun, Targets
from tests.helpers.server import ServerProcess

EXAMPLES = int(os.environ.get("HAIMA_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("HAIMA_FUZZ_SEED", "20241"))
REPORT = os.environ.get("HAIMA_FUZZ_REPORT")

pytestmark = pytest.mark.slow

#: An environment variable of the server that no request may make it send anywhere.
CANARY_ENV, CANARY = "HAIMA_FUZZ_CANARY", "canary-6f1d2e"
#: Seconds to wait for an answer before calling a request stuck.
HANG = 10

API = "/api/v2"
PREPARED = f"{API}/tenants/{fuzz.TENANT}/databases/{fuzz.DATABASE}/collections"


# -- failure classes ----------------------------------------------------------------------


@dataclass(frozen=True)
class KnownBug:
    """An engine bug being fixed elsewhere: how the fuzz run shows it, and a request that
    shows it every time (`check` asserts the fixed behaviour)."""

    name: str
    reason: str
    #: Whether a failed exchange of the fuzz run is this bug (None: checks cannot see it).
    seen: Callable[[Exchange], bool] | None
    check: Callable[[Fixture], None]
    #: Whether a server crash is this bug, from the requests that led to it.
    crashed: Callable[[Crash], bool] | None = None


@dataclass(frozen=True)
class Crash:
    """The server process died: its exit code, the requests before, its log's end."""

    exit_code: int
    before: tuple[Exchange, ...]
    log: str

    def describe(self) -> str:
        last = "\n".join(e.describe() for e in self.before[-3:])
        return f"exit code {self.exit_code} after:\n{last}\nlog: ...{self.log[-800:]}"


@dataclass(frozen=True)
class Fixture:
    """What a reproduction needs: the server and the prepared collections (the first of
    dimension 3, the third with a keyword index)."""

    server: ServerProcess
    targets: Targets

    def post(
        self, path: str, raw: bytes, collection: int = 0, timeout: float = 60
    ) -> httpx.Response:
        url = f"{self.server.url}{PREPARED}/{self.targets.collection_ids[collection]}{path}"
        headers = {"content-type": "application/json"}
        return httpx.post(url, content=raw, headers=headers, timeout=timeout)

    def create(self, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.server.url}{PREPARED}", json=body, timeout=60)


def _server_error(*needles: str) -> Callable[[Exchange], bool]:
    return lambda e: e.status == 500 and all(n in e.response for n in needles)


def _rejected(response: httpx.Response) -> None:
    assert response.status_code == 400, (response.status_code, response.text)


def _check_surrogates(f: Fixture) -> None:
    for body in (
        rb'{"ids": ["s1"], "embeddings": [[1, 2, 3]], "documents": ["\ud800"]}',
        rb'{"ids": ["\ud800"], "embeddings": [[1, 2, 3]]}',
        rb'{"ids": ["s2"], "embeddings": [[1, 2, 3]], "metadatas": [{"k": "a\udfff"}]}',
        rb'{"ids": ["s3"], "embeddings": [[1, 2, 3]], "metadatas": [{"\ud800": 1}]}',
    ):
        _rejected(f.post("/add", body))


def _check_big_ints(f: Fixture) -> None:
    big = str(2**64).encode()
    _rejected(
        f.post(
            "/add", b'{"ids": ["b1"], "embeddings": [[1, 2, 3]], "metadatas": [{"k": %s}]}' % big
        )
    )
    _rejected(
        f.post(
            "/add", b'{"ids": ["b2"], "embeddings": [[1, 2, 3]], "metadatas": [{"k": [%s]}]}' % big
        )
    )
    _rejected(f.post("/get", b'{"limit": %s}' % big))
    _rejected(f.post("/get", b'{"offset": %s}' % big))
    _rejected(httpx.get(f"{f.server.url}{PREPARED}?limit={2**64}"))


def _check_many_leaves(f: Fixture) -> None:
    where = {"$or": [{"n": i} for i in range(1500)]}
    response = f.post("/get", json.dumps({"where": where}).encode())
    # Answering and refusing are both fine; a 500 is not.
    assert response.status_code in (200, 400), (response.status_code, response.text)


def _check_deep_json(f: Fixture) -> None:
    depth = 5000
    _rejected(f.post("/get", b'{"where": ' + b"[" * depth + b"]" * depth + b"}"))
    _rejected(f.post("/get", b"[" * depth + b"]" * depth))


def _check_nul_in_ids(f: Fixture) -> None:
    added = f.post("/add", rb'{"ids": ["n\u0000l"], "embeddings": [[1, 2, 3]]}')
    if added.status_code == 400:
        return  # refusing NUL is a fix too
    assert added.status_code == 200, added.text
    found = f.post("/get", rb'{"ids": ["n\u0000l"]}').json()["ids"]
    assert found == ["n\x00l"], f"the id written is not found by itself: {found}"


def _check_keep_alive(f: Fixture) -> None:
    """An unexpected error (here: a collection damaged on disk) answers 500; the next
    request on the same connection must be answered too."""
    created = httpx.post(
        f"{f.server.url}{PREPARED}", json={"name": "damaged", "get_or_create": True}
    ).json()
    with sqlite3.connect(f.server.path / "haima.sqlite3", timeout=30) as db:
        db.execute("UPDATE collections SET configuration = '{}' WHERE id = ?", (created["id"],))
    connection = http.client.HTTPConnection("127.0.0.1", f.server.port, timeout=30)
    try:
        connection.request("GET", f"{PREPARED}/by-id/{created['id']}")
        first = connection.getresponse()
        first.read()
        assert first.status == 500, "the damaged collection no longer makes an internal error"
        connection.request("GET", f"{API}/heartbeat")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def _check_negative_limit(f: Fixture) -> None:
    _rejected(httpx.get(f"{f.server.url}{API}/tenants/{fuzz.TENANT}/databases?limit=-5"))


def _check_slash_in_names(f: Fixture) -> None:
    _rejected(httpx.post(f"{f.server.url}{API}/tenants", json={"name": "a/b"}))
    _rejected(
        httpx.post(f"{f.server.url}{API}/tenants/{fuzz.TENANT}/databases", json={"name": "c/d"})
    )


def _check_hnsw_degree(f: Fixture) -> None:
    # Only creation: with the bug, adding records to such a collection kills the server.
    for configuration in (
        {"index": {"type": "hnsw", "max_neighbors": 1}},
        {"index": {"type": "hnsw", "M": 1}},
        {"hnsw": {"max_neighbors": 1}, "index": {"type": "hnsw"}},
    ):
        _rejected(f.create({"name": "degree-one", "configuration": configuration}))


def _check_c_int_settings(f: Fixture) -> None:
    for setting in ("num_threads", "ef_search", "ef_construction", "max_neighbors"):
        configuration = {"index": {"type": "hnsw", setting: 2**31}}
        _rejected(f.create({"name": f"big-{setting}", "configuration": configuration}))


def _keyword_collection(f: Fixture, name: str) -> str:
    """A collection of its own with a keyword index (the fuzz run may have deleted the
    prepared ones), holding one document."""
    created = f.create({"name": name, "configuration": {"keyword": {"enabled": True}}})
    assert created.status_code == 200, created.text
    url = f"{f.server.url}{PREPARED}/{created.json()['id']}"
    added = httpx.post(
        f"{url}/add",
        json={"ids": ["fox"], "embeddings": [[1.0, 0.0]], "documents": ["the quick fox"]},
        timeout=60,
    )
    assert added.status_code == 200, added.text
    return url


def _check_nul_in_keyword_query(f: Fixture) -> None:
    url = _keyword_collection(f, "nul-keyword")
    raw = rb'{"query_texts": ["fox\u0000"], "mode": "keyword", "n_results": 2}'
    response = httpx.post(f"{url}/query", content=raw, timeout=60)
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.json()["ids"] == [["fox"]]


def _check_query_texts_type(f: Fixture) -> None:
    url = _keyword_collection(f, "texts-type")
    for mode in ("vector", "keyword", "hybrid"):
        body = {"query_texts": 0, "mode": mode, "n_results": 2}
        _rejected(httpx.post(f"{url}/query", json=body, timeout=60))


def _check_name_with_newline(f: Fixture) -> None:
    # Python's `$` matches before a final newline, so the name pattern lets "abc\n" in.
    _rejected(f.create({"name": "abc\n"}))


def _check_embedding_spec_secrets(f: Fixture) -> None:
    """A client may not make the server send its environment to a URL of the client's
    choosing (the spec's base_url and api_key_env)."""
    heard: list[str] = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            heard.append(str(self.headers.get("Authorization")))
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    listener = http.server.HTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    try:
        spec = {
            "provider": "openai",
            "model": "m",
            "base_url": f"http://127.0.0.1:{listener.server_address[1]}/v1",
            "api_key_env": CANARY_ENV,
            "max_retries": 0,
        }
        created = f.create({"name": "leaky", "configuration": {"embedding_function": spec}})
        if created.status_code == 200:
            url = f"{f.server.url}{PREPARED}/{created.json()['id']}/add"
            httpx.post(url, json={"ids": ["x"], "documents": ["hello"]}, timeout=60)
    finally:
        listener.shutdown()
        listener.server_close()
    assert not any(CANARY in h for h in heard), f"the server sent {CANARY_ENV} to the client"


def _check_regex_backtracking(f: Fixture) -> None:
    """A pattern with nested quantifiers over a document that almost matches: Python's
    `re` backtracks for hours (2^40 steps). The deadline detects a hang, not speed: a
    linear-time engine (RE2) answers in milliseconds."""
    document = "a" * 40 + "!"
    added = f.post(
        "/add",
        json.dumps({"ids": ["redos"], "documents": [document], "embeddings": [[1, 2, 3]]}).encode(),
    )
    assert added.status_code == 200, added.text
    try:
        response = f.post("/get", rb'{"where_document": {"$regex": "(a+)+$"}}', timeout=HANG)
    except httpx.TimeoutException:
        pytest.fail(f"no answer within {HANG} s: the request's thread is stuck in the regex")
    assert response.status_code in (200, 400), response.text


#: Engine bugs known before this fuzzing (issue 19), fixed in validation, filters, storage
#: and the app; their regression tests stay.
KNOWN_ENGINE_BUGS = (
    KnownBug(
        "lone-surrogates",
        "a string with a lone UTF-16 surrogate (JSON '\\ud800') in ids, documents or "
        "metadata reaches SQLite's UTF-8 encoder: 500 UnicodeEncodeError",
        _server_error("surrogates not allowed"),
        _check_surrogates,
    ),
    KnownBug(
        "integers-beyond-64-bits",
        "an integer outside SQLite's 64-bit range in metadata, limit or offset: 500 OverflowError",
        _server_error("OverflowError", "SQLite INTEGER"),
        _check_big_ints,
    ),
    KnownBug(
        "where-over-1000-leaves",
        "a where filter of 1,500 conditions: 500 'Expression tree is too large'",
        _server_error("Expression tree is too large"),
        _check_many_leaves,
    ),
    KnownBug(
        "json-nested-1000-deep",
        "a body nested 5,000 deep: 500 RecursionError from the JSON parser",
        _server_error("RecursionError"),
        _check_deep_json,
    ),
    KnownBug(
        "nul-in-ids",
        "an id with a NUL character is stored, but looking it up by id finds nothing",
        None,
        _check_nul_in_ids,
    ),
    KnownBug(
        "keep-alive-after-500",
        "after an unexpected error's 500 the server resets the kept-alive connection",
        lambda e: e.status is None and e.previous_status == 500,
        _check_keep_alive,
    ),
    KnownBug(
        "negative-limit-on-list-databases",
        "GET .../databases?limit=-5 answers 200 (a Python slice) instead of 400",
        None,
        _check_negative_limit,
    ),
    KnownBug(
        "slash-in-tenant-and-database-names",
        "tenants and databases named 'a/b' are created, and no route can address them",
        None,
        _check_slash_in_names,
    ),
)


def _sets_degree_one(crash: Crash) -> bool:
    degree_one = re.compile(rb'"(M|max_neighbors)": ?1[,}]')
    return any(e.body is not None and degree_one.search(e.body) for e in crash.before)


#: Engine bugs this fuzzing found, fixed in config validation (HNSW degree, C-int
#: bounds), the keyword index, query_texts checks, the name pattern and the server's rule
#: for embedding APIs (`--allow-embedding-url`); their regression tests stay.
FOUND_ENGINE_BUGS = (
    KnownBug(
        "hnsw-degree-1-kills-the-server",
        "max_neighbors (M) = 1 is accepted; building the HNSW graph then crashes FAISS "
        "(SIGSEGV) and the whole server with it",
        None,
        _check_hnsw_degree,
        crashed=_sets_degree_one,
    ),
    KnownBug(
        "index-settings-beyond-c-int",
        "num_threads, ef_search, ef_construction or max_neighbors over 2^31-1 is stored; "
        "FAISS then refuses it on every query or index build: 500 OverflowError/TypeError",
        lambda e: (
            e.status == 500
            and (
                "argument 2 of type 'int'" in e.response
                or "omp_set_num_threads" in e.response
                or "new_IndexHNSW" in e.response
            )
        ),
        _check_c_int_settings,
    ),
    KnownBug(
        "nul-in-keyword-query",
        "a NUL character in query_texts of a keyword or hybrid query reaches FTS5: 500 "
        "OperationalError 'unterminated string'",
        _server_error("unterminated string"),
        _check_nul_in_keyword_query,
    ),
    KnownBug(
        "query-texts-not-a-list",
        "query_texts that is neither a string nor a list (0, false) reaches list() in "
        "Collection._text_query: 500 TypeError",
        _server_error("TypeError", "object is not iterable"),
        _check_query_texts_type,
    ),
    KnownBug(
        "collection-name-with-trailing-newline",
        "the collection name pattern ends in `$`, which matches before a final newline",
        None,
        _check_name_with_newline,
    ),
    KnownBug(
        "embedding-spec-sends-secrets-anywhere",
        "configuration.embedding_function from any client may name a base_url and an "
        "api_key_env: the server then posts documents, with that variable's value as a "
        "bearer token, to the client's URL",
        None,
        _check_embedding_spec_secrets,
    ),
    # Last: the stuck thread keeps a core busy until the module's server is killed.
    KnownBug(
        "regex-backtracking-hangs-a-worker",
        "where_document $regex runs Python's backtracking `re`: '(a+)+$' over 40 'a's "
        "and a '!' keeps a worker thread busy for hours",
        None,
        _check_regex_backtracking,
    ),
)


def known_bug_of(exchange: Exchange) -> str | None:
    for bug in (*KNOWN_ENGINE_BUGS, *FOUND_ENGINE_BUGS):
        if bug.seen is not None and bug.seen(exchange):
            return bug.name
    return None


def crash_bug_of(crash: Crash) -> str | None:
    for bug in (*KNOWN_ENGINE_BUGS, *FOUND_ENGINE_BUGS):
        if bug.crashed is not None and bug.crashed(crash):
            return bug.name
    return None


# -- the run ------------------------------------------------------------------------------


@dataclass
class Fuzzed:
    run: FuzzRun
    fixture: Fixture
    #: Each time the server process died (it is started again to go on).
    crashes: list[Crash]


def _start(root: Path) -> ServerProcess:
    # A small body limit, so that 413 is reachable too; a secret a request must not leak.
    return ServerProcess(
        root / "store", "--max-request-mb", "4", "--no-access-log", env={CANARY_ENV: CANARY}
    ).start()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    server = _start(root)
    try:
        targets = fuzz.prepare_targets(server.url)
        run = FuzzRun()
        crashes: list[Crash] = []
        # The prepared collections first: the whole API's run may delete them.
        passes = [
            fuzz.collection_config(
                examples=EXAMPLES, seed=SEED, targets=targets, collection_id=collection_id
            )
            for collection_id in targets.collection_ids
        ] + [fuzz.api_config(examples=EXAMPLES, seed=SEED, targets=targets)]
        for config in passes:
            fuzz.run_schemathesis(server.url, config, run)
            if server.process is not None and server.process.poll() is not None:
                log = server.log.read_text(errors="replace")[-3000:]
                crashes.append(Crash(server.process.returncode, tuple(run.history), log))
                server = _start(root)
        print(f"\nfuzzing ({EXAMPLES} examples, seed {SEED}):\n{run.summary()}")
        if REPORT:
            _write_report(Path(REPORT), run, crashes)
        # The reproductions get collections of their own: the run may have deleted any.
        checks = fuzz.prepare_targets(server.url, suffix="-checks")
        yield Fuzzed(run, Fixture(server, checks), crashes)
    finally:
        server.kill()


def _classes(run: FuzzRun, crashes: list[Crash]) -> dict[str, list[Exchange]]:
    """Failures by class: a known bug's name, or the operation, status and first words
    of the response of anything else. A crash counts as its last request."""
    classes: dict[str, list[Exchange]] = {}
    for crash in crashes:
        name = crash_bug_of(crash) or f"new: the server died ({crash.exit_code})"
        classes.setdefault(name, []).extend(crash.before[-1:])
    for exchange in run.failures:
        if exchange.failed_checks == ("no_response",) and any(
            exchange is crash.before[-1] for crash in crashes
        ):
            continue  # counted with its crash
        name = known_bug_of(exchange)
        if name is None:
            words = re.sub(r"\d+", "N", exchange.response[:90])
            name = f"new: {exchange.operation} -> {exchange.status}: {words}"
        classes.setdefault(name, []).append(exchange)
    return classes


def _statuses_by_operation(run: FuzzRun) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for (_, operation, status), count in sorted(run.by_operation.items(), key=str):
        row = table.setdefault(operation, {})
        row[str(status)] = row.get(str(status), 0) + count
    return table


def _write_report(path: Path, run: FuzzRun, crashes: list[Crash]) -> None:
    report: dict[str, Any] = {
        "examples": EXAMPLES,
        "seed": SEED,
        "requests": run.requests,
        "requests_by_phase": dict(run.by_phase),
        "statuses": {str(k): v for k, v in sorted(run.by_status.items(), key=str)},
        "statuses_by_operation": _statuses_by_operation(run),
        "server_errors": run.server_errors,
        "schema_violations": run.schema_violations,
        "failing_requests": len(run.failures),
        "run_errors": run.errors,
        "crashes": [crash.describe() for crash in crashes],
        "classes": {
            name: {"count": len(found), "smallest": fuzz.smallest(found).describe()}
            for name, found in _classes(run, crashes).items()
        },
    }
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))


# -- the tests ----------------------------------------------------------------------------


def test_fuzzing_found_nothing_unexplained(fuzzed: Fuzzed) -> None:
    """No server crash, no run error, and every failed check is a known engine bug."""
    classes = _classes(fuzzed.run, fuzzed.crashes)
    unexplained = {k: v for k, v in classes.items() if k.startswith("new: ")}
    report = "\n\n".join(
        f"{name} ({len(found)}x), e.g.:\n{fuzz.smallest(found).describe()}"
        for name, found in unexplained.items()
    )
    unexplained_crashes = [c.describe() for c in fuzzed.crashes if crash_bug_of(c) is None]
    assert not unexplained_crashes, "the server died:\n" + "\n\n".join(unexplained_crashes)
    assert not unexplained, report
    # A crash (of a known class, by now) explains the run's network errors.
    network = ("ConnectionError", "ServerUnavailable")
    errors = [e for e in fuzzed.run.errors if not (fuzzed.crashes and any(n in e for n in network))]
    assert not errors, "\n".join(errors)


def test_fuzzing_reached_the_engine(fuzzed: Fuzzed) -> None:
    """The run was not a wall of 404s: bodies reached validation and the engine on every
    record route, and the stateful phase followed links from what it created (a tenant, a
    database or a collection: which of them its steps reach depends on the sequence
    Hypothesis draws, and that varied with the tests run before in the same process)."""
    run = fuzzed.run
    assert run.requests > 1000 * min(EXAMPLES, 25) // 25
    for operation in ("add", "upsert", "update", "delete", "get", "query"):
        statuses = {
            status
            for (_, label, status), n in run.by_operation.items()
            if label.endswith(f"/{{collection_id}}/{operation}")
        }
        assert {200, 400} <= statuses, (operation, statuses)
    creates = {
        "POST /api/v2/tenants",
        "POST /api/v2/tenants/{tenant}/databases",
        "POST /api/v2/tenants/{tenant}/databases/{database}/collections",
    }
    followed = {
        (source, link, status) for (source, link, status) in run.links_followed if source in creates
    }
    assert any(status == 200 for _, _, status in followed), run.links_followed


@pytest.mark.parametrize(
    "bug",
    [pytest.param(bug, id=bug.name) for bug in (*KNOWN_ENGINE_BUGS, *FOUND_ENGINE_BUGS)],
)
def test_engine_bug_stays_fixed(fuzzed: Fuzzed, bug: KnownBug) -> None:
    """Each bug fuzzing found (all fixed): its reproduction must pass, and no request of
    the fuzz run may show it again."""
    bug.check(fuzzed.fixture)
    seen = _classes(fuzzed.run, fuzzed.crashes).get(bug.name, [])
    assert not seen, f"{len(seen)} requests, e.g.:\n{fuzz.smallest(seen).describe()}"
