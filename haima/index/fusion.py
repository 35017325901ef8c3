"""Fusion of a keyword ranking and a vector ranking into one (`mode="hybrid"`).

Two ways, chosen per collection (`configuration.keyword.fusion`):

* ``"convex"`` (the default): each side's scores are normalised to [0, 1] over its
  candidates for the query — BM25 scores divided by the best one (BM25 is ≥ 0, and every
  keyword hit keeps a share above "absent"), vector similarities min-max (the nearest 1,
  the farthest candidate 0) — and the fused score is
  ``weight × keyword + (1 − weight) × vector`` (absent from a side: 0 there). Scores, not only ranks, are fused, so a
  side that is sure of its first answer keeps it, and `weight` lets the stronger side
  lead: equal-weight rank fusion let a weak embedding model drag BM25's answers down
  (docs/hybrid-search.md has the measurements).
* ``"rrf"``: reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) with equal
  weights: a record ranked r-th (from 1) gets 1 / (k + r) from each ranking that holds
  it. Ranks only, so the scales of BM25 and of the distance never matter.

Both return (rid, distance) pairs with distance in [0, 1], lower is better, comparable
across queries: 0 for a record first (and best) on every side.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Ties are broken by rid (older records first) so that answers are repeatable.


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int, limit: int
) -> list[tuple[int, float]]:
    """The best `limit` (rid, fused distance) pairs of equal-weight RRF, best first.

    Distance = 1 − score / best possible score: 0.5 for a record first in one of two
    rankings and absent from the other."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, rid in enumerate(ranking, start=1):
            scores[rid] = scores.get(rid, 0.0) + 1.0 / (k + rank)
    best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
    top = len(rankings) / (k + 1)
    return [(rid, 1.0 - score / top) for rid, score in best]


def convex_fusion(
    keyword: Sequence[tuple[int, float]],
    vector: Sequence[tuple[int, float]],
    weight: float,
    limit: int,
) -> list[tuple[int, float]]:
    """The best `limit` (rid, 1 − fused score) pairs, best first.

    `keyword` and `vector` are (rid, distance) pairs, lower distance better (BM25's
    negated score, ≤ 0; the vector distance); `weight` is the keyword side's share."""
    scores: dict[int, float] = {}
    for rid, norm in _relative_to_best(keyword):
        scores[rid] = weight * norm
    for rid, norm in _min_max(vector):
        scores[rid] = scores.get(rid, 0.0) + (1.0 - weight) * norm
    best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [(rid, 1.0 - score) for rid, score in best]


def _relative_to_best(hits: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """(rid, BM25 score / best BM25 score) from negated BM25 scores: in (0, 1], so the
    weakest keyword hit still outranks a record the keywords did not find (min-max would
    give it 0, the same as absent, and let vector-only candidates pass it)."""
    if not hits:
        return []
    best = min(d for _, d in hits)
    if best >= 0.0:  # no term carried weight (FTS5 keeps BM25 ≤ 0): all alike
        return [(rid, 1.0) for rid, _ in hits]
    return [(rid, max(d, best) / best) for rid, d in hits]


def _min_max(hits: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """(rid, score in [0, 1]): 1 for the smallest distance, 0 for the largest; all 1 when
    the candidates are equally good (one candidate, or identical distances)."""
    if not hits:
        return []
    distances = [d for _, d in hits]
    low, high = min(distances), max(distances)
    if high - low <= 0.0:
        return [(rid, 1.0) for rid, _ in hits]
    span = high - low
    return [(rid, (high - d) / span) for rid, d in hits]
