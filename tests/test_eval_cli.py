"""`haima eval` end to end on the bundled mini dataset, and the runner's conventions."""

from __future__ import annotations

import csv
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import haima
from haima.cli import main
from haima.eval import (
    Dataset,
    Document,
    MissingEvalDependencyError,
    RandomEmbeddingFunction,
    RunConfig,
    load_configs,
    run_eval,
)

MINI = Path(__file__).parent / "data" / "eval_mini"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Temporary guard: keyword/hybrid search arrives with `Collection.query(mode=...)`.
HAS_MODES = "mode" in inspect.signature(haima.Collection.query).parameters
needs_modes = pytest.mark.skipif(not HAS_MODES, reason="Collection.query has no mode= yet")


def haima_eval(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["eval", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the default model against the random baseline, with every output."""
    out = tmp_path_factory.mktemp("eval")
    result = haima_eval(
        MINI, "--embedding", "default", "--embedding", "random",
        "--cache-dir", out / "cache", "--store-dir", out / "stores", "-k", "1,5,10",
        "--json", out / "run.json", "--csv", out / "run.csv",
        "--markdown", out / "run.md", "--plot", out / "run.png",
    )  # fmt: skip
    return {"out": out, "result": result, "json": json.loads((out / "run.json").read_text())}


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in report["results"]}


def test_default_model_beats_the_random_baseline(first_run: dict[str, Any]) -> None:
    assert first_run["result"].exit_code == 0, first_run["result"].output
    report = first_run["json"]
    results = by_name(report)
    assert list(results) == ["default", "random"]
    default, random = results["default"]["metrics"], results["random"]["metrics"]
    assert default["ndcg@10"] > 0.7 and random["ndcg@10"] < 0.3
    assert default["recall@10"] > random["recall@10"]
    assert results["default"]["best"] and not results["random"]["best"]
    assert results["random"]["p_value"] < 0.05 and results["random"]["significant"]
    assert report["dataset"]["evaluated_queries"] == 25
    assert report["dataset"]["documents"] == 56
    assert report["ks"] == [1, 5, 10] and report["primary_k"] == 10


def test_costs_are_measured(first_run: dict[str, Any]) -> None:
    default = by_name(first_run["json"])["default"]
    assert 0 < default["latency_ms"]["p50"] <= default["latency_ms"]["p95"]
    assert default["ingest_docs_per_s"] > 0
    # a real store on disk: SQLite plus the vectors, 56 × 512 float32 at least
    assert default["index_bytes"] > 56 * 512 * 4
    assert len(default["per_query"]) == 25
    assert not list((first_run["out"] / "stores").iterdir())  # removed afterwards


def test_table_and_files(first_run: dict[str, Any]) -> None:
    output = first_run["result"].output
    assert "nDCG@10" in output and "★" in output and "random" in output
    assert "significant at 0.05" in output
    with (first_run["out"] / "run.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == ["default", "random"]
    assert float(rows[0]["ndcg@10"]) == pytest.approx(
        by_name(first_run["json"])["default"]["metrics"]["ndcg@10"]
    )
    assert rows[0]["index"] == "auto" and rows[0]["mode"] == "vector"
    assert rows[0]["best"] == "True" and rows[1]["best"] == "False"
    markdown = (first_run["out"] / "run.md").read_text(encoding="utf-8")
    assert markdown.startswith("| configuration | nDCG@10 |") and "**default ★**" in markdown


def test_plot_is_a_png(first_run: dict[str, Any]) -> None:
    png = (first_run["out"] / "run.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 20_000  # two panels with curves, not an empty canvas


def test_a_second_run_is_answered_by_the_cache(first_run: dict[str, Any]) -> None:
    out = first_run["out"]
    result = haima_eval(
        MINI, "--embedding", "default", "--cache-dir", out / "cache", "--json", out / "again.json"
    )
    assert result.exit_code == 0, result.output
    again = json.loads((out / "again.json").read_text())["results"][0]
    assert (again["cache_hits"], again["cache_misses"]) == (56 + 25, 0)
    assert again["metrics"] == by_name(first_run["json"])["default"]["metrics"]


def test_yaml_configs(tmp_path: Path, first_run: dict[str, Any]) -> None:
    (tmp_path / "flat.yaml").write_text(
        "name: use-flat\nembedding: default\nconfiguration:\n  index: {type: flat}\n"
    )
    (tmp_path / "more.yaml").write_text(
        "- name: use-hnsw\n  embedding: {name: default}\n  index: {type: hnsw, ef_search: 32}\n"
        "- name: chance\n  embedding: {name: random, dim: 16}\n"
    )
    result = haima_eval(
        MINI, "--config", tmp_path / "flat.yaml", "--config", tmp_path / "more.yaml",
        "--cache-dir", first_run["out"] / "cache", "--csv", tmp_path / "out.csv", "-k", "10",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with (tmp_path / "out.csv").open(encoding="utf-8") as handle:
        rows = {r["name"]: r for r in csv.DictReader(handle)}
    assert list(rows) == ["use-flat", "use-hnsw", "chance"]
    assert [rows[n]["index"] for n in rows] == ["flat", "hnsw", "auto"]
    # the same model over an exact and an HNSW index: the same answers on 56 vectors
    assert rows["use-flat"]["ndcg@10"] == rows["use-hnsw"]["ndcg@10"]
    assert float(rows["chance"]["ndcg@10"]) < float(rows["use-flat"]["ndcg@10"])


def test_bad_yaml_config_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\nembeding: default\n")
    result = haima_eval(MINI, "--config", config)
    assert result.exit_code == 1
    assert f"{config}: unknown key(s) embeding" in result.output


def test_limits_split_and_dataset_errors(tmp_path: Path) -> None:
    result = haima_eval(
        MINI, "--embedding", "random", "--limit-queries", "5", "--limit-docs", "20",
        "--json", tmp_path / "small.json", "--no-cache",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    small = json.loads((tmp_path / "small.json").read_text())["dataset"]
    assert small["evaluated_queries"] == 5 and small["documents"] == 20
    assert any("5 of 25 queries" in note for note in small["notes"])

    result = haima_eval(
        MINI, "--embedding", "random", "--split", "dev", "--json", tmp_path / "d.json"
    )
    assert json.loads((tmp_path / "d.json").read_text())["dataset"]["queries"] == 3

    result = haima_eval(MINI, "--split", "train")
    assert result.exit_code == 1 and "no split 'train' (splits here: dev, test)" in result.output


def test_usage_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("name: x\n")
    result = haima_eval(MINI, "--config", tmp_path / "c.yaml", "--embedding", "default")
    assert result.exit_code == 2 and "not both" in result.output
    result = haima_eval(MINI, "--embedding", "nonsense")
    assert result.exit_code == 1 and "unknown name 'nonsense'" in result.output
    result = haima_eval(MINI, "-k", "0")
    assert result.exit_code == 2 and "k must be at least 1" in result.output
    monkeypatch.delattr(haima, "HttpClient", raising=False)
    result = haima_eval(MINI, "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "haima.HttpClient.from_url()" in result.output


@pytest.mark.slow
def test_eval_on_a_server(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from tests.helpers.server import ServerProcess

    modes = ["vector", "hybrid"] if HAS_MODES else ["vector"]
    with ServerProcess(tmp_path / "store") as server:
        result = haima_eval(
            MINI, "--url", server.url, "--embedding", "random", "--no-cache",
            *(f"--mode={mode}" for mode in modes), "--json", tmp_path / "http.json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        leftovers = haima.HttpClient.from_url(server.url).list_collections()
    results = json.loads((tmp_path / "http.json").read_text())["results"]
    assert [r["error"] for r in results] == [None] * len(modes)
    assert len(results[0]["per_query"]) == 25
    assert results[0]["index_bytes"] is None  # not visible through the server
    assert leftovers == []  # the run deleted its collections
    if HAS_MODES:  # the keyword side carries hybrid far above the chance vectors
        assert results[1]["metrics"]["ndcg@10"] > results[0]["metrics"]["ndcg@10"] + 0.3


@needs_modes
def test_keyword_and_hybrid_modes(tmp_path: Path, first_run: dict[str, Any]) -> None:
    result = haima_eval(
        MINI, "--mode", "vector", "--mode", "keyword", "--mode", "hybrid",
        "--cache-dir", first_run["out"] / "cache", "--json", tmp_path / "modes.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = by_name(json.loads((tmp_path / "modes.json").read_text()))
    assert list(results) == ["vector", "keyword", "hybrid"]
    for name in results:
        assert results[name]["error"] is None
        assert results[name]["metrics"]["ndcg@10"] > 0.3


# -- the runner's conventions, through the Python API ------------------------------------------


def test_queries_without_relevant_documents_and_empty_documents_are_left_out() -> None:
    data = Dataset(
        name="tiny",
        corpus={
            "a": Document("a", "apples"),
            "b": Document("b", "bananas"),
            "empty": Document("empty", "", ""),
        },
        queries={"q1": "fruit", "q2": "nothing relevant"},
        qrels={"q1": {"a": 1}, "q2": {"b": 0}},
    )
    run = run_eval(data, [RunConfig("chance", "random")], ks=(1, 2))
    assert run.skipped_queries == ["q2"] and run.empty_documents == ["empty"]
    (result,) = run.results
    assert list(result.per_query) == ["q1"] and result.docs_indexed == 2
    # both documents come back, so the relevant one is within the top 2
    assert result.metrics["recall@2"] == 1.0


def test_a_failing_configuration_does_not_stop_the_others() -> None:
    data = Dataset("tiny", {"a": Document("a", "apples")}, {"q": "fruit"}, {"q": {"a": 1}})

    def broken(texts: Any) -> Any:
        raise haima.EmbeddingFunctionError("model exploded")

    broken.name = "broken"  # type: ignore[attr-defined]
    run = run_eval(data, [RunConfig("bad", broken), RunConfig("chance", "random")])
    assert "model exploded" in (run.results[0].error or "")
    assert run.results[1].error is None and run.results[1].best


def test_random_baseline_is_deterministic_and_unit_length() -> None:
    fn = RandomEmbeddingFunction(dim=8, seed=1)
    first, second = fn(["a", "b"]), fn(["a", "b"])
    assert (first == second).all() and not (first[0] == first[1]).all()
    assert abs(float((first**2).sum(axis=1)[0]) - 1.0) < 1e-5
    assert (RandomEmbeddingFunction(dim=8, seed=2)(["a"]) != first[:1]).any()


def test_missing_pyyaml_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    (tmp_path / "c.yaml").write_text("name: x\n")
    with pytest.raises(MissingEvalDependencyError, match=r"pip install 'haima\[eval\]'"):
        load_configs(tmp_path / "c.yaml")


def test_missing_matplotlib_is_reported_before_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = haima_eval(MINI, "--embedding", "random", "--plot", tmp_path / "p.png")
    assert result.exit_code == 1
    assert "pip install 'haima[eval]'" in result.output and "[1/1]" not in result.output
    assert not (tmp_path / "p.png").exists()
