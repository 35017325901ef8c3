"""Index snapshots keep no second copy of the vectors (format 2): an HNSW part is saved as
its graph, a flat part as its rids, and the vectors are read back from SQLite. A store
reopens to the same answers, also after deletions made since the snapshot, and snapshots
in the older layout (with the vectors) still load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

import haima
from haima.index.snapshot import Snapshot, write_snapshot

DIM = 256


def vectors(n: int, seed: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def snapshot_file(store: Path) -> Path:
    (found,) = (store / "indexes").rglob("index.hidx")
    return found


def answers(col: haima.Collection, queries: np.ndarray[Any, Any]) -> Any:
    return col.query(query_embeddings=queries, n_results=10)


def test_an_hnsw_store_reopens_to_the_same_answers_from_a_small_snapshot(tmp_path: Path) -> None:
    store = tmp_path / "store"
    data = vectors(5_000, 0)
    queries = vectors(20, 1)
    with haima.PersistentClient(store) as client:
        col = client.create_collection(
            "graph", configuration={"index": {"type": "hnsw"}}, embedding_function=None
        )
        col.add(ids=[f"r{i}" for i in range(5_000)], embeddings=data)
        col.build_index()
        col.delete(ids=[f"r{i}" for i in range(0, 5_000, 9)])  # tombstones in the graph
        col.add(ids=["late"], embeddings=data[:1] + 0.01)  # one in the exact tail
        before = answers(col, queries)
    size = snapshot_file(store).stat().st_size
    assert size < 0.35 * data.nbytes  # the graph, ids and the tombstoned vectors only
    with Snapshot(snapshot_file(store)) as snapshot:
        assert "main.hnsw.neighbors" in snapshot and "main.faiss" not in snapshot
        assert "tail.live_rids" in snapshot and "tail.vectors" not in snapshot
    with haima.PersistentClient(store) as client:
        again = client.get_collection("graph", embedding_function=None)
        after = answers(again, queries)
    assert after["ids"] == before["ids"]
    np.testing.assert_allclose(after["distances"], before["distances"], rtol=1e-5, atol=1e-6)


def test_deletions_after_the_snapshot_are_replayed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    data = vectors(3_000, 2)
    with haima.PersistentClient(store) as client:
        col = client.create_collection(
            "graph", configuration={"index": {"type": "hnsw"}}, embedding_function=None
        )
        col.add(ids=[f"r{i}" for i in range(3_000)], embeddings=data)
        col.build_index()  # writes the snapshot
    # Another client deletes records the snapshot still holds, then exits without a new
    # snapshot (as if it crashed): their vectors are gone from SQLite.
    with haima.PersistentClient(store) as writer:
        writer.get_collection("graph", embedding_function=None).delete(ids=["r7", "r8"])
        writer._backend.indexes.slots.clear()  # type: ignore[attr-defined]
    with haima.PersistentClient(store) as client:
        col = client.get_collection("graph", embedding_function=None)
        found = col.query(query_embeddings=data[7:9], n_results=3)["ids"]
        assert all("r7" not in row and "r8" not in row for row in found)
        assert col.query(query_embeddings=data[100:101], n_results=1)["ids"] == [["r100"]]


def test_a_snapshot_with_vectors_still_loads(tmp_path: Path) -> None:
    """The layout before format 2: the HNSW part as FAISS serialised it (storage
    included) and the tail as raw vectors."""
    store = tmp_path / "store"
    data = vectors(2_000, 3)
    with haima.PersistentClient(store) as client:
        col = client.create_collection(
            "graph", configuration={"index": {"type": "hnsw"}}, embedding_function=None
        )
        col.add(ids=[f"r{i}" for i in range(2_000)], embeddings=data)
        col.build_index()
        index = client._backend.indexes.slots[col.id].index  # type: ignore[attr-defined]
        header, new_layout = index.to_arrays()
        old: dict[str, Any] = {k: v for k, v in new_layout.items() if k.startswith("ids.")}
        old["main.faiss"] = faiss.serialize_index(index.main.index)
        old["main.rids"], old["main.deleted"] = index.main.rids, index.main.deleted
        old["tail.vectors"] = np.zeros((0, DIM), np.float32)
        old["tail.rids"] = np.zeros(0, np.int64)
        old["tail.deleted"] = np.zeros(0, bool)
        before = answers(col, data[:5])
    write_snapshot(snapshot_file(store), header, old)
    with haima.PersistentClient(store) as client:
        again = client.get_collection("graph", embedding_function=None)
        assert answers(again, data[:5])["ids"] == before["ids"]
        status = client._backend.indexes.status(again.id)  # type: ignore[attr-defined]
        assert status["ann"] == "hnsw" and status["indexed"] == 2_000


@pytest.mark.parametrize(
    "make_id",
    [lambda i: f"r{i}", lambda i: f"第{i}号-é" if i % 3 else f"r{i}"],
    ids=["ascii", "utf8"],
)
def test_ids_come_back_from_the_snapshot_as_written(
    tmp_path: Path, make_id: Callable[[int], str]
) -> None:
    store = tmp_path / "store"
    data = vectors(300, 2)
    written = [make_id(i) for i in range(300)]
    with haima.PersistentClient(store) as client:
        col = client.create_collection(
            "graph", configuration={"index": {"type": "hnsw"}}, embedding_function=None
        )
        col.add(ids=written[:250], embeddings=data[:250])
        col.build_index()
        col.add(ids=written[250:], embeddings=data[250:])  # the exact tail's ids too
    with Snapshot(snapshot_file(store)) as snapshot:
        assert "ids.utf8" in snapshot
    with haima.PersistentClient(store) as client:
        again = client.get_collection("graph", embedding_function=None)
        # Ids only: answered from the index's own rid → id map, which the snapshot holds.
        found = again.query(query_embeddings=data, n_results=1, include=["distances"])["ids"]
    assert [hit for (hit,) in found] == written
