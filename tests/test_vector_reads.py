"""Reading stored vectors back by rid (`Store.vectors_of`): dense runs as rid ranges,
sparse ones by lists, either way in the order asked, with missing rids refused or zeroed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import haima
from haima.settings import Settings


@pytest.fixture
def stored(tmp_path: Path) -> Any:
    """Two collections written in turns, so that their rids interleave."""
    client = haima.PersistentClient(tmp_path / "store", Settings(background_indexing=False))
    rng = np.random.default_rng(11)
    first = client.create_collection("first", embedding_function=None)
    second = client.create_collection("second", embedding_function=None)
    vectors: dict[str, np.ndarray[Any, Any]] = {}
    for turn in range(6):
        for col in (first, second):
            batch = rng.standard_normal((50, 4)).astype(np.float32)
            ids = [f"{col.name}-{turn}-{i}" for i in range(50)]
            col.add(ids=ids, embeddings=batch)
            vectors.update(zip(ids, batch, strict=True))
    store = client._backend.store  # type: ignore[attr-defined]
    rows = store.conn.execute("SELECT r.id, r.rid FROM records r").fetchall()
    rid_of = {record_id: rid for record_id, rid in rows}
    yield store, rid_of, vectors
    client.close()


def test_vectors_come_back_in_the_order_asked(stored: Any) -> None:
    store, rid_of, vectors = stored
    rng = np.random.default_rng(3)
    first_ids = sorted((i for i in vectors if i.startswith("first")), key=rid_of.__getitem__)
    all_ids = list(vectors)
    for asked in (
        first_ids,  # one collection's rids in order: dense runs with the other's between
        all_ids,  # everything
        list(rng.permutation(all_ids)),  # shuffled
        [all_ids[0], all_ids[-1]],  # sparse: far apart
        [all_ids[5], all_ids[5], all_ids[2]],  # repeated
    ):
        rids = np.array([rid_of[i] for i in asked])
        want = np.stack([vectors[i] for i in asked])
        assert np.array_equal(store.vectors_of(rids, 4), want)
        # Into the caller's matrix (an index load's FAISS storage), whatever it held.
        out = np.full((len(asked), 4), np.nan, np.float32)
        assert store.vectors_of(rids, 4, out=out) is out
        assert np.array_equal(out, want)


def test_missing_rids_are_refused_or_zeroed(stored: Any) -> None:
    store, rid_of, vectors = stored
    some = list(vectors)[:3]
    missing = max(rid_of.values()) + 10
    asked = np.array([rid_of[some[0]], missing, rid_of[some[2]]])
    with pytest.raises(KeyError):
        store.vectors_of(asked, 4)
    got = store.vectors_of(asked, 4, missing_ok=True)
    assert np.array_equal(got[0], vectors[some[0]]) and np.array_equal(got[2], vectors[some[2]])
    assert not got[1].any()
    out = np.full((3, 4), np.nan, np.float32)
    store.vectors_of(asked, 4, missing_ok=True, out=out)
    assert np.array_equal(out, got)  # the missing row zeroed, not left as it was
    assert store.vectors_of(np.zeros(0, np.int64), 4).shape == (0, 4)
