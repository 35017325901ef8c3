"""Retrieval metrics: small pure functions over one query's ranking and judgements.

Every quality metric takes `ranked`, the document ids a system returned, best first, and
`judged`, that query's judgements {document id → grade}; a grade > 0 is relevant, a grade
≤ 0 (or no judgement) is not. Conventions, the ones trec_eval (and so BEIR) uses:

* Only the first `k` entries of `ranked` count; `k` larger than the ranking is fine
  (missing positions count as non-relevant).
* Ties in scores are broken by the order of `ranked`; the functions never see scores.
  A document listed twice counts once, at its first position.
* A query without any relevant document scores 0.0 on every metric (the evaluation
  runner leaves such queries out of its averages and reports how many it left out).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

Judgements = Mapping[str, int]


def _top(ranked: Sequence[str], k: int | None) -> list[str]:
    """The first `k` distinct ids of `ranked` (all of them when k is None)."""
    if k is not None and k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    seen: dict[str, None] = {}
    for doc_id in ranked:
        if k is not None and len(seen) == k:
            break
        seen.setdefault(doc_id, None)
    return list(seen)


def _relevant(judged: Judgements) -> set[str]:
    return {doc_id for doc_id, grade in judged.items() if grade > 0}


def hit_at_k(ranked: Sequence[str], judged: Judgements, k: int) -> float:
    """Hit@k = 1 if any of the top k is relevant, else 0 (a.k.a. success@k)."""
    relevant = _relevant(judged)
    return 1.0 if any(d in relevant for d in _top(ranked, k)) else 0.0


def recall_at_k(ranked: Sequence[str], judged: Judgements, k: int) -> float:
    """Recall@k = |relevant ∩ top k| / |relevant|.

    The denominator is every relevant document, so a query with more than k of them
    cannot reach 1 (trec_eval's recall_k; BEIR's "R_cap" variant divides by min(k, R))."""
    relevant = _relevant(judged)
    if not relevant:
        return 0.0
    return sum(1 for d in _top(ranked, k) if d in relevant) / len(relevant)


def precision_at_k(ranked: Sequence[str], judged: Judgements, k: int) -> float:
    """Precision@k = |relevant ∩ top k| / k, with k the denominator even when fewer than
    k results came back (trec_eval's P_k)."""
    relevant = _relevant(judged)
    if not relevant:
        return 0.0
    return sum(1 for d in _top(ranked, k) if d in relevant) / k


def mrr_at_k(ranked: Sequence[str], judged: Judgements, k: int) -> float:
    """Reciprocal rank: 1 / rank of the first relevant document within the top k (ranks
    start at 1), or 0 when there is none. MRR@k is its mean over queries."""
    relevant = _relevant(judged)
    for rank, doc_id in enumerate(_top(ranked, k), start=1):
        if doc_id in relevant:
            return 1.0 / rank
    return 0.0


def dcg(gains: Sequence[float]) -> float:
    """DCG = Σᵢ gainᵢ / log2(i + 1), positions i = 1, 2, … (so position 1 is undiscounted)."""
    return sum(g / math.log2(i + 1) for i, g in enumerate(gains, start=1))


def ndcg_at_k(ranked: Sequence[str], judged: Judgements, k: int) -> float:
    """nDCG@k = DCG@k / IDCG@k with graded relevance and a linear gain: gainᵢ = grade of
    the document at position i (grades ≤ 0 give 0), discounted by log2(i + 1) as in
    `dcg`. IDCG@k is the DCG of the k best grades of all judged documents (the ideal
    ranking), as trec_eval's ndcg_cut computes it (not the exponential 2^grade − 1 gain)."""
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    if not ideal:
        return 0.0
    gains = [max(0, judged.get(d, 0)) for d in _top(ranked, k)]
    return dcg(gains) / dcg(ideal)


def average_precision(ranked: Sequence[str], judged: Judgements, k: int | None = None) -> float:
    """AP@k = (1 / R) · Σ_{i ≤ k, document i relevant} Precision@i, with R the number of
    relevant documents (all of them, not min(k, R): trec_eval's map_cut_k). `k=None`
    uses the whole ranking (trec_eval's map). MAP is its mean over queries."""
    relevant = _relevant(judged)
    if not relevant:
        return 0.0
    found = 0
    total = 0.0
    for rank, doc_id in enumerate(_top(ranked, k), start=1):
        if doc_id in relevant:
            found += 1
            total += found / rank
    return total / len(relevant)


#: The quality metrics the runner computes for every k, by name.
METRICS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
    "hit": hit_at_k,
    "map": average_precision,
}


def score_query(ranked: Sequence[str], judged: Judgements, ks: Sequence[int]) -> dict[str, float]:
    """Every metric of `METRICS` at every k, keyed "ndcg@10", "recall@5", …"""
    return {f"{name}@{k}": fn(ranked, judged, k) for k in ks for name, fn in METRICS.items()}


# -- cost metrics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation between closest ranks
    (numpy's default), e.g. p50 = the median, p95 = the value 95% of queries stay under.
    NaN for no values."""
    if not values:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def throughput(items: int, seconds: float) -> float:
    """Items per second (documents ingested / wall seconds); inf when no time passed."""
    return items / seconds if seconds > 0 else math.inf


def directory_size(path: str | Path) -> int:
    """Bytes of every regular file under `path` (what the store occupies on disk,
    counted by file length; symlinks are not followed)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total
