"""Chroma's official Python client (`chromadb-client`) against a real `haima run`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")
from chromadb.config import Settings as ChromaSettings  # noqa: E402

from tests.helpers.server import ServerProcess  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("chroma-server")
    with ServerProcess(root / "store", "--no-preload", "--allow-reset") as process:
        yield process


def _client(server: ServerProcess, **kwargs: Any) -> Any:
    # A Settings each: Chroma's client writes the host and port into the one it is given.
    settings = ChromaSettings(anonymized_telemetry=False)
    return chromadb.HttpClient(host="127.0.0.1", port=server.port, settings=settings, **kwargs)


class ToyEmbedding(chromadb.EmbeddingFunction):  # type: ignore[misc]
    """A client-side function, as Chroma users write them: letter counts."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: list[str]) -> list[np.ndarray]:
        out = []
        for text in input:
            v = np.zeros(26, dtype=np.float32)
            for ch in text.lower():
                if "a" <= ch <= "z":
                    v[ord(ch) - 97] += 1
            out.append(v / max(float(np.linalg.norm(v)), 1e-9))
        return out

    @staticmethod
    def name() -> str:
        return "toy-letters"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_full_collection_lifecycle(server: ServerProcess) -> None:
    client = _client(server)
    assert client.heartbeat() > 0
    name = _unique("books")
    col = client.create_collection(name, metadata={"owner": "lib"}, embedding_function=None)
    col.add(
        ids=["a", "b", "c", "d"],
        embeddings=[[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.9, 0.1, 0]],
        documents=["北京的历史", "a banana recipe", None, "北京烤鸭"],
        metadatas=[{"year": 2001}, {"year": 2010}, {"year": 2020}, {"year": 1999}],
    )
    assert col.count() == 4

    hits = col.query(
        query_embeddings=[[1, 0, 0]],
        n_results=3,
        where={"year": {"$gte": 2000}},
        where_document={"$contains": "北京"},
    )
    assert hits["ids"] == [["a"]]
    assert hits["distances"][0][0] == pytest.approx(0.0, abs=1e-6)

    page = col.get(limit=2, offset=1, include=["documents", "metadatas", "embeddings"])
    assert page["ids"] == ["b", "c"]
    assert page["documents"] == ["a banana recipe", None]
    assert np.allclose(np.asarray(page["embeddings"]), [[0, 1, 0], [0, 0, 1]])

    # Chroma's semantics: $not_contains also matches records without a document.
    without = col.get(where_document={"$not_contains": "北京"})
    assert sorted(without["ids"]) == ["b", "c"]

    col.update(ids=["a"], metadatas=[{"genre": "history"}])
    assert col.get(ids=["a"])["metadatas"] == [{"year": 2001, "genre": "history"}]
    col.upsert(ids=["a", "e"], embeddings=[[1, 0, 0], [0, 1, 1]], documents=["new a", "e"])
    assert col.count() == 5
    assert col.get(ids=["a"])["documents"] == ["new a"]

    col.delete(ids=["b"])
    col.delete(where={"year": {"$lt": 2000}})
    assert sorted(col.get()["ids"]) == ["a", "c", "e"]

    assert name in [c.name for c in client.list_collections()]
    renamed = _unique("renamed")
    col.modify(name=renamed, metadata={"owner": "archive"})
    again = client.get_collection(renamed, embedding_function=None)
    assert again.metadata == {"owner": "archive"}
    assert again.count() == 3

    before = client.count_collections()
    client.delete_collection(renamed)
    assert client.count_collections() == before - 1
    with pytest.raises(chromadb.errors.NotFoundError):
        client.get_collection(renamed, embedding_function=None)


def test_errors_arrive_as_chroma_error_classes(server: ServerProcess) -> None:
    client = _client(server)
    name = _unique("errs")
    col = client.create_collection(name, embedding_function=None)
    with pytest.raises(chromadb.errors.UniqueConstraintError):
        client.create_collection(name, embedding_function=None)
    col.add(ids=["x"], embeddings=[[1.0, 2.0]])
    with pytest.raises(chromadb.errors.InvalidArgumentError, match="dimension"):
        col.add(ids=["y"], embeddings=[[1.0, 2.0, 3.0]])
    assert col.count() == 1
    client.delete_collection(name)
    with pytest.raises(chromadb.errors.NotFoundError):
        col.count()  # a stale handle


def test_empty_collection_metadata_is_rejected(server: ServerProcess) -> None:
    client = _client(server)
    with pytest.raises(Exception, match="metadata"):
        client.create_collection(_unique("empty"), metadata={}, embedding_function=None)


def test_get_or_create_and_list_paging(server: ServerProcess) -> None:
    client = _client(server, tenant="default_tenant", database="default_database")
    prefix = _unique("page")
    first = client.get_or_create_collection(prefix, embedding_function=None)
    same = client.get_or_create_collection(prefix, embedding_function=None)
    assert first.id == same.id
    names = [c.name for c in client.list_collections()]
    paged = [c.name for c in client.list_collections(limit=1, offset=0)]
    paged += [c.name for c in client.list_collections(limit=len(names), offset=1)]
    assert paged == names


def test_a_second_database_is_kept_apart(server: ServerProcess) -> None:
    admin = chromadb.AdminClient(
        ChromaSettings(
            anonymized_telemetry=False,
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host="127.0.0.1",
            chroma_server_http_port=server.port,
        )
    )
    database = _unique("db")
    admin.create_database(database)
    assert admin.get_database(database)["name"] == database

    main = _client(server)
    other = _client(server, database=database)
    name = _unique("shared-name")
    main.create_collection(name, embedding_function=None).add(ids=["m"], embeddings=[[1.0, 0.0]])
    theirs = other.create_collection(name, embedding_function=None)
    theirs.add(ids=["o1", "o2"], embeddings=[[0.0, 1.0], [1.0, 1.0]])

    assert main.get_collection(name, embedding_function=None).get()["ids"] == ["m"]
    assert sorted(other.get_collection(name, embedding_function=None).get()["ids"]) == [
        "o1",
        "o2",
    ]
    other.delete_collection(name)
    assert main.get_collection(name, embedding_function=None).count() == 1


def test_client_side_embedding_function_and_query_texts(server: ServerProcess) -> None:
    client = _client(server)
    col = client.create_collection(_unique("toy"), embedding_function=ToyEmbedding())
    col.add(ids=["1", "2", "3"], documents=["aaaa bbb", "zzzz yyy", "mmm nnn"])
    hits = col.query(query_texts=["zzz yy"], n_results=1)
    assert hits["ids"] == [["2"]]


def test_large_batch_uses_base64_and_round_trips(server: ServerProcess) -> None:
    client = _client(server)
    col = client.create_collection(_unique("big"), embedding_function=None)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 64)).astype(np.float32)
    ids = [f"r{i}" for i in range(3000)]
    col.add(ids=ids, embeddings=vectors)
    assert col.count() == 3000
    got = col.get(ids=["r17", "r2999"], include=["embeddings"])
    assert np.array_equal(np.asarray(got["embeddings"], dtype=np.float32), vectors[[17, 2999]])
    top = col.query(query_embeddings=vectors[[42]], n_results=1)
    assert top["ids"] == [["r42"]]


def test_reset_only_when_the_server_allows_it(server: ServerProcess, tmp_path: Path) -> None:
    client = _client(server)
    client.create_collection(_unique("doomed"), embedding_function=None)
    assert client.reset() is True
    assert client.count_collections() == 0

    with ServerProcess(tmp_path / "locked", "--no-preload") as locked:
        guarded = _client(locked)
        guarded.create_collection("kept", embedding_function=None)
        with pytest.raises(chromadb.errors.ChromaError):
            guarded.reset()
        assert [c.name for c in guarded.list_collections()] == ["kept"]
