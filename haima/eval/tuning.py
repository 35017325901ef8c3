"""Choosing a collection's hybrid fusion weight on labelled data, cross-validated.

One collection holds the corpus with its keyword index; every query is answered in
hybrid mode (convex fusion, docs/hybrid-search.md) at each weight of a grid, and scored
by nDCG@k. The weight reported is the best on all queries; the figure that says how well
it generalises is the cross-validated one: the queries are split into folds (seeded), each
fold is answered with the weight that did best on the *other* folds, and those held-out
scores are averaged — so the estimate is never fit to the queries it is measured on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from haima.collection import Collection
from haima.eval.configs import RunConfig
from haima.eval.datasets import Dataset
from haima.eval.metrics import score_query
from haima.eval.runner import (
    EmbeddedTarget,
    Log,
    Target,
    _embed,
    _Precomputed,
    enable_keyword_index,
    fill,
)

#: Keyword shares tried: 0 (vectors only) to 1 (keywords only) in steps of 0.1.
DEFAULT_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class Fold:
    """One fold: the weight chosen on the other folds and its score on this one."""

    query_ids: tuple[str, ...]
    weight: float
    train_ndcg: float
    held_out_ndcg: float


@dataclass
class TuningResult:
    dataset: str
    embedding: str
    k: int
    seed: int
    #: Mean nDCG@k over all queries at each weight of the grid.
    by_weight: dict[float, float]
    folds: list[Fold]
    #: Mean held-out nDCG@k over all queries (each answered at its fold's weight).
    cross_validated_ndcg: float
    #: The best weight on all queries: what `--write-to` stores.
    weight: float
    keyword_ndcg: float
    vector_ndcg: float
    queries: int
    written_to: str | None = None
    per_query: dict[float, list[float]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("per_query")
        data["by_weight"] = {str(w): v for w, v in self.by_weight.items()}
        for fold in data["folds"]:
            fold["queries"] = len(fold.pop("query_ids"))
        return data


def write_weight(collection: Collection, weight: float) -> None:
    """Make `collection`'s hybrid search use convex fusion at `weight` (any client: the
    setting is part of the collection's stored configuration)."""
    collection.modify(configuration={"keyword": {"fusion": "convex", "weight": weight}})


def tune_fusion(
    dataset: Dataset,
    config: RunConfig | None = None,
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    folds: int = 5,
    seed: int = 0,
    k: int = 10,
    cache_dir: Path | None = None,
    target: Target | None = None,
    log: Log | None = None,
) -> TuningResult:
    """Score each weight on every judged query of `dataset` and cross-validate the choice.

    config: the embedding model (and collection configuration) to tune for; default the
    built-in model. folds: at least 2 and at most the number of queries."""
    config = config or RunConfig(name="default")
    say = log or (lambda _line: None)
    grid = sorted({float(w) for w in weights})
    if not grid or any(not 0.0 <= w <= 1.0 for w in grid):
        raise ValueError(f"weights: expected numbers in [0, 1], got {list(weights)!r}")
    query_ids = [q for q in dataset.queries if dataset.relevant(q)]
    if not 2 <= folds <= len(query_ids):
        raise ValueError(f"folds: expected 2 to {len(query_ids)} (the judged queries), got {folds}")
    texts = [dataset.queries[q] for q in query_ids]
    documents = [d for d in dataset.corpus.values() if d.content.strip()]
    vectors = _embed(config, [d.content for d in documents], texts, cache_dir)
    say(f"embedded {len(documents)} documents and {len(texts)} queries in {vectors.seconds:.1f} s")
    target = target or EmbeddedTarget()
    configuration = enable_keyword_index(dict(config.configuration))
    fn = _Precomputed(vectors, [d.content for d in documents], texts)
    try:
        collection = target.open(config, fn, configuration)
        fill(collection, documents, vectors.documents)

        def scores(mode: str) -> list[float]:
            out = []
            for query_id, text in zip(query_ids, texts, strict=True):
                found = collection.query(query_texts=[text], n_results=k, include=[], mode=mode)  # type: ignore[arg-type]
                judged = dataset.qrels[query_id]
                out.append(score_query(found["ids"][0], judged, (k,))[f"ndcg@{k}"])
            return out

        per_weight: dict[float, list[float]] = {}
        for weight in grid:
            collection.modify(configuration={"keyword": {"fusion": "convex", "weight": weight}})
            per_weight[weight] = scores("hybrid")
            say(f"  weight {weight:.1f}: nDCG@{k} {np.mean(per_weight[weight]):.3f}")
        keyword_scores = scores("keyword")
        vector_scores = scores("vector")
    finally:
        target.close()
    fold_results, held_out = _cross_validate(per_weight, query_ids, folds, seed)
    return TuningResult(
        dataset=dataset.name,
        embedding=config.name,
        k=k,
        seed=seed,
        by_weight={w: float(np.mean(s)) for w, s in per_weight.items()},
        folds=fold_results,
        cross_validated_ndcg=float(np.mean(held_out)),
        weight=_best_weight(per_weight, range(len(query_ids))),
        keyword_ndcg=float(np.mean(keyword_scores)),
        vector_ndcg=float(np.mean(vector_scores)),
        queries=len(query_ids),
        per_query=per_weight,
    )


def _cross_validate(
    per_weight: Mapping[float, Sequence[float]], query_ids: Sequence[str], folds: int, seed: int
) -> tuple[list[Fold], list[float]]:
    """Per fold, the weight best on the others and its held-out scores."""
    n = len(query_ids)
    order = np.random.default_rng(seed).permutation(n)
    results: list[Fold] = []
    held_out: list[float] = []
    for part in np.array_split(order, folds):
        test = set(part.tolist())
        train = [i for i in range(n) if i not in test]
        weight = _best_weight(per_weight, train)
        test_scores = [per_weight[weight][i] for i in sorted(test)]
        held_out.extend(test_scores)
        results.append(
            Fold(
                query_ids=tuple(query_ids[i] for i in sorted(test)),
                weight=weight,
                train_ndcg=float(np.mean([per_weight[weight][i] for i in train])),
                held_out_ndcg=float(np.mean(test_scores)),
            )
        )
    return results, held_out


def _best_weight(per_weight: Mapping[float, Sequence[float]], queries: Any) -> float:
    """The weight with the highest mean score on `queries`; ties go to the larger keyword
    share (BM25 is the safer half when the model has not been shown to be better)."""
    rows = list(queries)
    return max(
        per_weight, key=lambda w: (round(float(np.mean([per_weight[w][i] for i in rows])), 12), w)
    )
