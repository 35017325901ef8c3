"""The two ends of a transfer: a Haima store (a local path, a Haima server's URL or a
Milvus URI, all through Haima's client) or a Chroma 1.x server (through the official
`chromadb` client), behind one small interface.

A URL is asked what it is (`GET /`: Haima's server names itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import haima
from haima.backends.milvus.uri import is_milvus_target
from haima.errors import InvalidArgumentError, MissingDependencyError, NotFoundError
from haima.transfer.records import Batch
from haima.types import IncludeField

INCLUDE: list[IncludeField] = ["embeddings", "documents", "metadatas"]


@dataclass
class CollectionInfo:
    """What a collection is made with, in Haima's configuration form."""

    name: str
    metadata: dict[str, Any] | None
    configuration: dict[str, Any]
    count: int


class Side(Protocol):
    label: str

    def collection_names(self) -> list[str]: ...
    def describe(self, name: str) -> CollectionInfo: ...
    def read(self, name: str, offset: int, limit: int) -> Batch: ...
    def read_ids(self, name: str, ids: list[str]) -> Batch: ...
    def count(self, name: str) -> int | None:
        """Records in the collection, None if it does not exist."""

    def create(self, info: CollectionInfo) -> None: ...
    def write(self, name: str, batch: Batch) -> None: ...
    def delete(self, name: str) -> None: ...
    def close(self) -> None: ...


def open_side(target: str, *, create: bool) -> Side:
    """The store or server `target` names: a folder path, http(s)://host:port (Haima or
    Chroma, told apart by asking), or a Milvus URI (milvus://, milvus+https://,
    milvus-lite:///path.db)."""
    if is_milvus_target(target):
        return HaimaSide(haima.connect(target), target)
    if "://" in target and not target.startswith(("http://", "https://")):
        raise InvalidArgumentError(
            f"{target!r}: expected a folder, http(s)://host:port (a Haima or Chroma server) "
            "or a Milvus URI (milvus://host:19530, milvus+https://host, "
            "milvus-lite:///path/store.db)"
        )
    if target.startswith(("http://", "https://")):
        if _is_haima(target):
            return HaimaSide(haima.HttpClient.from_url(target), target)
        return ChromaSide(target)
    try:
        client = haima.PersistentClient(Path(target), create=create)
    except NotFoundError:
        raise NotFoundError(f"{target!r}: no Haima store there") from None
    return HaimaSide(client, target)


def _is_haima(url: str) -> bool:
    import httpx

    try:
        answer = httpx.get(url.rstrip("/") + "/", timeout=10.0)
        return answer.status_code == 200 and answer.json().get("name") == "haima"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def portable_configuration(configuration: dict[str, Any]) -> dict[str, Any]:
    """The configuration as `create_collection` takes it: unset index settings left out."""
    out = {
        k: v for k, v in configuration.items() if k in ("metric", "keyword", "embedding_function")
    }
    index = {k: v for k, v in (configuration.get("index") or {}).items() if v is not None}
    if index:
        out["index"] = index
    return out


class _ChromaShapedSide:
    """What a Haima and a Chroma client do alike: their collections' `get` and `add`
    take the same arguments and answer in the same shape."""

    client: Any

    def _get(self, name: str) -> Any:
        raise NotImplementedError

    def collection_names(self) -> list[str]:
        return sorted(c.name for c in self.client.list_collections())

    def read(self, name: str, offset: int, limit: int) -> Batch:
        return _batch(self._get(name).get(offset=offset, limit=limit, include=INCLUDE))

    def read_ids(self, name: str, ids: list[str]) -> Batch:
        return _batch(self._get(name).get(ids=ids, include=INCLUDE))

    def write(self, name: str, batch: Batch) -> None:
        _add(self._get(name), batch)

    def delete(self, name: str) -> None:
        self.client.delete_collection(name)


class HaimaSide(_ChromaShapedSide):
    def __init__(self, client: haima.Client, label: str) -> None:
        self.client = client
        self.label = label

    def _get(self, name: str) -> haima.Collection:
        found: haima.Collection = self.client.get_collection(name, embedding_function=None)
        return found

    def describe(self, name: str) -> CollectionInfo:
        col = self._get(name)
        return CollectionInfo(name, col.metadata, dict(col.configuration), col.count())

    def count(self, name: str) -> int | None:
        try:
            return self._get(name).count()
        except NotFoundError:
            return None

    def create(self, info: CollectionInfo) -> None:
        self.client.create_collection(
            info.name,
            configuration=portable_configuration(info.configuration),
            metadata=info.metadata,
            embedding_function=None,
        )

    def close(self) -> None:
        self.client.close()


class ChromaSide(_ChromaShapedSide):
    """A Chroma 1.x server through the official client (`pip install chromadb`)."""

    def __init__(self, url: str) -> None:
        try:
            import chromadb
        except ImportError:
            raise MissingDependencyError(
                f"{url!r} is not a Haima server; to read or write a Chroma server, install "
                "its client: pip install chromadb",
                package="chromadb",
                extra=None,
            ) from None
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.client: Any = chromadb.HttpClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
        )
        self.label = url

    def _get(self, name: str) -> Any:
        return self.client.get_collection(name)

    def describe(self, name: str) -> CollectionInfo:
        col = self._get(name)
        metadata = dict(col.metadata or {}) or None
        space = None
        config = getattr(col, "configuration_json", None) or {}
        if isinstance(config, dict):
            space = (config.get("hnsw") or {}).get("space")
        space = space or (metadata or {}).get("hnsw:space") or "l2"  # Chroma's default
        if metadata:
            metadata = {k: v for k, v in metadata.items() if not k.startswith("hnsw:")} or None
        return CollectionInfo(name, metadata, {"metric": space}, col.count())

    def count(self, name: str) -> int | None:
        try:
            return int(self._get(name).count())
        except Exception:  # chromadb raises its own NotFoundError (or ValueError on 0.x)
            if name in self.collection_names():
                raise
            return None

    def create(self, info: CollectionInfo) -> None:
        metric = info.configuration.get("metric", "cosine")
        self.client.create_collection(
            info.name,
            metadata=info.metadata,
            configuration={"hnsw": {"space": metric}},
            embedding_function=None,
        )

    def close(self) -> None:
        return None


def _add(collection: Any, batch: Batch) -> None:
    """`add` a batch to a Haima or Chroma collection (their `add` takes the same form);
    all-empty documents or metadata are left out rather than sent as lists of None."""
    if len(batch):
        collection.add(
            ids=batch.ids,
            embeddings=batch.embeddings,
            documents=batch.documents if any(d is not None for d in batch.documents) else None,
            metadatas=batch.metadatas if any(m for m in batch.metadatas) else None,
        )


def _batch(got: Any) -> Batch:
    """A `get` answer (Haima's or Chroma's) as a Batch."""
    n = len(got["ids"])
    if not n:
        return Batch.empty()
    embeddings = got.get("embeddings")
    return Batch(
        ids=list(got["ids"]),
        embeddings=np.asarray(embeddings if embeddings is not None else [], np.float32).reshape(
            n, -1
        ),
        documents=list(got.get("documents") or [None] * n),
        metadatas=[dict(m) if m else None for m in (got.get("metadatas") or [None] * n)],
    )
