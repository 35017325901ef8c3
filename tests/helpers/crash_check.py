"""Checking a store after a crash against the plans its writers followed.

Each writer follows a plan of whole-batch steps (tests/helpers/batches.py) and reports
how many it had acknowledged when it died. The store must hold exactly the state after m
steps of each plan, for some m between the acknowledged count and the last step the
writer could have reached: every acknowledged batch whole, the batch in flight whole or
absent, nothing partial. Then queries must agree with brute force over what is stored
(vector, filtered and keyword search), which shows that the index caches were rebuilt.

Also a script, to check a store from a fresh process:

    python -m tests.helpers.crash_check STORE PLAN.json ACKED LAST SEED

prints the result as JSON, or fails with the assertion that did not hold.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import haima
from tests.helpers.batches import (
    DIM,
    Op,
    batch_data,
    gone_vectors,
    keyword_of,
    load_plan,
    state_after,
)
from tests.helpers.reference import check_query_row

QUIET = haima.Settings(background_indexing=False)
Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Stream:
    """One writer: its plan, the steps it acknowledged, and the furthest step the store
    may hold (acked + 1 for a writer that logs each acknowledgement before its next
    call; the plan's length when acknowledgements are read late)."""

    ops: list[Op]
    acked: int
    last: int


@dataclass(frozen=True)
class Verified:
    steps: list[int]  # per stream, the steps the store holds
    batches: int  # live batches found whole
    records: int  # records compared field by field


def verify(client: haima.Client, streams: Sequence[Stream], seed: int) -> Verified:
    """Check the store behind `client` against `streams` (see the module docstring).
    Streams must use disjoint batch numbers."""
    home: dict[int, str] = {}  # batch → its collection
    owner: dict[int, int] = {}  # batch → its stream
    names: list[str] = []
    for s, stream in enumerate(streams):
        for op in stream.ops:
            if op.collection not in names:
                names.append(op.collection)
            if op.batch >= 0:
                assert owner.setdefault(op.batch, s) == s, f"batch {op.batch} in two streams"
                home[op.batch] = op.collection
    collections = {name: client.get_collection(name, embedding_function=None) for name in names}
    held = {
        name: col.get(include=["embeddings", "documents", "metadatas"])
        for name, col in collections.items()
    }

    observed = _observed_batches(held, home)
    steps = []
    for s, stream in enumerate(streams):
        mine = {b: state for b, state in observed.items() if owner[b] == s}
        candidates = [
            m for m in range(stream.acked, stream.last + 1) if state_after(stream.ops, m) == mine
        ]
        assert candidates, _no_state_message(stream, mine)
        steps.append(candidates[0])

    live_batches = 0
    records = 0
    rng = np.random.default_rng(seed)
    for name, col in collections.items():
        expected = {
            b: state
            for stream, m in zip(streams, steps, strict=True)
            for b, state in state_after(stream.ops, m).items()
            if home[b] == name
        }
        live = _check_contents(col, held[name], expected)
        live_batches += len(expected)
        records += len(live)
        gone = [
            g
            for stream, m in zip(streams, steps, strict=True)
            if (g := gone_vectors(stream.ops, m).get(name)) is not None
        ]
        _check_vector_queries(col, live, np.concatenate(gone) if gone else None, rng)
        _check_filtered_queries(col, held[name], rng)
        if col.configuration.get("keyword", {}).get("enabled"):
            written = {
                (op.batch, op.version)
                for stream, m in zip(streams, steps, strict=True)
                for op in stream.ops[:m]
                if op.kind in ("add", "upsert", "update") and op.collection == name
            }
            _check_keyword_queries(col, expected, written, rng)
    return Verified(steps, live_batches, records)


def _observed_batches(held: dict[str, Any], home: dict[int, str]) -> dict[int, tuple[int, int]]:
    """batch → (records held, version) over every collection; a batch whose records
    carry several versions is partly updated, which fails here."""
    observed: dict[int, tuple[int, int]] = {}
    for name, got in held.items():
        assert got["metadatas"] is not None
        versions: dict[int, list[int]] = defaultdict(list)
        for record_id, md in zip(got["ids"], got["metadatas"], strict=True):
            assert md is not None, f"record {record_id!r} lost its metadata"
            batch, version = md["batch"], md["v"]
            assert isinstance(batch, int) and isinstance(version, int), md
            assert home.get(batch) == name, f"{record_id!r} of batch {batch} found in {name}"
            versions[batch].append(version)
        for batch, seen in versions.items():
            assert len(set(seen)) == 1, f"batch {batch} is partly updated: versions {set(seen)}"
            observed[batch] = (len(seen), seen[0])
    return observed


def _no_state_message(stream: Stream, mine: dict[int, tuple[int, int]]) -> str:
    """What differs between the store and the states it may hold, batch by batch."""
    lines = [
        f"the store is not the state after any of steps {stream.acked}..{stream.last} "
        f"({stream.acked} acknowledged): a batch is partial, lost or extra"
    ]
    for m in range(stream.acked, min(stream.last, stream.acked + 1) + 1):
        want = state_after(stream.ops, m)
        diff = {
            b: (mine.get(b), want.get(b))
            for b in sorted(set(mine) | set(want))
            if mine.get(b) != want.get(b)
        }
        lines.append(f"  vs step {m}: batch → ((held, version) found, expected): {diff}")
    return "\n".join(lines)


def _check_contents(
    col: haima.Collection, got: Any, expected: dict[int, tuple[int, int]]
) -> dict[str, Vector]:
    """Every record of every expected batch, field by field; nothing else. Returns the
    live records' vectors by id."""
    assert got["documents"] is not None and got["embeddings"] is not None
    position = {record_id: row for row, record_id in enumerate(got["ids"])}
    live: dict[str, Vector] = {}
    for batch, (size, version) in expected.items():
        want = batch_data(batch, size, version)
        rows = [position.get(i) for i in want.ids]
        assert None not in rows, f"batch {batch} misses records"
        idx = [r for r in rows if r is not None]
        assert [got["documents"][r] for r in idx] == want.documents, f"batch {batch} documents"
        assert [got["metadatas"][r] for r in idx] == want.metadatas, f"batch {batch} metadata"
        assert np.array_equal(got["embeddings"][idx], want.embeddings), f"batch {batch} vectors"
        live.update(zip(want.ids, want.embeddings, strict=True))
    assert len(got["ids"]) == len(live) == col.count()
    return live


def _is_exact(col: haima.Collection) -> bool:
    return bool(col.configuration["index"]["type"] == "flat")


def _check_vector_queries(
    col: haima.Collection,
    live: dict[str, Vector],
    gone: Vector | None,
    rng: np.random.Generator,
) -> None:
    """A live record's own vector finds it at distance ~0; vectors that were deleted or
    replaced are never answered, and their rows stay full (a stale vector left in the
    index would show as a missing result)."""
    exact = _is_exact(col)
    names = list(live)
    sample = [names[i] for i in rng.choice(len(names), min(20, len(names)), replace=False)]
    if sample:
        res = col.query(query_embeddings=np.stack([live[s] for s in sample]), n_results=5)
        assert res["distances"] is not None
        self_hits = 0
        for name, ids, dists in zip(sample, res["ids"], res["distances"], strict=True):
            check_query_row(ids, dists, live[name], live, 5, exact=exact)
            self_hits += ids[0] == name and dists[0] < 1e-5
        assert self_hits >= (len(sample) if exact else 0.9 * len(sample))
    if gone is not None and len(gone):
        pick = gone[rng.choice(len(gone), min(10, len(gone)), replace=False)]
        res = col.query(query_embeddings=pick, n_results=10)
        assert res["distances"] is not None
        recall = [
            check_query_row(ids, dists, q, live, 10, exact=exact)
            for q, ids, dists in zip(pick, res["ids"], res["distances"], strict=True)
        ]
        assert np.mean(recall) >= 0.9


Predicate = Callable[[dict[str, Any]], bool]


def _filters(
    batches: list[int], rng: np.random.Generator
) -> list[tuple[dict[str, Any], Predicate]]:
    """Filters over the plans' metadata, each with the rule it stands for."""
    tag = f"t{int(rng.integers(3))}"
    out: list[tuple[dict[str, Any], Predicate]] = [
        ({"tags": {"$contains": tag}}, lambda md: tag in md.get("tags", [])),
        (
            {"$and": [{"odd": True}, {"v": {"$gte": 2}}]},
            lambda md: md.get("odd") is True and md["v"] >= 2,
        ),
        ({"i": {"$lt": 3}}, lambda md: md["i"] < 3),
    ]
    picked = [int(b) for b in rng.permutation(batches)[:2]]
    out += [({"batch": b}, _in_batch(b)) for b in picked]
    return out


def _in_batch(batch: int) -> Predicate:
    return lambda md: bool(md["batch"] == batch)


def _check_filtered_queries(col: haima.Collection, got: Any, rng: np.random.Generator) -> None:
    """Filtered queries against brute force over the stored records that match."""
    exact = _is_exact(col)
    batches = sorted({md["batch"] for md in got["metadatas"]})
    recalls = []
    for where, rule in _filters(batches, rng):
        members = {
            record_id: got["embeddings"][row]
            for row, (record_id, md) in enumerate(zip(got["ids"], got["metadatas"], strict=True))
            if rule(md)
        }
        queries = rng.standard_normal((2, DIM))
        if members:
            queries = np.vstack([queries, next(iter(members.values()))])
        res = col.query(query_embeddings=queries.astype(np.float32), n_results=10, where=where)
        assert res["distances"] is not None
        for q, ids, dists in zip(queries, res["ids"], res["distances"], strict=True):
            recalls.append(check_query_row(ids, dists, q, members, 10, exact=exact))
        found = col.get(where=where, include=[])["ids"]
        assert sorted(found) == sorted(members), f"get(where={where}) differs from brute force"
    assert np.mean(recalls) >= 0.9, recalls


def _check_keyword_queries(
    col: haima.Collection,
    expected: dict[int, tuple[int, int]],
    written: set[tuple[int, int]],
    rng: np.random.Generator,
) -> None:
    """A live batch's version word finds exactly its records; a deleted or replaced
    version's word finds nothing (the FTS rows went with their records)."""
    for b in rng.permutation(sorted(expected))[:3].tolist():
        size, version = expected[b]
        res = col.query(query_texts=[keyword_of(b, version)], n_results=size + 5, mode="keyword")
        assert sorted(res["ids"][0]) == sorted(batch_data(b, size, version).ids)
    stale = sorted(written - {(b, v) for b, (_, v) in expected.items()})
    for n in rng.permutation(len(stale))[:3].tolist():
        b, version = stale[n]
        res = col.query(query_texts=[keyword_of(b, version)], n_results=10, mode="keyword")
        assert res["ids"] == [[]], f"keyword {keyword_of(b, version)} of a gone version found"


def main(argv: list[str]) -> None:
    store, plan, acked, last, seed = argv
    stream = Stream(load_plan(Path(plan)), int(acked), int(last))
    with haima.PersistentClient(store, settings=QUIET) as client:
        result = verify(client, [stream], int(seed))
    json.dump(asdict(result), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
