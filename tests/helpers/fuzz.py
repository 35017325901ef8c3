"""Schemathesis against a running `haima run`, driven from Python: every request it sends
is kept with the checks it failed, so that a test can count them and sort the failures
into classes instead of stopping at the first one.

`prepare_targets` first creates a tenant, a database and a few collections holding
records; the run's dictionaries put their names and ids into the path parameters of
the record routes most of the time, so that generated bodies reach validation, filters
and storage instead of a 404 for a random collection id. The stateful phase follows the
document's links from created collections as well.
"""

from __future__ import annotations

import collections
import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

#: The checks the run applies to every response.
CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance")
#: Where the prepared collections live.
TENANT = "fuzz-tenant"
DATABASE = "fuzz-database"
#: Probability that a record route's path parameter is a prepared one rather than generated.
TARGET_PROBABILITY = 0.95
#: Longest response text kept for a report.
KEEP_CHARS = 600
#: Requests kept in `FuzzRun.history`.
HISTORY = 40


@dataclass(frozen=True)
class Exchange:
    """One request the fuzzer sent, and what came back."""

    phase: str
    operation: str
    method: str
    url: str
    body: bytes | None
    status: int | None
    response: str
    failed_checks: tuple[str, ...]
    problems: tuple[str, ...]
    #: The status of the request sent just before (None: none, or no response either).
    previous_status: int | None = None

    def request_text(self) -> str:
        if self.body is None:
            return ""
        return self.body.decode("utf-8", errors="backslashreplace")

    def describe(self) -> str:
        body = self.request_text()
        shown = body if len(body) <= KEEP_CHARS else body[:KEEP_CHARS] + f"... ({len(body)} bytes)"
        return (
            f"{self.method} {self.url}\n  body: {shown}\n  -> {self.status}: {self.response}\n"
            f"  failed: {', '.join(self.failed_checks)}: {' | '.join(self.problems)}"
            + (
                f"\n  (the request before got {self.previous_status})"
                if self.previous_status
                else ""
            )
        )


@dataclass
class FuzzRun:
    """What one run sent and found."""

    requests: int = 0
    by_phase: collections.Counter[str] = field(default_factory=collections.Counter)
    by_status: collections.Counter[int] = field(default_factory=collections.Counter)
    #: (operation, link, status of the linked request): links the stateful phase followed.
    links_followed: collections.Counter[tuple[str, str, int | None]] = field(
        default_factory=collections.Counter
    )
    #: (phase, operation, status): how far each operation's requests got.
    by_operation: collections.Counter[tuple[str, str, int | None]] = field(
        default_factory=collections.Counter
    )
    server_errors: int = 0
    schema_violations: int = 0
    failures: list[Exchange] = field(default_factory=list)
    #: Errors of the run itself (network errors, schema problems), as text.
    errors: list[str] = field(default_factory=list)
    #: Why each schemathesis run ended ("completed", "server_unavailable", ...).
    stop_reasons: list[str] = field(default_factory=list)
    #: The last requests sent, oldest first: what led to a crash.
    history: collections.deque[Exchange] = field(
        default_factory=lambda: collections.deque(maxlen=HISTORY)
    )

    def summary(self) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.by_status.items()))
        phases = ", ".join(f"{p}: {n}" for p, n in sorted(self.by_phase.items()))
        return (
            f"requests: {self.requests} ({phases})\n"
            f"statuses: {statuses}\n"
            f"links followed: {sum(self.links_followed.values())} "
            f"({sum(n for (_, _, s), n in self.links_followed.items() if s == 200)} answered 200)\n"
            f"5xx responses: {self.server_errors}; schema violations: {self.schema_violations}; "
            f"requests failing a check: {len(self.failures)}; run errors: {len(self.errors)}; "
            f"runs ended: {', '.join(self.stop_reasons)}"
        )


@dataclass(frozen=True)
class Targets:
    """What `prepare_targets` made: ids and names for the dictionaries."""

    collection_ids: tuple[str, ...]
    collection_names: tuple[str, ...]


def prepare_targets(url: str, suffix: str = "") -> Targets:
    """A tenant, a database (both kept if they exist) and collections of several kinds,
    with records; `suffix` names a second set beside the first."""
    api = f"{url}/api/v2"
    with httpx.Client(timeout=120) as client:
        for response in (
            client.post(f"{api}/tenants", json={"name": TENANT}),
            client.post(f"{api}/tenants/{TENANT}/databases", json={"name": DATABASE}),
        ):
            if response.status_code != 409:  # 409: there already
                response.raise_for_status()
        base = f"{api}/tenants/{TENANT}/databases/{DATABASE}/collections"
        specs: list[dict[str, Any]] = [
            {"name": "vectors", "configuration": {"index": {"type": "flat"}}},
            {"name": "graph", "configuration": {"metric": "l2", "index": {"type": "hnsw"}}},
            # Documents embedded on the server; keyword and hybrid search.
            {"name": "words", "configuration": {"keyword": {"enabled": True}}},
            {"name": "blank", "metadata": {"hnsw:space": "ip"}},
        ]
        ids, names = [], []
        for spec in specs:
            with_function = spec["name"] == "words"
            named = {**spec, "name": spec["name"] + suffix}
            created = client.post(base, json={**named, "default_embedding_function": with_function})
            created.raise_for_status()
            collection = created.json()
            ids.append(collection["id"])
            names.append(collection["name"])
            if spec["name"] != "blank":
                records = _records(embed=not with_function)
                client.post(f"{base}/{collection['id']}/add", json=records).raise_for_status()
    return Targets(tuple(ids), tuple(names))


def _records(*, embed: bool) -> dict[str, Any]:
    """Twelve records whose metadata holds every kind of value filters look at. Their ids
    are single letters, as the document's examples and many generated ids are, so that
    updates find records."""
    count = 12
    body: dict[str, Any] = {
        "ids": list(string.ascii_lowercase[:count]),
        "documents": [f"文档 {i}: the quick brown fox number {i}" for i in range(count)],
        "metadatas": [
            {
                "n": i,
                "x": i / 4,
                "even": i % 2 == 0,
                "word": ["alpha", "beta", "gamma"][i % 3],
                "tags": ["a", "b"] if i % 2 else ["c"],
            }
            for i in range(count)
        ],
    }
    if embed:
        body["embeddings"] = [[1.0 + i, (i % 3) - 1.0, 0.5] for i in range(count)]
    return body


#: Values the generators rarely find on their own, drawn now and then wherever a string
#: or an integer goes: NUL, path separators, white space, right-to-left marks, long text;
#: integers at and beyond the 64-bit range. (Not lone surrogates: schemathesis cannot
#: send them, so tests/test_fuzz_http.py reproduces that class by hand.)
HOSTILE_STRINGS = (
    "\x00",
    "id\x00tail",
    "a/b",
    "../..",
    "%2F",
    " ",
    "\u202egnp.exe",
    "$and",
    "İı",
    "x" * 5000,
)
HOSTILE_INTEGERS = (2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -1, 0)
#: How often a string or integer is taken from the lists above.
HOSTILE_PROBABILITY = 0.05


def _common(examples: int, seed: int) -> dict[str, Any]:
    return {
        "seed": seed,
        "workers": 1,
        "continue-on-failure": True,
        "request-timeout": 120,
        "generation": {
            "max-examples": examples,
            "database": "none",
            "dictionaries": {
                "string": {"dictionary": "hostile_strings", "probability": HOSTILE_PROBABILITY},
                "integer": {"dictionary": "hostile_integers", "probability": HOSTILE_PROBABILITY},
            },
        },
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    }


def _dictionaries(targets: Targets) -> dict[str, Any]:
    return {
        "hostile_strings": {"values": list(HOSTILE_STRINGS)},
        "hostile_integers": {"values": list(HOSTILE_INTEGERS)},
        "tenants": {"values": [TENANT]},
        "databases": {"values": [DATABASE]},
        "collections": {"values": list(targets.collection_ids)},
    }


def api_config(
    *, examples: int, seed: int, targets: Targets, stateful_steps: int = 10
) -> dict[str, Any]:
    """Every operation, every phase. In generated requests the record routes' path
    parameters are mostly a prepared collection's; the coverage phase, which takes no
    dictionaries, is left to `collection_config` for them."""
    prepared = {
        f"path.{name}": {"dictionary": dictionary, "probability": TARGET_PROBABILITY}
        for name, dictionary in (
            ("tenant", "tenants"),
            ("database", "databases"),
            ("collection_id", "collections"),
        )
    }
    return {
        **_common(examples, seed),
        # Sequences are cheap next to the unit phases: twice as many of them.
        "phases": {
            "stateful": {
                "max-steps": stateful_steps,
                "generation": {"max-examples": 2 * examples},
            }
        },
        "dictionaries": _dictionaries(targets),
        "operations": [
            {
                "include-path-regex": RECORD_ROUTES,
                "parameters": prepared,
                "phases": {"coverage": {"enabled": False}},
            },
        ],
    }


def collection_config(
    *, examples: int, seed: int, targets: Targets, collection_id: str
) -> dict[str, Any]:
    """The record routes of one prepared collection, in the coverage phase (boundary
    values and each way to break each field) and the fuzzing phase."""
    return {
        **_common(examples, seed),
        "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
        "dictionaries": _dictionaries(targets),
        "parameters": {
            "path.tenant": TENANT,
            "path.database": DATABASE,
            "path.collection_id": collection_id,
        },
        "operations": [{"exclude-path-regex": RECORD_ROUTES, "enabled": False}],
    }


#: Routes on one collection by its id.
RECORD_ROUTES = r"\{collection_id\}"


def run_schemathesis(url: str, config: Mapping[str, Any], run: FuzzRun | None = None) -> FuzzRun:
    """Run the configured phases against `url`, adding what they send and find to `run`."""
    import schemathesis
    from schemathesis.engine import events, from_schema

    loaded = schemathesis.openapi.from_url(
        f"{url}/openapi.json", config=schemathesis.Config.from_dict(dict(config))
    )
    run = FuzzRun() if run is None else run
    for event in from_schema(loaded).execute():
        if isinstance(event, (events.ScenarioFinished, events.FuzzScenarioFinished)):
            phase = event.phase.value if isinstance(event, events.ScenarioFinished) else "fuzz"
            _record(run, phase, event.recorder)
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{event.label}: {type(event.value).__name__}: {event.value}")
        elif isinstance(event, events.FatalError):
            run.errors.append(f"fatal: {type(event.exception).__name__}: {event.exception}")
        elif isinstance(event, events.EngineFinished):
            run.stop_reasons.append(event.stop_reason.value)
    return run


def _record(run: FuzzRun, phase: str, recorder: Any) -> None:
    for case_id, interaction in recorder.interactions.items():
        response = interaction.response
        run.requests += 1
        run.by_phase[phase] += 1
        status = None if response is None else int(response.status_code)
        case = recorder.cases.get(case_id)
        operation = "" if case is None else str(case.value.operation.label)
        run.by_operation[(phase, operation, status)] += 1
        if status is not None:
            run.by_status[status] += 1
            run.server_errors += status >= 500
        failed = [
            node
            for node in recorder.checks.get(case_id, ())
            if node.status.value == "failure" and node.failure_info is not None
        ]
        run.schema_violations += sum(n.name == "response_schema_conformance" for n in failed)
        names = [n.name for n in failed]
        if status is not None and status >= 500 and "not_a_server_error" not in names:
            names.append("not_a_server_error")  # schemathesis reports a repeat only once
        if response is None:
            names.append("no_response")
        text = "" if response is None else response.content.decode("utf-8", "backslashreplace")
        exchange = Exchange(
            phase=phase,
            operation=operation,
            method=interaction.request.method,
            url=interaction.request.uri,
            body=interaction.request.body,
            status=status,
            response=text[:KEEP_CHARS],
            failed_checks=tuple(names),
            problems=tuple(_problem(n.failure_info.failure) for n in failed),
            previous_status=run.history[-1].status if run.history else None,
        )
        run.history.append(exchange)
        if exchange.failed_checks:
            run.failures.append(exchange)
        transition = None if case is None else case.transition
        parent = None if case is None else recorder.cases.get(case.parent_id)
        if transition is not None and not transition.is_inferred and parent is not None:
            source = str(parent.value.operation.label)
            run.links_followed[(source, str(transition.id), status)] += 1


def _problem(failure: Any) -> str:
    title = str(getattr(failure, "title", type(failure).__name__))
    message = str(getattr(failure, "message", ""))
    return f"{title}: {message[:KEEP_CHARS]}" if message else title


def smallest(exchanges: Iterable[Exchange]) -> Exchange:
    """The exchange with the shortest request: the easiest reproduction."""
    return min(exchanges, key=lambda e: (len(e.body or b""), len(e.url)))


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
