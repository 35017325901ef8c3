"""`haima.connect(target)`: a folder, ":memory:", or a server's URL; anything else that
looks like a URL is refused instead of becoming a folder named after it."""

from __future__ import annotations

from pathlib import Path

import pytest

import haima


def test_paths_and_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with haima.connect(str(tmp_path / "store")) as client:
        assert isinstance(client, haima.PersistentClient)
        client.create_collection("kept", embedding_function=None)
    assert (tmp_path / "store" / "haima.sqlite3").exists()
    with haima.connect(":memory:") as client:
        assert type(client) is haima.Client


@pytest.mark.parametrize(
    ("target", "hint"),
    [
        ("file:///tmp/store", "milvus-lite:///path/store.db"),
        ("ftp://host/store", "milvus://host:19530"),
    ],
)
def test_other_schemes_are_refused_and_create_nothing(
    target: str, hint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(haima.InvalidArgumentError, match="unsupported scheme") as info:
        haima.connect(target)
    assert hint in str(info.value) and "http:// or https://" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no folder named after the URL


def test_milvus_lite_target_opens_a_milvus_client(tmp_path: Path) -> None:
    target = f"milvus-lite://{tmp_path / 'store.db'}"
    with haima.connect(target) as client:
        assert isinstance(client, haima.MilvusClient)
        client.create_collection("kept", embedding_function=None).add(
            ids=["a"], embeddings=[[1.0, 0.0]]
        )
    with haima.connect(target) as again:  # a second client sees what the first made
        assert again.get_collection("kept", embedding_function=None).count() == 1
    assert (tmp_path / "store.db").exists()


def test_milvus_lite_target_must_name_a_db_file(tmp_path: Path) -> None:
    with pytest.raises(haima.InvalidArgumentError, match=r"ends in \.db"):
        haima.connect(f"milvus-lite://{tmp_path / 'folder'}")
    assert list(tmp_path.iterdir()) == []
