"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) of several rankings.

A record ranked r-th (from 1) in a ranking gets 1 / (k + r) from it; its fused score is
the sum over the rankings that hold it. Ranks, not scores, are fused, so BM25 and cosine
distances need no common scale.
"""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int, limit: int
) -> list[tuple[int, float]]:
    """The best `limit` (rid, fused score) pairs, highest score first; equal scores in
    rid order (older records first), so that answers are repeatable."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, rid in enumerate(ranking, start=1):
            scores[rid] = scores.get(rid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]


def fused_distance(score: float, k: int, n_rankings: int) -> float:
    """1 − score / best possible score: 0 for a record first in every ranking, closer
    to 1 the worse it ranks (0.5 for first in one of two rankings and absent from the
    other). Lower is better, like a distance, and comparable across queries."""
    return 1.0 - score * (k + 1) / n_rankings
