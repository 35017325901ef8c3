"""No query waits for index maintenance: while the indexer builds an ANN part or writes
a snapshot (held at that point by a hook, not by timing), queries answer exactly from
what exists, writes go through, and what happened meanwhile survives the swap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import haima
from haima.settings import Settings

DIM = 32
#: How long a call may take before the test calls it blocked: far above a query's cost,
#: far below the held step, which never ends until released.
BLOCKED_AFTER = 20.0


class Held:
    """A hook that stops the indexer just before its off-lock `what` step, until released."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, what: str, collection_id: str) -> None:
        if what == self.what and not self.release.is_set():
            self.entered.set()
            self.release.wait(timeout=120)


def vectors(n: int, seed: int) -> np.ndarray[Any, Any]:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def finishes(call: Callable[[], Any]) -> Any:
    """Run `call` on another thread; fail if it does not return within BLOCKED_AFTER."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(BLOCKED_AFTER)
    assert not thread.is_alive(), "the call waited for index maintenance"
    return out[0]


def exact_top(
    stored: dict[str, np.ndarray[Any, Any]], query: np.ndarray[Any, Any], k: int
) -> list[str]:
    ids = sorted(stored)
    matrix = np.stack([stored[i] for i in ids])
    order = np.argsort(-(matrix @ query), kind="stable")[:k]
    return [ids[i] for i in order]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[haima.Client, Any]]:
    client = haima.PersistentClient(tmp_path / "store", Settings(index_delay=0.05))
    backend: Any = client._backend
    yield client, backend
    backend.background.before_off_lock = None
    client.close()


def test_queries_and_writes_go_on_while_a_build_is_held(
    store: tuple[haima.Client, Any],
) -> None:
    client, backend = store
    held = Held("build")
    backend.background.before_off_lock = held
    col = client.create_collection(
        "held", configuration={"index": {"type": "hnsw"}}, embedding_function=None
    )
    data = vectors(3_000, 0)
    stored = {f"r{i}": data[i] for i in range(len(data))}
    col.add(ids=list(stored), embeddings=data)
    assert held.entered.wait(timeout=60), "the indexer never started a build"

    queries = vectors(5, 1)
    for query in queries:
        found = finishes(lambda q=query: col.query(query_embeddings=q[None, :], n_results=10))
        assert found["ids"][0] == exact_top(stored, query, 10)  # the exact tail answers
    # Writes while the build holds a copy: new records, and deletions of records the
    # build is adding to the ANN part; both must survive the swap.
    extra = vectors(200, 2)
    finishes(lambda: col.add(ids=[f"x{i}" for i in range(200)], embeddings=extra))
    stored.update({f"x{i}": extra[i] for i in range(200)})
    gone = [f"r{i}" for i in range(0, 3_000, 7)]
    finishes(lambda: col.delete(ids=gone))
    for record_id in gone:
        del stored[record_id]
    assert finishes(col.count) == len(stored)

    held.release.set()
    col.build_index()  # waits for the held build, then indexes what is left
    status = backend.indexes.status(col.id)
    assert status["state"] == "ready" and status["ann"] == "hnsw"
    for query in [*queries, extra[0], data[7]]:
        found = col.query(query_embeddings=query[None, :], n_results=10)["ids"][0]
        assert not set(found) & set(gone)
        # HNSW is approximate: most of the exact top 10, and the exact nearest first.
        truth = exact_top(stored, query, 10)
        assert len(set(found) & set(truth)) >= 8 and found[0] == truth[0]


def test_queries_go_on_while_a_snapshot_is_written(
    store: tuple[haima.Client, Any], tmp_path: Path
) -> None:
    client, backend = store
    held = Held("snapshot")
    backend.background.before_off_lock = held
    col = client.create_collection(
        "snap", configuration={"index": {"type": "hnsw"}}, embedding_function=None
    )
    data = vectors(2_000, 3)
    stored = {f"r{i}": data[i] for i in range(len(data))}
    col.add(ids=list(stored), embeddings=data)
    assert held.entered.wait(timeout=60), "the indexer never wrote a snapshot"
    query = vectors(1, 4)[0]
    found = finishes(lambda: col.query(query_embeddings=query[None, :], n_results=5))
    assert len(found["ids"][0]) == 5
    late = vectors(10, 5)
    finishes(lambda: col.add(ids=[f"late{i}" for i in range(10)], embeddings=late))
    finishes(lambda: col.delete(ids=["r0", "r1"]))
    held.release.set()
    client.close()
    # The snapshot written meanwhile is older than the store: reopening catches up from
    # SQLite, so the late writes are there and the deleted records are not.
    with haima.PersistentClient(tmp_path / "store") as again:
        reopened = again.get_collection("snap", embedding_function=None)
        assert reopened.count() == 2_000 + 10 - 2
        hit = reopened.query(query_embeddings=late[3][None, :], n_results=1)["ids"][0]
        assert hit == ["late3"]
        assert reopened.get(ids=["r0", "r1"])["ids"] == []


def test_a_build_discarded_by_a_reconfiguration_changes_nothing(
    store: tuple[haima.Client, Any],
) -> None:
    client, backend = store
    held = Held("build")
    backend.background.before_off_lock = held
    col = client.create_collection(
        "moved", configuration={"index": {"type": "hnsw"}}, embedding_function=None
    )
    data = vectors(2_000, 6)
    col.add(ids=[f"r{i}" for i in range(2_000)], embeddings=data)
    assert held.entered.wait(timeout=60)
    finishes(lambda: col.modify(configuration={"index": {"type": "flat"}}))
    held.release.set()
    col.build_index()
    status = backend.indexes.status(col.id)
    assert status["ann"] is None and status["exact"] == 2_000  # flat: no ANN part
    found = col.query(query_embeddings=data[5][None, :], n_results=1)["ids"][0]
    assert found == ["r5"]


def test_other_requests_go_on_while_a_first_query_loads_an_index(tmp_path: Path) -> None:
    """A large store's first query reads its index back (from the snapshot and SQLite)
    without the lock: listing collections, counting and other collections' queries do not
    wait for it."""
    store = tmp_path / "store"
    data = vectors(3_000, 7)
    with haima.PersistentClient(store) as client:
        big = client.create_collection(
            "big", configuration={"index": {"type": "hnsw"}}, embedding_function=None
        )
        big.add(ids=[f"r{i}" for i in range(3_000)], embeddings=data)
        big.build_index()
        small = client.create_collection("small", embedding_function=None)
        small.add(ids=["only"], embeddings=data[:1])
    client = haima.PersistentClient(store)
    backend: Any = client._backend
    loading = Held("load")
    backend.indexes.before_load = lambda collection_id: loading("load", collection_id)
    try:
        big = client.get_collection("big", embedding_function=None)
        answer: list[Any] = []
        first = threading.Thread(
            target=lambda: answer.append(big.query(query_embeddings=data[42:43], n_results=1))
        )
        first.start()
        assert loading.entered.wait(timeout=60), "the first query did not load off the lock"
        names = finishes(lambda: sorted(c.name for c in client.list_collections()))
        assert names == ["big", "small"]
        assert finishes(big.count) == 3_000
        backend.indexes.before_load = None  # the small collection loads without waiting
        other = client.get_collection("small", embedding_function=None)
        found = finishes(lambda: other.query(query_embeddings=data[:1], n_results=1))
        assert found["ids"] == [["only"]]
        assert first.is_alive() and not answer  # still held
        loading.release.set()
        first.join(timeout=60)
        assert answer and answer[0]["ids"] == [["r42"]]
    finally:
        loading.release.set()
        client.close()


def test_the_indexer_checkpoints_the_wal_off_the_write_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haima.backends.local import background
    from haima.storage import sqlite

    # Writes never checkpoint on their own here; the indexer does from 256 KiB on.
    monkeypatch.setattr(sqlite, "SAFETY_CHECKPOINT_PAGES", 1_000_000)
    monkeypatch.setattr(background, "CHECKPOINT_BYTES", 256 * 1024)
    client = haima.PersistentClient(tmp_path / "store", Settings(background_indexing=False))
    backend: Any = client._backend
    try:
        col = client.create_collection("wal", embedding_function=None)
        data = vectors(6_000, 3)
        for start in range(0, 6_000, 500):
            col.add(
                ids=[f"r{i}" for i in range(start, start + 500)],
                embeddings=data[start : start + 500],
            )
        grown = backend.store.wal_bytes()
        assert grown > 4 * 2**20  # no write checkpointed: the WAL holds every page
        backend.background.index_some()  # what the indexer thread does when woken
        col.add(ids=["after"], embeddings=data[:1])  # starts the emptied WAL over
        assert backend.store.wal_bytes() <= 4 * 2**20  # cut back to the size limit
        assert col.count() == 6_001
    finally:
        client.close()
    with haima.PersistentClient(tmp_path / "store") as again:
        col = again.get_collection("wal", embedding_function=None)
        assert col.count() == 6_001
        got = col.get(ids=["r5999"], include=["embeddings"])
        assert np.allclose(got["embeddings"][0], data[5999], atol=1e-6)


def test_queries_defer_indexing_while_the_exact_tail_scans_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexer waits for writes to pause and, while the exact tail is small, for
    queries to pause too, though at most QUERY_DEFERRAL x index_delay after the last
    write; a large tail is indexed as soon as writes pause. Driven by hand: no indexer
    thread, the slot's clocks set by the test."""
    from haima.backends.local import background

    delay = 0.5
    client = haima.PersistentClient(
        tmp_path / "store", Settings(background_indexing=False, index_delay=delay)
    )
    backend: Any = client._backend
    col = client.create_collection(
        "deferred", configuration={"index": {"type": "hnsw"}}, embedding_function=None
    )
    data = vectors(2_000, 0)
    col.add(ids=[f"r{i}" for i in range(len(data))], embeddings=data)
    slot = backend.indexes.slots[col.id]
    queried_before = slot.last_query
    col.query(query_embeddings=data[:1], n_results=3)
    assert slot.last_query > queried_before  # a vector search marks the slot

    work = backend.background
    now = time.monotonic()
    slot.last_write, slot.last_query = now - 2 * delay, now  # writes paused, a query now
    assert not work._indexing_due(slot, now)
    assert work._indexing_due(slot, now + delay)  # the queries paused
    slot.last_write = now - background.QUERY_DEFERRAL * delay  # queries never paused
    assert work._indexing_due(slot, now)

    slot.last_write, slot.last_query = now - 2 * delay, time.monotonic() + 60
    assert not work.index_some()  # nothing due: a query keeps it waiting
    assert backend.indexes.status(col.id)["state"] == "building"
    monkeypatch.setattr(background, "DEFER_TAIL_BYTES", len(data) * DIM * 4 - 1)
    assert work._indexing_due(slot, time.monotonic())  # a large tail waits for no query
    while work.index_some():  # what the indexer thread does when woken
        pass
    assert backend.indexes.status(col.id) == {
        "state": "ready",
        "ann": "hnsw",
        "indexed": 2_000,
        "exact": 0,
        "pending": 0,
    }
    client.close()
