"""The fusion rule (hybrid never loses to the better of its halves by more than 0.01
nDCG@10) on the project's own eval set and when one ranker is random, and fusion-weight
tuning: cross-validated, deterministic under a seed, and stored in the collection's
configuration for every client."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import haima
from haima import eval as ev
from haima.cli import main

try:
    from conftest import ClientFactory
except ImportError:  # tests/ imported as a package
    from tests.conftest import ClientFactory  # type: ignore[no-redef]

MINI = Path(__file__).parent / "data" / "eval_mini"


@pytest.fixture(scope="module")
def mini() -> ev.Dataset:
    return ev.load_dataset(MINI)


def ndcg_by_mode(dataset: ev.Dataset, embedding: str, cache: Path) -> dict[str, float]:
    configs = ev.product_configs((embedding,), (), ("keyword", "vector", "hybrid"))
    run = ev.run_eval(dataset, configs, ks=(10,), cache_dir=cache)
    return {r.config.mode: r.metrics["ndcg@10"] for r in run.results}


@pytest.mark.parametrize("embedding", ["default", "random"])
def test_default_hybrid_stays_within_a_hundredth_of_the_better_half(
    mini: ev.Dataset, embedding: str, tmp_path: Path
) -> None:
    """The default model (better than BM25 on this set) and a random ranker (far worse):
    with the default fusion, hybrid keeps up with whichever side is better."""
    scores = ndcg_by_mode(mini, embedding, tmp_path)
    better = max(scores["keyword"], scores["vector"])
    assert scores["hybrid"] >= better - 0.01, scores
    if embedding == "random":  # the rule held against a ranker that knows nothing
        assert scores["vector"] < 0.2 < scores["keyword"]


def test_plain_rrf_is_dragged_down_by_a_random_ranker(mini: ev.Dataset, tmp_path: Path) -> None:
    """Why the default changed: equal-weight RRF loses to keywords alone here."""
    configs = [
        ev.RunConfig(name="bm25", embedding="random", mode="keyword"),
        ev.RunConfig(
            name="rrf",
            embedding="random",
            mode="hybrid",
            configuration={"keyword": {"fusion": "rrf"}},
        ),
    ]
    run = ev.run_eval(mini, configs, ks=(10,), cache_dir=tmp_path)
    bm25, rrf = (r.metrics["ndcg@10"] for r in run.results)
    assert rrf < bm25 - 0.05


@pytest.fixture(scope="module")
def tuned(mini: ev.Dataset, tmp_path_factory: pytest.TempPathFactory) -> ev.TuningResult:
    cache = tmp_path_factory.mktemp("cache")
    return ev.tune_fusion(mini, ev.RunConfig(name="use"), folds=5, seed=7, cache_dir=cache)


def test_each_fold_uses_the_weight_best_on_the_other_folds(tuned: ev.TuningResult) -> None:
    all_ids = [q for fold in tuned.folds for q in fold.query_ids]
    assert sorted(all_ids) == sorted(set(all_ids)) and len(all_ids) == tuned.queries
    position = {q: i for i, q in enumerate(sorted(all_ids, key=_query_order(tuned)))}
    held_out = []
    for fold in tuned.folds:
        test = {position[q] for q in fold.query_ids}
        train = [i for i in range(tuned.queries) if i not in test]
        means = {w: np.mean([s[i] for i in train]) for w, s in tuned.per_query.items()}
        assert means[fold.weight] == pytest.approx(max(means.values()))
        held_out.extend(tuned.per_query[fold.weight][i] for i in test)
    assert tuned.cross_validated_ndcg == pytest.approx(np.mean(held_out))
    overall = {w: np.mean(s) for w, s in tuned.per_query.items()}
    assert overall[tuned.weight] == pytest.approx(max(overall.values()))
    # Tuned on the model that beats BM25 here, hybrid beats both halves out of sample.
    assert tuned.cross_validated_ndcg >= max(tuned.keyword_ndcg, tuned.vector_ndcg) - 0.01


def _query_order(tuned: ev.TuningResult):  # type: ignore[no-untyped-def]
    """per_query lists follow the dataset's judged queries in order."""
    order = [q for q in ev.load_dataset(MINI).queries if ev.load_dataset(MINI).relevant(q)]
    return order.index


def test_tuning_is_deterministic_under_a_seed(
    mini: ev.Dataset, tuned: ev.TuningResult, tmp_path: Path
) -> None:
    again = ev.tune_fusion(mini, ev.RunConfig(name="use"), folds=5, seed=7, cache_dir=tmp_path)
    assert again.to_dict() == tuned.to_dict()
    other = ev.tune_fusion(mini, ev.RunConfig(name="use"), folds=5, seed=8, cache_dir=tmp_path)
    assert [f.query_ids for f in other.folds] != [f.query_ids for f in tuned.folds]
    assert other.by_weight == tuned.by_weight  # the grid's scores do not depend on the seed


def test_bad_tuning_arguments(mini: ev.Dataset) -> None:
    with pytest.raises(ValueError, match="folds: expected 2 to 25"):
        ev.tune_fusion(mini, folds=1)
    with pytest.raises(ValueError, match=r"weights: expected numbers in \[0, 1\]"):
        ev.tune_fusion(mini, weights=[0.5, 1.5])


def test_a_tuned_weight_round_trips_through_every_client(
    make_client: ClientFactory, tuned: ev.TuningResult
) -> None:
    client = make_client()
    col = client.create_collection(
        "tuned", configuration={"keyword": {"enabled": True}}, embedding_function=None
    )
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["北京", "上海"])
    ev.write_weight(col, tuned.weight)
    reopened = make_client().get_collection("tuned", embedding_function=None)
    assert reopened.configuration["keyword"]["weight"] == tuned.weight
    assert reopened.configuration["keyword"]["fusion"] == "convex"
    # and it is the weight hybrid search uses: keyword-only pulls "北京" first whatever the
    # vector says, vector-only the nearest vector.
    ev.write_weight(reopened, 1.0)
    found = reopened.query(
        query_texts=["北京"], query_embeddings=[[0.0, 1.0]], n_results=2, mode="hybrid"
    )
    assert found["ids"] == [["a", "b"]]
    ev.write_weight(reopened, 0.0)
    found = reopened.query(
        query_texts=["北京"], query_embeddings=[[0.0, 1.0]], n_results=2, mode="hybrid"
    )
    assert found["ids"] == [["b", "a"]]


def test_cli_tunes_writes_the_weight_and_prints_json(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with haima.PersistentClient(store) as client:
        client.create_collection("kbase", configuration={"keyword": {"enabled": True}})
    result = CliRunner().invoke(
        main,
        ["eval", str(MINI), "--tune-fusion", "--folds", "3", "--write-to", "kbase", "--path",
         str(store), "--json", "-", "--cache-dir", str(tmp_path / "cache"), "-q"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["written_to"] == "kbase" and len(data["folds"]) == 3
    assert sum(f["queries"] for f in data["folds"]) == data["queries"] == 25
    assert "chosen weight" in result.stderr
    with haima.PersistentClient(store) as client:
        config = client.get_collection("kbase", embedding_function=None).configuration
    assert config["keyword"]["weight"] == data["weight"]


def test_cli_eval_json_to_stdout(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["eval", str(MINI), "--mode", "keyword", "--json", "-", "-q",
         "--cache-dir", str(tmp_path / "cache")],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert report["results"][0]["metrics"]["ndcg@10"] > 0.5
    assert "nDCG@10" in result.stderr  # the table went to stderr
