"""One FAISS index with its rids (haima/index/faiss_index.py): what the planner relies on."""

from __future__ import annotations

import numpy as np

from haima.config import IndexConfig
from haima.index.faiss_index import (
    SearchTuning,
    VectorIndex,
    build_faiss_index,
    prepare,
)

DIM = 16


def _index(kind: str, n: int) -> tuple[VectorIndex, np.ndarray]:
    vectors = prepare(
        np.random.default_rng(1).standard_normal((n, DIM)).astype(np.float32), "cosine"
    )
    index = VectorIndex(kind, build_faiss_index(kind, DIM, "cosine", IndexConfig(), n), "cosine")
    index.add(np.arange(100, 100 + n, dtype=np.int64), vectors)
    return index, vectors


def test_any_query_layout_gives_the_same_answer() -> None:
    index, vectors = _index("hnsw", 300)
    queries = np.asfortranarray(vectors[:5].astype(np.float64))  # neither C order nor float32
    got = index.search(queries, 3, None, SearchTuning())
    want = index.search(np.ascontiguousarray(vectors[:5]), 3, None, SearchTuning())
    np.testing.assert_array_equal(got[1], want[1])
    assert (got[1][:, 0] == np.arange(100, 105)).all()  # each vector finds itself


def test_short_answers_are_padded_with_rid_minus_one() -> None:
    for kind in ("flat", "hnsw"):
        index, vectors = _index(kind, 4)
        _, rids = index.search(vectors[:1], 10, None, SearchTuning())
        assert sorted(rids[0][:4].tolist()) == [100, 101, 102, 103]
        assert rids[0][4:].tolist() == [-1] * 6


def test_a_restriction_limits_the_answer_and_keeps_its_parameters() -> None:
    index, vectors = _index("hnsw", 200)
    allowed = index.restriction_of(np.arange(0, 200, 10))
    _, rids = index.search(vectors[:3], 5, allowed, SearchTuning())
    assert set(rids.ravel().tolist()) <= {100 + p for p in range(0, 200, 10)}
    assert allowed.params("hnsw", SearchTuning()) is allowed.params("hnsw", SearchTuning())
    _, flat_rids = index.search(vectors[:3], 5, allowed, SearchTuning(), flat=True)
    assert set(flat_rids.ravel().tolist()) <= {100 + p for p in range(0, 200, 10)}


def test_a_single_query_scans_on_one_faiss_thread_unless_configured() -> None:
    import faiss

    from haima.index.faiss_index import faiss_threads, search_threads

    assert search_threads(None, 1) == 1  # FAISS's split of one query's scan is slower
    assert search_threads(None, 8) is None  # queries split between threads: the default
    assert search_threads(3, 1) == 3  # a collection's num_threads wins
    before = faiss.omp_get_max_threads()
    with faiss_threads(search_threads(None, 1)):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before


def test_an_extension_copies_its_vectors_into_a_buffer_made_beforehand() -> None:
    from haima.config import IndexConfig
    from haima.index.collection_index import CollectionIndex

    data = np.random.default_rng(5).standard_normal((300, 8)).astype(np.float32)
    index = CollectionIndex(8, "l2", IndexConfig(type="hnsw"))
    index.apply(np.arange(1, 301), data, [f"r{i}" for i in range(300)], np.zeros(0, int), 1)
    index.delete(np.array([5, 6]))  # tombstoned tail vectors are not taken
    assert index.extend_batch() == 298
    plain = index.start_extend()  # copied at once
    buffer = np.empty((298, 8), np.float32)
    chunked = index.start_extend(into=buffer)
    assert plain is not None and chunked is not None and plain.positions is None
    assert np.shares_memory(chunked.vectors, buffer)
    # More writes between the chunks: the tail grows (its storage may move), and the
    # job's rows are found again each time.
    index.apply(np.arange(301, 1301), np.ones((1000, 8), np.float32), ["x"] * 1000, [], 2)
    for start in range(0, 298, 100):
        assert index.copy_for_extend(chunked, start, start + 100)
    assert np.array_equal(chunked.vectors, plain.vectors)
    assert np.array_equal(chunked.rids, plain.rids) and 5 not in chunked.rids
    small = index.start_extend(into=np.empty((100, 8), np.float32))
    assert small is not None and list(small.rids) == list(plain.rids[:100])
    # A compaction or reconfiguration moves tail positions: the copy stops.
    index.reconfigure(IndexConfig(type="hnsw", max_neighbors=8), lambda rids: data[rids - 1])
    assert not index.copy_for_extend(small, 0, 100)


def test_a_large_single_query_scan_split_in_two_answers_as_one_scan() -> None:
    """Above SPLIT_SCAN_ROWS, one query's exact scan runs in two halves at once; the
    answer is FAISS's own over the whole (k beyond a half's size included), for each
    metric, and the same when the helper is busy and the caller scans alone."""
    from haima.index import faiss_index

    n = faiss_index.SPLIT_SCAN_ROWS + 7  # odd: the halves differ in size
    rng = np.random.default_rng(5)
    for metric in ("cosine", "ip", "l2"):
        vectors = prepare(rng.standard_normal((n, DIM)).astype(np.float32), metric)
        index = VectorIndex(
            "flat", build_faiss_index("flat", DIM, metric, IndexConfig(), n), metric
        )
        index.add(np.arange(100, 100 + n, dtype=np.int64), vectors)
        query = prepare(rng.standard_normal((1, DIM)).astype(np.float32), metric)
        for k in (1, 10, n // 2 + 3):
            whole_scores, positions = index.index.search(query, k)  # FAISS, one scan
            scores, rids = index.search(query, k, None, SearchTuning())
            np.testing.assert_array_equal(rids, positions + 100)
            np.testing.assert_allclose(scores, whole_scores, rtol=1e-6)
        assert faiss_index._scan_helper.try_claim() is not None  # another query holds it
        try:
            _, alone = index.search(query, 10, None, SearchTuning())
        finally:
            faiss_index._scan_helper.release()
        np.testing.assert_array_equal(alone, index.index.search(query, 10)[1] + 100)
