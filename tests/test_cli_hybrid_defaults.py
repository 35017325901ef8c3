"""What `haima ingest` creates by default and how search/ask pick their mode: a keyword
index on new collections, hybrid search where it exists, vector (with a note) where it
does not, and `haima collections modify` to change either."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import haima
from haima.cli import main


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "robot.txt").write_text(
        "型号XJ-9000-B的工业机器人可以连续工作八小时。", encoding="utf-8"
    )
    (root / "weather.md").write_text("# 天气\n\n北京今天下雨，气温下降。\n", encoding="utf-8")
    (root / "faiss.txt").write_text(
        "FAISS is a library for similarity search; HNSW is a graph index.", encoding="utf-8"
    )
    return root


def keyword_config(store: Path, name: str = "docs") -> dict[str, object]:
    with haima.PersistentClient(store, create=False) as client:
        config = client.get_collection(name, embedding_function=None).configuration
    return dict(config["keyword"])


def sources(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [hit["source"] for hit in json.loads(result.stdout)]


def test_ingest_turns_the_keyword_index_on_and_every_mode_answers(
    notes: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    assert run("ingest", notes, "-c", "docs", "--path", store, "--no-progress").exit_code == 0
    assert keyword_config(store) == {
        "enabled": True,
        "fusion": "convex",
        "weight": 0.8,
        "rrf_k": 60,
    }
    common = ("-c", "docs", "--path", store, "--json", "-k", "3")
    for mode in ("keyword", "vector", "hybrid"):
        found = sources(run("search", "XJ-9000-B 机器人", *common, "--mode", mode))
        assert found[0] == "robot.txt", mode
    # Without --mode: hybrid, silently. The exact product code only matches by keyword,
    # so hybrid ranks it first even where vectors alone would not be sure.
    default = run("search", "XJ-9000-B", *common)
    assert sources(default)[0] == "robot.txt"
    assert "note:" not in default.stderr
    hybrid = run("search", "XJ-9000-B", *common, "--mode", "hybrid")
    assert json.loads(default.stdout) == json.loads(hybrid.stdout)


def test_no_keyword_falls_back_to_vector_saying_how_to_get_hybrid(
    notes: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    assert run("ingest", notes, "-c", "docs", "--path", store, "--no-keyword").exit_code == 0
    assert keyword_config(store)["enabled"] is False
    common = ("-c", "docs", "--path", store, "--json")
    found = run("search", "北京下雨", *common)
    assert sources(found)[0] == "weather.md"
    assert "no keyword index" in found.stderr
    assert "haima collections modify docs --keyword" in found.stderr
    vector = run("search", "北京下雨", *common, "--mode", "vector")
    assert json.loads(found.stdout) == json.loads(vector.stdout) and vector.stderr == ""
    # Asking for hybrid explicitly is an error that names both fixes.
    refused = run("search", "北京下雨", *common, "--mode", "hybrid")
    assert refused.exit_code == 1
    assert "haima collections modify docs --keyword" in refused.stderr
    assert "collection.modify(configuration=" in refused.stderr


def test_reingesting_keeps_the_setting_unless_a_flag_is_given(notes: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run("ingest", notes, "-c", "docs", "--path", store, "--no-keyword")
    again = run("ingest", notes, "-c", "docs", "--path", store)
    assert "3 unchanged" in again.stdout
    assert keyword_config(store)["enabled"] is False
    on = run("ingest", notes, "-c", "docs", "--path", store, "--keyword")
    assert on.exit_code == 0 and keyword_config(store)["enabled"] is True
    # The documents already stored were indexed when the index was turned on.
    hits = run("search", "XJ-9000-B", "-c", "docs", "--path", store, "--json", "--mode", "keyword")
    assert sources(hits) == ["robot.txt"]


def test_collections_modify_changes_keyword_and_fusion(notes: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run("ingest", notes, "-c", "docs", "--path", store, "--no-keyword")
    changed = run("collections", "modify", "docs", "--path", store, "--keyword", "--fusion", "rrf")
    assert changed.exit_code == 0, changed.output
    assert "keyword on, fusion rrf" in changed.stdout
    assert keyword_config(store) == {"enabled": True, "fusion": "rrf", "weight": 0.8, "rrf_k": 60}
    weighted = run("collections", "modify", "docs", "--path", store, "--fusion", "convex",
                   "--weight", "0.25", "--json")  # fmt: skip
    assert json.loads(weighted.stdout)["keyword"]["weight"] == 0.25
    listing = run("collections", "--path", store)
    assert "keyword on, fusion convex 0.25" in listing.stdout
    # Bad values are refused by name, and nothing changes.
    bad = run("collections", "modify", "docs", "--path", store, "--weight", "1.5")
    assert bad.exit_code == 2 and "--weight" in bad.stderr
    assert keyword_config(store)["weight"] == 0.25
    nothing = run("collections", "modify", "docs", "--path", store)
    assert nothing.exit_code == 2 and "nothing to change" in nothing.stderr
    missing = run("collections", "modify", "nope", "--path", store, "--keyword")
    assert missing.exit_code == 1 and "no collection 'nope'" in missing.stderr
    off = run("collections", "modify", "docs", "--path", store, "--no-keyword")
    assert off.exit_code == 0 and keyword_config(store)["enabled"] is False
