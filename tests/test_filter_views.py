"""Filtered views: a filter that repeats gets an HNSW graph of its matching vectors.

The collections here use `Settings(background_indexing=False)`, so a view is built only
when the test asks (`build_index()`, or one step of the background indexer's work), and
VIEW_MIN_MATCHES is lowered so that small collections qualify. Answers are checked
against numpy brute force (tests/data_gen.py), never against another Haima path.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import haima
from haima.config import IndexConfig
from haima.index import planner
from haima.index.plan_cache import PlanCache
from haima.index.planner import PartPlan
from tests.data_gen import brute_force, buckets, clustered, distances, queries_near

N = 6_000
DIM = 24
K = 10
#: `bucket < 200` keeps 20% of the records (1,200), `bucket < 600` 60% of them.
VIEWED = {"bucket": {"$lt": 200}}
TOO_BROAD = {"bucket": {"$lt": 600}}


@dataclass
class Setup:
    client: haima.Client
    collection: haima.Collection
    vectors: np.ndarray[Any, Any]
    bucket: np.ndarray[Any, Any]
    queries: np.ndarray[Any, Any]

    @property
    def backend(self) -> Any:
        return self.client._backend

    def plans(self) -> list[PartPlan]:
        return self.backend.plans.plans_of(self.collection.id)  # type: ignore[no-any-return]

    def views(self) -> list[PartPlan]:
        return [p for p in self.plans() if p.view is not None]

    def query(self, where: dict[str, Any], n_results: int = K) -> dict[str, Any]:
        return dict(
            self.collection.query(
                query_embeddings=self.queries,
                n_results=n_results,
                where=where,  # type: ignore[arg-type]
                include=["distances", "metadatas"],
            )
        )


def make(view_after: int = 3, index_type: str = "hnsw") -> Setup:
    data = clustered(N, DIM, 30, seed=41, spread=0.5)
    bucket = buckets(N, seed=42)
    client = haima.Client(haima.Settings(background_indexing=False, filter_view_after=view_after))
    col = client.create_collection(
        "views", configuration={"index": {"type": index_type}, "metric": "cosine"}
    )
    col.add(
        ids=[str(i) for i in range(N)],
        embeddings=data.vectors,
        metadatas=[{"bucket": int(b), "row": i} for i, b in enumerate(bucket)],
    )
    col.build_index()
    return Setup(client, col, data.vectors, bucket, queries_near(data, 40, seed=43))


@pytest.fixture(autouse=True)
def small_views(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "VIEW_MIN_MATCHES", 500)


@pytest.fixture
def setup() -> Iterator[Setup]:
    s = make()
    yield s
    s.client.close()


def check_answer(s: Setup, result: dict[str, Any], bound: int, n_results: int = K) -> float:
    """Every row: min(n_results, matches) distinct matching records with numpy's distances,
    ascending. Returns recall@n_results against brute force."""
    allowed = s.bucket < bound
    truth, _ = brute_force(s.vectors, s.queries, n_results, "cosine", allowed)
    hits = 0
    for qi, (ids, dists, metadatas) in enumerate(
        zip(result["ids"], result["distances"], result["metadatas"], strict=True)
    ):
        rows = [int(i) for i in ids]
        assert len(rows) == len(set(rows)) == min(n_results, int(allowed.sum()))
        assert all(
            md["bucket"] < bound and md["row"] == r for md, r in zip(metadatas, rows, strict=True)
        )
        expected = distances(s.vectors[rows], s.queries[qi : qi + 1], "cosine")[0]
        np.testing.assert_allclose(dists, expected, rtol=1e-4, atol=1e-4)
        assert list(dists) == sorted(dists)
        hits += len(set(rows) & {int(t) for t in truth[qi] if t >= 0})
    return hits / truth[truth >= 0].size


def test_a_repeated_filter_gets_a_view_that_answers_like_brute_force(setup: Setup) -> None:
    for _ in range(2):
        setup.query(VIEWED)
    setup.collection.build_index()
    assert not setup.views(), "two uses must not ask for a view (filter_view_after=3)"

    setup.query(VIEWED)  # the third use asks for it
    setup.collection.build_index()
    [viewed] = setup.views()
    assert viewed.view is not None and viewed.view.size == viewed.matches == 1_200
    assert viewed.exact_vectors is None, "the gathered vectors are let go once viewed"
    assert check_answer(setup, setup.query(VIEWED), 200) >= 0.95


def test_more_results_than_the_view_holds_returns_every_match() -> None:
    s = make(view_after=1)
    try:
        where = {"bucket": {"$lt": 100}}  # 600 records
        s.query(where)
        s.collection.build_index()
        assert [p.view.size for p in s.views() if p.view is not None] == [600]
        result = s.query(where, n_results=700)
        assert check_answer(s, result, 100, n_results=700) == 1.0
    finally:
        s.client.close()


def test_the_background_indexer_builds_views(setup: Setup) -> None:
    for _ in range(3):
        setup.query(VIEWED)
    assert setup.backend.background.index_some() is True  # one step: the view
    assert len(setup.views()) == 1
    assert setup.backend.background.index_some() is False  # nothing left to do
    assert check_answer(setup, setup.query(VIEWED), 200) >= 0.95


def test_writes_retire_a_view_and_answers_follow_them(setup: Setup) -> None:
    for _ in range(3):
        setup.query(VIEWED)
    setup.collection.build_index()
    assert setup.views()
    nearest = setup.query(VIEWED, n_results=1)["ids"][0][0]
    setup.collection.delete(ids=[nearest])
    # A new matching record exactly at the first query: it must be found first.
    setup.collection.add(ids=["new"], embeddings=setup.queries[:1], metadatas=[{"bucket": 0}])
    result = setup.collection.query(query_embeddings=setup.queries[:1], n_results=K, where=VIEWED)
    assert result["ids"][0][0] == "new"
    assert nearest not in result["ids"][0]
    assert not setup.views(), "a view of an older version must not be searched"


def test_a_view_finished_after_a_write_is_not_attached(setup: Setup) -> None:
    for _ in range(3):
        setup.query(VIEWED)
    backend = setup.backend
    with backend.lock:
        request, job = backend.background.next_view(setup.collection.id)
    setup.collection.delete(ids=["0"])
    backend.background.build_view(request, job)
    assert request.plan.view is None
    assert not setup.views()


@pytest.mark.parametrize(
    ("where", "view_after", "index_type"),
    [
        (TOO_BROAD, 3, "hnsw"),  # most of the collection: the shared graph loses little
        (VIEWED, 0, "hnsw"),  # switched off
        (VIEWED, 3, "flat"),  # exact collections stay exact
        (VIEWED, 3, "sq8"),  # views are HNSW graphs of HNSW parts only
    ],
    ids=["60%", "off", "flat", "sq8"],
)
def test_no_view_where_none_is_due(where: dict[str, Any], view_after: int, index_type: str) -> None:
    s = make(view_after=view_after, index_type=index_type)
    try:
        for _ in range(5):
            s.query(where)
        s.collection.build_index()
        assert s.plans(), "the plan was not cached: cannot tell whether a view was built"
        assert not s.views()
        bound = where["bucket"]["$lt"]
        assert check_answer(s, s.query(where), bound) >= 0.95
    finally:
        s.client.close()


def test_the_plan_cache_counts_views_in_its_budget() -> None:
    plan = PartPlan("main", matches=1_000, view_nbytes=400)
    small = PlanCache(budget=1_000, view_after=1)
    small.put(("c", "f"), 1, [plan])
    assert small.next_request() is None, "a view over a quarter of the budget is not built"

    cache = PlanCache(budget=10_000, view_after=2)
    cache.put(("c", "f"), 1, [plan])
    assert cache.next_request() is None
    assert cache.get(("c", "f"), 2) is None  # another version: stale, no use counted
    assert cache.get(("c", "f"), 1) == [plan]
    request = cache.next_request()
    assert request is not None and request.plan is plan
    assert cache.next_request() is None, "a view is asked for once"
    before = cache.stats().nbytes
    view = planner.build_view(
        np.arange(3, dtype=np.int64),
        np.eye(3, 4, dtype=np.float32),
        "cosine",
        IndexConfig(),
    )
    assert cache.building("c")
    assert cache.finish(request, view)
    assert not cache.building("c")
    assert cache.stats().nbytes == before + 400
    cache.forget("c")
    assert cache.stats().nbytes == 0


def test_settings_reject_a_bad_view_threshold() -> None:
    with pytest.raises(haima.InvalidArgumentError, match="filter_view_after"):
        haima.Settings(filter_view_after=-1)


class _RecordingCondition(threading.Condition):
    """A condition that tells when somebody waits on it."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def test_build_index_waits_for_a_view_the_indexer_is_building(setup: Setup) -> None:
    for _ in range(3):
        setup.query(VIEWED)
    backend = setup.backend
    backend.background.view_built = _RecordingCondition(backend.lock)
    with backend.lock:  # the indexer takes the request...
        request, job = backend.background.next_view(setup.collection.id)
    seen: list[int] = []
    waiter = threading.Thread(
        target=lambda: (setup.collection.build_index(), seen.append(len(setup.views())))
    )
    waiter.start()
    assert backend.background.view_built.waiting.wait(timeout=60), "build_index did not wait"
    assert not seen
    backend.background.build_view(request, job)  # ...and finishes it
    waiter.join(timeout=60)
    assert seen == [1]


def test_with_background_indexing_the_view_is_built_off_the_query_path() -> None:
    data = clustered(3_000, DIM, 20, seed=44, spread=0.5)
    with haima.Client() as client:  # background indexing on: the real builder thread
        col = client.create_collection(
            "background", configuration={"index": {"type": "hnsw"}, "metric": "cosine"}
        )
        col.add(
            ids=[str(i) for i in range(3_000)],
            embeddings=data.vectors,
            metadatas=[{"even": i % 2 == 0} for i in range(3_000)],
        )
        col.build_index()
        for query in data.vectors[:3]:
            col.query(query_embeddings=query[None, :], n_results=5, where={"even": True})
        col.build_index()  # waits for the builder if it took the request first
        backend: Any = client._backend
        [plan] = backend.plans.plans_of(col.id)
        assert plan.view is not None and plan.view.size == 1_500
        found = col.query(query_embeddings=data.vectors[:1], n_results=5, where={"even": True})
        assert found["ids"][0][0] == "0"


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")
def test_views_are_built_at_the_lowest_priority_and_queries_keep_theirs() -> None:
    def own_nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = own_nice()
    with haima.Client() as client:
        builder = client._backend.background.view_builder  # type: ignore[attr-defined]
        assert builder.submit(own_nice).result() == 19
        assert own_nice() == before


def test_a_request_whose_index_moved_on_is_dropped_not_left_building(setup: Setup) -> None:
    for _ in range(3):
        setup.query(VIEWED)
    backend = setup.backend
    with backend.lock:
        backend.indexes.slots[setup.collection.id].index._changed()  # a change no plan heard of
        assert backend.background.next_view(setup.collection.id) is None
    assert not backend.plans.building(setup.collection.id)
    setup.collection.build_index()  # returns at once: nothing is left being built
    assert not setup.views()
