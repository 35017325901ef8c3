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
        ("milvus-lite:///data/x.db", "Milvus is not supported"),
        ("milvus://localhost:19530", "Milvus is not supported"),
        ("milvus+https://host", "Milvus is not supported"),
        ("file:///tmp/store", "give a folder path"),
        ("ftp://host/store", "give a folder path"),
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
