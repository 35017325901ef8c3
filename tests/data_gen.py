"""Seeded synthetic data for recall tests: clustered vectors, held-out queries, metadata
with exact selectivities, and brute-force ground truth computed with numpy alone.

Nothing here imports Haima or FAISS, so the ground truth is independent of the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

#: `bucket` takes values in [0, BUCKETS); each value is held by exactly n / BUCKETS records.
BUCKETS = 1_000


@dataclass(frozen=True)
class Clustered:
    vectors: Floats  # (n, dim)
    cluster: Ints  # (n,) the cluster each vector was drawn from
    centers: Floats  # (n_clusters, dim)
    spread: float  # per-coordinate standard deviation around a center


def clustered(n: int, dim: int, n_clusters: int, seed: int, spread: float = 0.35) -> Clustered:
    """`n` points drawn around `n_clusters` gaussian centres (cluster sizes vary ~3×)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    weights = rng.uniform(1.0, 3.0, n_clusters)
    cluster = rng.choice(n_clusters, size=n, p=weights / weights.sum()).astype(np.int64)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * np.float32(spread)
    return Clustered(centers[cluster] + noise, cluster, centers, spread)


def queries_near(data: Clustered, count: int, seed: int) -> Floats:
    """Held-out queries: fresh draws around randomly chosen cluster centres."""
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(data.centers), count)
    noise = rng.standard_normal((count, data.centers.shape[1])).astype(np.float32)
    return data.centers[picked] + noise * np.float32(data.spread)


def buckets(n: int, seed: int) -> Ints:
    """An int field in [0, BUCKETS) independent of the vectors, with equal counts per value
    (n must be a multiple of BUCKETS), so `bucket < b` matches exactly b/BUCKETS of n."""
    if n % BUCKETS:
        raise ValueError(f"n={n} must be a multiple of {BUCKETS}")
    values = np.tile(np.arange(BUCKETS, dtype=np.int64), n // BUCKETS)
    return np.random.default_rng(seed).permutation(values)


def distances(vectors: Floats, queries: Floats, metric: str) -> npt.NDArray[np.float64]:
    """Haima's distance definitions in float64: cosine 1 − cos, l2 squared, ip 1 − dot."""
    x = vectors.astype(np.float64)
    q = queries.astype(np.float64)
    out: npt.NDArray[np.float64]
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        out = 1.0 - q @ x.T
    elif metric == "ip":
        out = 1.0 - q @ x.T
    elif metric == "l2":
        sq = (q * q).sum(1)[:, None] - 2.0 * (q @ x.T) + (x * x).sum(1)[None, :]
        out = np.maximum(sq, 0.0)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return out


def brute_force(
    vectors: Floats,
    queries: Floats,
    k: int,
    metric: str,
    allowed: npt.NDArray[np.bool_] | None = None,
) -> tuple[Ints, npt.NDArray[np.float64]]:
    """Exact top-k row numbers and distances per query among `allowed` rows (all if None).
    Rows shorter than k (fewer matches) are padded with -1 / inf."""
    dist = distances(vectors, queries, metric)
    if allowed is not None:
        dist[:, ~allowed] = np.inf
    k_eff = min(k, dist.shape[1])
    part = np.argpartition(dist, k_eff - 1, axis=1)[:, :k_eff]
    part_dist = np.take_along_axis(dist, part, axis=1)
    order = np.argsort(part_dist, axis=1, kind="stable")
    rows = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top = np.take_along_axis(part_dist, order, axis=1)
    rows[~np.isfinite(top)] = -1
    return rows, top


def recall_at_k(found: list[list[int]], truth: Ints) -> float:
    """Mean over queries of |found ∩ true top-k| / |true top-k| (rows of -1 are absent)."""
    scores = []
    for got, true_row in zip(found, truth, strict=True):
        true_set = {int(t) for t in true_row if t >= 0}
        if not true_set:
            continue
        scores.append(len(true_set.intersection(got)) / len(true_set))
    return float(np.mean(scores)) if scores else 1.0
