"""Stores written by older releases open in this one."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import haima
from haima.storage.sqlite import _migrations

FIXTURE = Path(__file__).parent / "data" / "store_v1"


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(FIXTURE, target)
    return target


def test_store_from_version_1_opens_and_answers(old_store: Path) -> None:
    with haima.PersistentClient(old_store) as client:
        col = client.get_collection("fixture-docs", embedding_function=None)
        assert col.metadata == {"made_by": "haima 0.1"}
        assert col.count() == 5
        got = col.get(ids=["doc1", "doc5"])
        assert got["ids"] == ["doc1"]
        assert got["metadatas"] == [{"i": 1, "tags": ["a", "b"]}]
        assert col.get(where={"tags": {"$contains": "c"}})["ids"] == ["doc0", "doc2", "doc4"]
        assert col.get(where_document={"$contains": "第3号"})["ids"] == ["doc3"]
        probe = np.zeros((1, 8), dtype=np.float32)
        probe[0, 2] = 1.0
        assert col.query(query_embeddings=probe, n_results=1)["ids"] == [["doc2"]]
        col.add(ids=["new"], embeddings=probe)  # and it stays writable
        assert col.count() == 6


def test_opening_migrates_to_the_newest_schema(old_store: Path) -> None:
    haima.PersistentClient(old_store).close()
    newest = max(number for number, _ in _migrations())
    with sqlite3.connect(old_store / "haima.sqlite3") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == newest


def test_version_1_store_gains_keyword_search_on_request(old_store: Path) -> None:
    """Schema 2 adds the keyword-index registry; collections written before it have no
    keyword index until enabled, which then indexes their stored documents."""
    with haima.PersistentClient(old_store) as client:
        col = client.get_collection("fixture-docs", embedding_function=None)
        assert col.configuration["keyword"] == {
            "enabled": False,
            "fusion": "convex",
            "weight": 0.8,
            "rrf_k": 60,
        }
        with pytest.raises(haima.InvalidArgumentError, match="no keyword index"):
            col.query(query_texts=["文档"], mode="keyword")
        col.modify(configuration={"keyword": {"enabled": True}})
        found = col.query(query_texts=["第3号"], n_results=1, mode="keyword")
        assert found["ids"] == [["doc3"]]
        assert sorted(col.query(query_texts=["文档"], mode="keyword")["ids"][0]) == [
            f"doc{i}" for i in range(5)
        ]
    with sqlite3.connect(old_store / "haima.sqlite3") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 2
        assert conn.execute("SELECT count(*) FROM keyword_indexes").fetchone()[0] == 1
