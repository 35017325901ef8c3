"""Reference computations the tests compare Haima against: brute-force nearest
neighbours in numpy, and a tie-tolerant check of a query's answer."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]

#: Two distances closer than this count as a tie (float32 arithmetic in FAISS and numpy).
TIE = 1e-4


def cosine_distances(query: Vector, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """1 − cos, with a zero vector at distance 1 from everything (as Haima normalises)."""
    q = np.asarray(query, np.float64)
    m = np.asarray(vectors, np.float64).reshape(-1, len(q))
    qn = np.linalg.norm(q)
    mn = np.linalg.norm(m, axis=1)
    q = q / qn if qn > 0 else q
    m = np.divide(m, mn[:, None], out=np.zeros_like(m), where=mn[:, None] > 0)
    return np.asarray(1.0 - m @ q, np.float64)


def check_query_row(
    got_ids: Sequence[str],
    got_distances: Sequence[float],
    query: Vector,
    candidates: Mapping[str, Vector],
    k: int,
    *,
    exact: bool = True,
) -> float:
    """Check one query row against the exact answer over `candidates` (id → vector).

    Always: ids are distinct candidates, every reported distance is the true one, the row
    is sorted and has min(k, len(candidates)) entries. With `exact`, the row is a true
    top-k up to ties. Returns the recall against the exact top-k (ties count as hits)."""
    want = min(k, len(candidates))
    assert len(got_ids) == want, f"expected {want} results, got {len(got_ids)}"
    assert len(set(got_ids)) == len(got_ids), f"duplicate ids in {got_ids}"
    if not want:
        return 1.0
    names = list(candidates)
    true = cosine_distances(query, np.stack([candidates[n] for n in names]))
    by_id = dict(zip(names, true, strict=True))
    for record_id, distance in zip(got_ids, got_distances, strict=True):
        assert record_id in by_id, f"{record_id!r} is not a live record"
        assert abs(by_id[record_id] - distance) < TIE, (
            f"{record_id!r}: reported distance {distance}, true {by_id[record_id]}"
        )
    assert all(a <= b + TIE for a, b in itertools.pairwise(got_distances)), "not sorted"
    kth = float(np.sort(true)[want - 1])
    hits = sum(1 for d in got_distances if d <= kth + TIE)
    if exact:
        assert hits == want, (
            f"not the top-{want}: k-th true distance {kth}, got distances {list(got_distances)}"
        )
        closer = {n for n, d in by_id.items() if d < kth - TIE}
        assert closer <= set(got_ids), f"missing nearer records {sorted(closer - set(got_ids))}"
    return hits / want
