"""Recall@10 of every index type against numpy brute force, unfiltered and filtered.

Data (tests/data_gen.py, seeded): N = 42,000 vectors of 48 dims drawn around 100 gaussian
centres (per-coordinate spread 0.6, so points of one cluster have cosine ≈ 0.75 with each
other, like near neighbours among sentence embeddings), an int field `bucket` in [0, 1000)
independent of the vectors with exactly N/1000 records per value, and 50 held-out queries
drawn around the centres. `where={"bucket": {"$lt": b}}` matches exactly b/1000 of the
records: 50 %, 10 %, 1 % and 0.1 % (42 records, so k = 10 always fits).

Every collection is built the way a user's is: `add` in batches, `build_index()` (the
ANN part: HNSW, IVF, IVF-PQ or SQ8; `auto` with auto_threshold=10,000 switches to HNSW),
then TAIL more records that stay in the exact tail, so every query merges both parts.

Two planners are checked:

* the default one. With N = 42,000 the unfiltered and 50 % queries go through the ANN part
  (21,000 matches > EXACT_SCAN_LIMIT) and the more selective ones are exact scans;
* `ann_only`, EXACT_SCAN_LIMIT lowered to 0, so every filter runs as an ANN search
  restricted by an IDSelector with the planner's raised ef_search / nprobe: the path a
  collection of millions takes at these selectivities.

Floors: 0.95 for every type with default parameters, except IVF-PQ. IVF-PQ compresses
vectors (pq_m = dim/4: 12 sub-quantizers × 8 bits for 48 dims, 12 bytes a vector) and
re-ranks its top 10·k candidates with the exact vectors; measured 0.93 unfiltered and 0.99
at 50 % here (0.27 and 0.34 before re-ranking, with dim/8 codes). Its floor is
IVF_PQ_FLOOR = 0.85, a margin for FAISS versions. Filters the default planner answers by
an exact scan keep the 0.95 floor.

Besides recall every query asserts: exactly min(k, matches) results, all satisfying the
filter, distances ascending, and (for kinds that keep exact vectors) distances equal to
numpy's under Haima's definitions (cosine 1 − cos, l2 squared).

Two limits found while writing these tests are fixed and checked here: HNSW + IDSelector
at 0.1 % used to return fewer than k results (now completed by an exact scan; a selective
filter over a large part is scanned exactly), and SQ8 on tight clusters lost recall
(0.89; now re-ranked exactly).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import haima
from haima.index import collection_index
from haima.index import planner as index_planner
from tests.data_gen import (
    BUCKETS,
    Clustered,
    brute_force,
    buckets,
    clustered,
    distances,
    queries_near,
    recall_at_k,
)

N = 42_000
DIM = 48
CLUSTERS = 100
SPREAD = 0.6
N_QUERIES = 50
K = 10
#: Records added after build_index(): they stay in the exact tail.
TAIL = 1_000
BATCH = 5_000
AUTO_THRESHOLD = 10_000

FLOOR = 0.95
IVF_PQ_FLOOR = 0.85

#: Fraction of records a filter keeps → the `bucket` bound that keeps it.
SELECTIVITIES: dict[float, int] = {0.5: 500, 0.1: 100, 0.01: 10, 0.001: 1}

#: (index type, metric); the ANN kind expected in the built index (None: exact only).
CASES: dict[tuple[str, str], str | None] = {
    ("flat", "cosine"): None,
    ("flat", "l2"): None,
    ("flat", "ip"): None,
    ("hnsw", "cosine"): "hnsw",
    ("hnsw", "l2"): "hnsw",
    ("ivf", "cosine"): "ivf",
    ("ivf_pq", "cosine"): "ivf_pq",
    ("sq8", "cosine"): "sq8",
    ("auto", "cosine"): "hnsw",
}
#: Kinds whose results carry exact distances (no quantisation).
EXACT_DISTANCES = {"flat", "hnsw", "ivf", "auto"}


@dataclass
class Dataset:
    data: Clustered
    bucket: npt.NDArray[np.int64]
    queries: npt.NDArray[np.float32]

    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        return self.data.vectors

    @property
    def n(self) -> int:
        return len(self.data.vectors)


@dataclass
class Built:
    client: haima.Client
    collection: haima.Collection
    index_type: str
    metric: str


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    data = clustered(N, DIM, CLUSTERS, seed=11, spread=SPREAD)
    return Dataset(data, buckets(N, seed=12), queries_near(data, N_QUERIES, seed=13))


def build(ds: Dataset, index_type: str, metric: str, name: str) -> Built:
    """A memory collection with its ANN part built over N − TAIL records and TAIL more
    records in the exact tail (background indexing off, so the state is deterministic)."""
    client = haima.Client(haima.Settings(background_indexing=False))
    index: dict[str, Any] = {"type": index_type}
    if index_type == "auto":
        index["auto_threshold"] = AUTO_THRESHOLD
    col = client.create_collection(
        name, configuration={"index": index, "metric": metric}, embedding_function=None
    )

    def add(start: int, stop: int) -> None:
        for lo in range(start, stop, BATCH):
            hi = min(lo + BATCH, stop)
            col.add(
                ids=[str(i) for i in range(lo, hi)],
                embeddings=ds.vectors[lo:hi],
                documents=[f"record {i}" for i in range(lo, hi)],
                metadatas=[
                    {"bucket": int(b), "row": i} for i, b in enumerate(ds.bucket[lo:hi], lo)
                ],
            )

    add(0, ds.n - TAIL)
    col.build_index()
    add(ds.n - TAIL, ds.n)
    return Built(client, col, index_type, metric)


@pytest.fixture(scope="module", params=list(CASES), ids=lambda c: f"{c[0]}-{c[1]}")
def built(request: pytest.FixtureRequest, dataset: Dataset) -> Iterator[Built]:
    index_type, metric = request.param
    b = build(dataset, index_type, metric, f"recall-{index_type}-{metric}")
    yield b
    b.client.close()


def _index_of(b: Built) -> collection_index.CollectionIndex:
    """The collection's in-memory index (engine internals: only to check the test really
    exercises the ANN part and to drop cached filter plans)."""
    backend: Any = b.client._backend
    return backend.indexes.slots[b.collection.id].index  # type: ignore[no-any-return]


def _forget_plans(b: Built) -> None:
    backend: Any = b.client._backend
    backend.plans.forget(b.collection.id)


def _cached_plans(b: Built) -> list[index_planner.PartPlan]:
    """The filter plans the engine cached for this collection (engine internals)."""
    backend: Any = b.client._backend
    return backend.plans.plans_of(b.collection.id)  # type: ignore[no-any-return]


@pytest.fixture
def ann_only(built: Built, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every filter through the ANN part (+ IDSelector), none through the exact scan."""
    _forget_plans(built)
    monkeypatch.setattr(index_planner, "EXACT_SCAN_LIMIT", 0)
    yield
    monkeypatch.undo()
    _forget_plans(built)


def check_query(b: Built, ds: Dataset, selectivity: float | None, floor: float) -> float:
    """Query, check every invariant, assert the recall floor; returns the recall."""
    bound = None if selectivity is None else SELECTIVITIES[selectivity]
    where = None if bound is None else {"bucket": {"$lt": bound}}
    allowed = None if bound is None else ds.bucket < bound
    matches = ds.n if allowed is None else int(allowed.sum())
    if selectivity is not None:
        assert matches == round(selectivity * ds.n)
    truth, _ = brute_force(ds.vectors, ds.queries, K, b.metric, allowed)

    result = b.collection.query(
        query_embeddings=ds.queries,
        n_results=K,
        where=where,
        include=["metadatas", "distances"],
    )
    assert result["distances"] is not None and result["metadatas"] is not None
    found: list[list[int]] = []
    for qi, (ids, dists, mds) in enumerate(
        zip(result["ids"], result["distances"], result["metadatas"], strict=True)
    ):
        rows = [int(i) for i in ids]
        found.append(rows)
        assert len(rows) == min(K, matches), f"query {qi}: {len(rows)} results"
        assert len(set(rows)) == len(rows), f"query {qi}: duplicate results"
        assert all(a <= c for a, c in itertools.pairwise(dists)), f"query {qi}: {dists}"
        for row, md in zip(rows, mds, strict=True):
            assert md is not None and md["row"] == row
            if bound is not None:
                value = md["bucket"]
                assert isinstance(value, int) and value < bound and ds.bucket[row] < bound
        if b.index_type in EXACT_DISTANCES:
            expected = distances(ds.vectors[rows], ds.queries[qi : qi + 1], b.metric)[0]
            np.testing.assert_allclose(dists, expected, rtol=1e-4, atol=1e-4)

    recall = recall_at_k(found, truth)
    assert recall >= floor, (
        f"{b.index_type}/{b.metric} selectivity={selectivity}: recall@{K} {recall:.3f} "
        f"< {floor} (matches={matches})"
    )
    return recall


def _floor(b: Built, selectivity: float | None, planner: str) -> float:
    if b.index_type != "ivf_pq":
        return FLOOR
    exact_scan = selectivity is not None and selectivity * N <= index_planner.EXACT_SCAN_LIMIT
    if planner == "default" and exact_scan:
        return FLOOR  # the planner scans the matching vectors exactly
    return IVF_PQ_FLOOR


# -- tests --------------------------------------------------------------------------------


def test_ann_part_is_built(built: Built) -> None:
    index = _index_of(built)
    expected = CASES[(built.index_type, built.metric)]
    assert (index.main.kind if index.main is not None else None) == expected
    if expected is None:
        assert index.tail.live_count == N
    else:
        assert index.main is not None and index.main.live_count == N - TAIL
        assert index.tail.live_count == TAIL
    assert built.collection.count() == N


@pytest.mark.parametrize("selectivity", [None, *SELECTIVITIES], ids=lambda s: f"sel={s}")
def test_recall_default_planner(built: Built, dataset: Dataset, selectivity: float | None) -> None:
    check_query(built, dataset, selectivity, _floor(built, selectivity, "default"))


@pytest.mark.parametrize("selectivity", list(SELECTIVITIES), ids=lambda s: f"sel={s}")
@pytest.mark.usefixtures("ann_only")
def test_recall_ann_filtered_path(built: Built, dataset: Dataset, selectivity: float) -> None:
    check_query(built, dataset, selectivity, _floor(built, selectivity, "ann_only"))
    plans = _cached_plans(built)
    assert plans, "the filter plan was not cached: cannot tell which path ran"
    assert all(p.exact_rids is None and p.restriction is not None for p in plans), (
        "ann_only did not force the IDSelector path"
    )


def test_sq8_recall_on_tight_clusters() -> None:
    n = 20_000
    data = clustered(n, DIM, CLUSTERS, seed=21, spread=0.25)
    ds = Dataset(data, buckets(n, seed=22), queries_near(data, N_QUERIES, seed=23))
    b = build(ds, "sq8", "cosine", "sq8-tight")
    try:
        check_query(b, ds, None, FLOOR)
    finally:
        b.client.close()


def test_bucket_field_has_exact_selectivities(dataset: Dataset) -> None:
    counts = np.bincount(dataset.bucket, minlength=BUCKETS)
    assert counts.min() == counts.max() == N // BUCKETS
    for fraction, bound in SELECTIVITIES.items():
        assert int((dataset.bucket < bound).sum()) == round(fraction * N) >= K


def _build_requested_views(b: Built) -> int:
    """Build the filtered views the collection's plans asked for, here and now (engine
    internals: `build_index()` would also index the tail, which other tests count)."""
    backend: Any = b.client._backend
    count = 0
    while True:
        with backend.lock:
            wanted = backend.background.next_view(b.collection.id)
        if wanted is None:
            return count
        backend.background.build_view(*wanted)
        count += 1


@pytest.mark.parametrize("selectivity", [0.5, 0.1], ids=lambda s: f"sel={s}")
def test_recall_through_filtered_views(built: Built, dataset: Dataset, selectivity: float) -> None:
    """A filter queried three times gets a view of an HNSW part (not of other kinds);
    answers through it keep every invariant and the floor."""
    _forget_plans(built)
    floor = _floor(built, selectivity, "default")
    for _ in range(3):
        check_query(built, dataset, selectivity, floor)
    hnsw = CASES[(built.index_type, built.metric)] == "hnsw"
    assert _build_requested_views(built) == (1 if hnsw else 0)
    check_query(built, dataset, selectivity, floor)
    viewed = [p for p in _cached_plans(built) if p.view is not None]
    assert len(viewed) == (1 if hnsw else 0)
    _forget_plans(built)
