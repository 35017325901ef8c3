"""Retrieval metrics against values worked out by hand, and the significance test."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from haima.eval import (
    average_precision,
    directory_size,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    paired_bootstrap,
    percentile,
    precision_at_k,
    recall_at_k,
    score_query,
    throughput,
)

LOG2_3 = math.log2(3)

# Ranking a b c d e; relevant: b (grade 2), d (grade 1); x is judged but not returned;
# n is judged non-relevant (grade 0).
RANKED = ["a", "b", "c", "d", "e"]
JUDGED = {"b": 2, "d": 1, "x": 1, "n": 0}


def test_hit_at_k() -> None:
    assert hit_at_k(RANKED, JUDGED, 1) == 0.0
    assert hit_at_k(RANKED, JUDGED, 2) == 1.0


def test_recall_divides_by_every_relevant_document() -> None:
    # 3 relevant (b, d, x); top 2 holds b; top 5 holds b and d; x is never returned
    assert recall_at_k(RANKED, JUDGED, 1) == 0.0
    assert recall_at_k(RANKED, JUDGED, 2) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, JUDGED, 5) == pytest.approx(2 / 3)


def test_precision_keeps_k_as_denominator_when_k_exceeds_the_results() -> None:
    assert precision_at_k(RANKED, JUDGED, 2) == pytest.approx(1 / 2)
    assert precision_at_k(RANKED, JUDGED, 5) == pytest.approx(2 / 5)
    assert precision_at_k(RANKED, JUDGED, 10) == pytest.approx(2 / 10)


def test_mrr_is_the_reciprocal_rank_of_the_first_relevant_document() -> None:
    assert mrr_at_k(RANKED, JUDGED, 1) == 0.0
    assert mrr_at_k(RANKED, JUDGED, 10) == 0.5
    assert mrr_at_k(["d", "b"], JUDGED, 10) == 1.0  # grade does not matter for MRR


def test_ndcg_uses_linear_gain_and_log2_discount_with_the_ideal_from_all_judgements() -> None:
    # DCG@5 = 2/log2(3) + 1/log2(5); ideal grades 2, 1, 1 → IDCG = 2 + 1/log2(3) + 1/2
    dcg = 2 / LOG2_3 + 1 / math.log2(5)
    idcg = 2 + 1 / LOG2_3 + 1 / 2
    assert ndcg_at_k(RANKED, JUDGED, 5) == pytest.approx(dcg / idcg)
    # @2: DCG = 2/log2(3); IDCG@2 = 2 + 1/log2(3)
    assert ndcg_at_k(RANKED, JUDGED, 2) == pytest.approx((2 / LOG2_3) / (2 + 1 / LOG2_3))
    assert ndcg_at_k(["b", "d", "x"], JUDGED, 3) == pytest.approx(1.0)


def test_ndcg_grades_matter_and_equal_grades_tie() -> None:
    graded = {"hi": 3, "lo": 1}
    assert ndcg_at_k(["hi", "lo"], graded, 2) == pytest.approx(1.0)
    # lo first: (1 + 3/log2 3) / (3 + 1/log2 3)
    assert ndcg_at_k(["lo", "hi"], graded, 2) == pytest.approx((1 + 3 / LOG2_3) / (3 + 1 / LOG2_3))
    # two documents of the same grade: either order is ideal
    tied = {"p": 1, "q": 1}
    assert ndcg_at_k(["p", "q"], tied, 2) == ndcg_at_k(["q", "p"], tied, 2) == pytest.approx(1.0)


def test_average_precision_at_k_and_full() -> None:
    # relevant at ranks 2 and 4 → precisions 1/2 and 2/4; R = 3
    assert average_precision(RANKED, JUDGED) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert average_precision(RANKED, JUDGED, 3) == pytest.approx((1 / 2) / 3)
    assert average_precision(["b", "d", "x"], JUDGED) == pytest.approx(1.0)


def test_a_document_listed_twice_counts_once() -> None:
    judged = {"b": 1}
    assert precision_at_k(["b", "b", "c"], judged, 2) == pytest.approx(1 / 2)
    assert ndcg_at_k(["b", "b"], {"b": 1, "c": 1}, 2) == pytest.approx(1 / (1 + 1 / LOG2_3))
    assert average_precision(["b", "b"], judged) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "metric", [hit_at_k, recall_at_k, precision_at_k, mrr_at_k, ndcg_at_k, average_precision]
)
def test_no_relevant_document_scores_zero(metric: object) -> None:
    assert metric(["a", "b"], {"a": 0}, 2) == 0.0  # type: ignore[operator]
    assert metric(["a", "b"], {}, 2) == 0.0  # type: ignore[operator]


@pytest.mark.parametrize(
    "metric", [hit_at_k, recall_at_k, precision_at_k, mrr_at_k, ndcg_at_k, average_precision]
)
def test_empty_ranking_scores_zero(metric: object) -> None:
    assert metric([], {"a": 1}, 3) == 0.0  # type: ignore[operator]


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k must be a positive"):
        recall_at_k(RANKED, JUDGED, 0)


def test_score_query_names_every_metric_at_every_k() -> None:
    scores = score_query(RANKED, JUDGED, [1, 5])
    assert set(scores) == {
        f"{m}@{k}" for m in ("ndcg", "recall", "precision", "mrr", "hit", "map") for k in (1, 5)
    }
    assert scores["mrr@5"] == 0.5 and scores["hit@1"] == 0.0


def test_percentile_interpolates_linearly() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)  # 3 + 0.85 · (4 − 3)
    assert math.isnan(percentile([], 50))


def test_throughput() -> None:
    assert throughput(1000, 2.0) == 500.0
    assert throughput(10, 0.0) == math.inf


def test_directory_size_counts_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 23)
    assert directory_size(tmp_path) == 123


def test_paired_bootstrap() -> None:
    better = [0.9, 0.8, 0.95, 0.7, 0.85, 0.9, 0.8, 0.75, 0.9, 0.88] * 3
    worse = [s - 0.3 for s in better]
    assert paired_bootstrap(better, worse) == 0.0  # every difference is +0.3
    assert paired_bootstrap(better, better) == 1.0
    # one query decides the difference: never significant
    noisy = [0.5] * 10
    one_off = [0.5] * 9 + [0.6]
    p = paired_bootstrap(one_off, noisy)
    assert 0.3 < p <= 1.0
    assert paired_bootstrap(one_off, noisy, seed=1) == paired_bootstrap(one_off, noisy, seed=1)
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1.0], [1.0, 2.0])
