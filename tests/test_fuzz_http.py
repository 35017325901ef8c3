"""Hostile input over HTTP: schemathesis generates requests from the server's own
`/openapi.json` and sends them to a real `haima run`; every response must be no server
error, have a documented status, and match the documented schema.

The run (tests/helpers/fuzz.py) has three parts: every operation through schemathesis'
phases (the document's examples, boundary values, generated requests, and stateful
sequences that follow the document's links from created tenants, databases and
collections); then the coverage and fuzzing phases on each of a few prepared
collections. Its failures are sorted into classes: the engine bugs listed in
`KNOWN_ENGINE_BUGS` (each being fixed elsewhere; each has an xfail test that passes once
it is fixed) and everything else, which fails `test_fuzzing_found_nothing_unexplained`.

Budget: HAIMA_FUZZ_EXAMPLES examples per operation and phase (default 25, about two
minutes here), HAIMA_FUZZ_SEED; HAIMA_FUZZ_REPORT names a JSON file for the counts and
one reproduction per failure class. `make fuzz` runs this file with a larger budget.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sqlite3
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


@dataclass(frozen=True)
class Fixture:
    """What a reproduction needs: the server and a collection of dimension 3."""

    server: ServerProcess
    targets: Targets

    @property
    def records(self) -> str:
        return f"{self.server.url}{PREPARED}/{self.targets.collection_ids[0]}"

    def post(self, path: str, raw: bytes) -> httpx.Response:
        headers = {"content-type": "application/json"}
        return httpx.post(self.records + path, content=raw, headers=headers, timeout=60)


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


#: Engine bugs known before this fuzzing and being fixed in validation, filters, storage
#: and the app. Their tests are xfail until then.
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


def known_bug_of(exchange: Exchange) -> str | None:
    for bug in KNOWN_ENGINE_BUGS:
        if bug.seen is not None and bug.seen(exchange):
            return bug.name
    return None


# -- the run ------------------------------------------------------------------------------


@dataclass
class Fuzzed:
    run: FuzzRun
    fixture: Fixture
    #: The requests after which the server process died, with its exit code and log tail.
    crashes: list[str]


def _start(root: Path) -> ServerProcess:
    # A small body limit, so that 413 is reachable too.
    return ServerProcess(root / "store", "--max-request-mb", "4", "--no-access-log").start()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    server = _start(root)
    try:
        targets = fuzz.prepare_targets(server.url)
        run = FuzzRun()
        crashes: list[str] = []
        passes = [fuzz.api_config(examples=EXAMPLES, seed=SEED, targets=targets)] + [
            fuzz.collection_config(
                examples=EXAMPLES, seed=SEED, targets=targets, collection_id=collection_id
            )
            for collection_id in targets.collection_ids
        ]
        for config in passes:
            fuzz.run_schemathesis(server.url, config, run)
            if server.process is not None and server.process.poll() is not None:
                last = "\n".join(e.describe() for e in list(run.history)[-3:])
                log = server.log.read_text(errors="replace")[-1500:]
                crashes.append(f"exit code {server.process.returncode} after:\n{last}\n{log}")
                server = _start(root)
        print(f"\nfuzzing ({EXAMPLES} examples, seed {SEED}):\n{run.summary()}")
        if REPORT:
            _write_report(Path(REPORT), run, crashes)
        yield Fuzzed(run, Fixture(server, targets), crashes)
    finally:
        server.kill()


def _classes(run: FuzzRun) -> dict[str, list[Exchange]]:
    """Failures by class: a known bug's name, or the operation, status and first words
    of the response of anything else."""
    classes: dict[str, list[Exchange]] = {}
    for exchange in run.failures:
        name = known_bug_of(exchange)
        if name is None:
            words = re.sub(r"\d+", "N", exchange.response[:90])
            name = f"new: {exchange.operation} -> {exchange.status}: {words}"
        classes.setdefault(name, []).append(exchange)
    return classes


def _write_report(path: Path, run: FuzzRun, crashes: list[str]) -> None:
    report: dict[str, Any] = {
        "examples": EXAMPLES,
        "seed": SEED,
        "requests": run.requests,
        "requests_by_phase": dict(run.by_phase),
        "statuses": {str(k): v for k, v in sorted(run.by_status.items(), key=str)},
        "server_errors": run.server_errors,
        "schema_violations": run.schema_violations,
        "failing_requests": len(run.failures),
        "run_errors": run.errors,
        "crashes": crashes,
        "classes": {
            name: {"count": len(found), "smallest": fuzz.smallest(found).describe()}
            for name, found in _classes(run).items()
        },
    }
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))


# -- the tests ----------------------------------------------------------------------------


def test_fuzzing_found_nothing_unexplained(fuzzed: Fuzzed) -> None:
    """No server crash, no run error, and every failed check is a known engine bug."""
    unexplained = {k: v for k, v in _classes(fuzzed.run).items() if k.startswith("new: ")}
    report = "\n\n".join(
        f"{name} ({len(found)}x), e.g.:\n{fuzz.smallest(found).describe()}"
        for name, found in unexplained.items()
    )
    assert not fuzzed.crashes, "the server died:\n" + "\n\n".join(fuzzed.crashes)
    assert not fuzzed.run.errors, "\n".join(fuzzed.run.errors)
    assert not unexplained, report


def test_fuzzing_reached_the_engine(fuzzed: Fuzzed) -> None:
    """The run was not a wall of 404s: bodies reached validation and the engine on every
    record route, and the stateful phase followed links to created collections."""
    run = fuzzed.run
    assert run.requests > 1000 * min(EXAMPLES, 25) // 25
    for operation in ("add", "upsert", "update", "delete", "get", "query"):
        statuses = {
            status
            for (_, label, status), n in run.by_operation.items()
            if label.endswith(f"/{{collection_id}}/{operation}")
        }
        assert {200, 400} <= statuses, (operation, statuses)
    stateful = {
        label
        for (phase, label, status), n in run.by_operation.items()
        if phase == "stateful" and status == 200
    }
    assert any(label.startswith("POST") and label.endswith("/collections") for label in stateful)
    assert any("{collection_id}" in label for label in stateful), stateful


@pytest.mark.parametrize(
    "bug",
    [
        pytest.param(bug, id=bug.name, marks=pytest.mark.xfail(strict=False, reason=bug.reason))
        for bug in KNOWN_ENGINE_BUGS
    ],
)
def test_known_engine_bug_is_fixed(fuzzed: Fuzzed, bug: KnownBug) -> None:
    """Fails while the bug is there: its reproduction, and the fuzz run's requests that
    show it."""
    bug.check(fuzzed.fixture)
    seen = _classes(fuzzed.run).get(bug.name, [])
    assert not seen, f"{len(seen)} requests, e.g.:\n{fuzz.smallest(seen).describe()}"
