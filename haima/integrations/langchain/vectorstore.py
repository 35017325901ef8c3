"""`HaimaVectorStore`: a LangChain `VectorStore` over one Haima collection."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from typing_extensions import Self

from haima.client import Client, PersistentClient
from haima.collection import Collection
from haima.embeddings import EmbeddingFunction
from haima.integrations.langchain.embeddings import HaimaEmbeddings, as_langchain, from_langchain
from haima.integrations.langchain.metadata import from_haima_metadata, to_haima_metadata
from haima.types import Include, QueryResult

# -- relevance scores ----------------------------------------------------------------------


def _similarity_relevance(distance: float) -> float:
    """Cosine distance 1 − cos, or inner-product distance 1 − dot → the similarity,
    clipped to [0, 1] (opposite directions give 0; for ip, dots above 1 give 1)."""
    return min(1.0, max(0.0, 1.0 - distance))


def _l2_relevance(distance: float) -> float:
    """Squared L2 distance d → 1 / (1 + d): 1 for the same vector, towards 0 far away."""
    return 1.0 / (1.0 + max(0.0, distance))


_RELEVANCE: dict[str, Callable[[float], float]] = {
    "cosine": _similarity_relevance,
    "l2": _l2_relevance,
    "ip": _similarity_relevance,
}


def relevance_score_fn(metric: str) -> Callable[[float], float]:
    """The distance → relevance in [0, 1] map for a collection metric (see the guide)."""
    try:
        return _RELEVANCE[metric]
    except KeyError:
        raise ValueError(f"no relevance function for metric {metric!r}") from None


# -- the store -----------------------------------------------------------------------------


class HaimaVectorStore(VectorStore):
    """A LangChain vector store over one Haima collection.

    collection_name: the collection, created if missing.
    embedding: LangChain `Embeddings` (or a Haima embedding function). None uses the
        function stored with an existing collection, or else Haima's default model.
    client: any Haima client (`Client()`, `PersistentClient(path)`, `HttpClient(...)`);
        or `path` for a `PersistentClient` the store opens (and `close()` closes); with
        neither, a new in-memory `Client()` private to this store.
    collection_metadata, configuration: passed to `get_or_create_collection` (e.g.
        `configuration={"metric": "l2"}`; the default metric is cosine).
    batch_size: texts embedded and written per call by `add_texts`.

    Adding an id that exists replaces that record (text, vector and the whole metadata).
    `filter=` takes Haima's `where` language, `where_document=` its document filter.
    """

    def __init__(
        self,
        collection_name: str = "langchain",
        embedding: Embeddings | EmbeddingFunction | None = None,
        client: Client | None = None,
        path: str | Path | None = None,
        collection_metadata: Mapping[str, Any] | None = None,
        configuration: Mapping[str, Any] | None = None,
        *,
        batch_size: int = 1000,
    ) -> None:
        if client is not None and path is not None:
            raise ValueError("give client= or path=, not both")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self._owns_client = client is None
        self._client: Client = (
            client if client is not None else PersistentClient(path) if path else Client()
        )
        self._batch_size = batch_size
        try:
            self._open(collection_name, embedding, collection_metadata, configuration)
        except BaseException:
            self.close()
            raise

    def _open(
        self,
        collection_name: str,
        embedding: Embeddings | EmbeddingFunction | None,
        collection_metadata: Mapping[str, Any] | None,
        configuration: Mapping[str, Any] | None,
    ) -> None:
        if embedding is None:
            # The collection's stored function (rebuilt from its spec), or the default.
            self._collection: Collection = self._client.get_or_create_collection(
                collection_name, configuration=configuration, metadata=collection_metadata
            )
            if self._collection.embedding_function is None:
                raise ValueError(
                    f"collection {collection_name!r} has no stored embedding function; "
                    "pass embedding="
                )
            self._embedding: Embeddings = HaimaEmbeddings(self._collection.embedding_function)
        else:
            self._embedding = as_langchain(embedding)
            self._collection = self._client.get_or_create_collection(
                collection_name,
                configuration=configuration,
                metadata=collection_metadata,
                embedding_function=from_langchain(self._embedding),
            )

    # -- properties and lifecycle ----------------------------------------------------------------

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def client(self) -> Client:
        return self._client

    @property
    def collection(self) -> Collection:
        """The Haima collection, for its native API."""
        return self._collection

    @property
    def metric(self) -> str:
        return str(self._collection.configuration.get("metric", "cosine"))

    def close(self) -> None:
        """Close the client if this store opened it (a `path=` or private in-memory one)."""
        if self._owns_client:
            self._client.close()

    def delete_collection(self) -> None:
        """Delete the whole collection; the store cannot be used afterwards."""
        self._client.delete_collection(self._collection.name)

    # -- writes ---------------------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: Sequence[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store `texts`; ids that are None or missing get a uuid4. An existing
        id is replaced (its old metadata keys are removed). Returns the ids."""
        _no_extra(kwargs, "add_texts")
        items = list(texts)
        # As in LangChain's base class, an empty list of metadatas or ids means none.
        if metadatas and len(metadatas) != len(items):
            raise ValueError(f"got {len(metadatas)} metadatas for {len(items)} texts")
        if ids and len(ids) != len(items):
            raise ValueError(f"got {len(ids)} ids for {len(items)} texts")
        given: list[str | None] = list(ids) if ids else [None] * len(items)
        record_ids = [i if i else str(uuid.uuid4()) for i in given]
        mds = [to_haima_metadata(m) for m in metadatas] if metadatas else [{} for _ in items]
        for start in range(0, len(items), self._batch_size):
            stop = start + self._batch_size
            explicit = [i for i in given[start:stop] if i]
            self._upsert(record_ids[start:stop], items[start:stop], mds[start:stop], explicit)
        return record_ids

    def _upsert(
        self, ids: list[str], texts: list[str], mds: list[dict[str, Any]], explicit: list[str]
    ) -> None:
        vectors = self._embedding.embed_documents(texts)
        # Haima's upsert merges metadata keys; LangChain replaces the document, so keys
        # the new metadata lacks are removed (a None value removes a key).
        stale: dict[str, set[str]] = {}
        if explicit:
            old = self._collection.get(ids=list(dict.fromkeys(explicit)), include=["metadatas"])
            for record_id, md in zip(old["ids"], old["metadatas"] or [], strict=True):
                stale[record_id] = set(md or ())
        changes: list[dict[str, Any]] = []
        for record_id, md in zip(ids, mds, strict=True):
            removed = stale.get(record_id, set()) - md.keys()
            changes.append({**md, **dict.fromkeys(removed)})
        self._collection.upsert(ids=ids, embeddings=vectors, metadatas=changes, documents=texts)

    def delete(
        self,
        ids: list[str] | None = None,
        *,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> bool:
        """Delete records by id and/or filter (all given conditions must hold). Missing ids
        are ignored. Deleting everything takes an explicit filter or `delete_collection()`."""
        _no_extra(kwargs, "delete")
        if ids is not None and not ids:
            return True
        if ids is None and not filter and not where_document:
            raise ValueError(
                "delete: give ids, filter or where_document (to delete everything, call "
                "delete_collection())"
            )
        self._collection.delete(
            ids=list(dict.fromkeys(ids)) if ids is not None else None,
            where=filter or None,
            where_document=where_document or None,
        )
        return True

    # -- reads ----------------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in that order; missing ids are skipped."""
        if not ids:
            return []
        found = self._collection.get(ids=list(dict.fromkeys(ids)))
        documents = {
            record_id: _document(record_id, text, md)
            for record_id, text, md in zip(
                found["ids"],
                found["documents"] or [None] * len(found["ids"]),
                found["metadatas"] or [None] * len(found["ids"]),
                strict=True,
            )
        }
        # The collection answers in storage order; LangChain's contract is the order asked.
        return [documents[i] for i in dict.fromkeys(ids) if i in documents]

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The `k` nearest documents with their distance (lower is closer; see the guide)."""
        _no_extra(kwargs, "similarity_search")
        vector = self._embedding.embed_query(query)
        return self._search(vector, k, filter, where_document)

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        _no_extra(kwargs, "similarity_search_by_vector")
        return [doc for doc, _ in self._search(embedding, k, filter, where_document)]

    def similarity_search_by_vector_with_score(
        self,
        embedding: list[float],
        k: int = 4,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
    ) -> list[tuple[Document, float]]:
        return self._search(embedding, k, filter, where_document)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance in [0, 1] from the collection's metric: cosine and ip give the
        similarity clipped to [0, 1], l2 gives 1 / (1 + squared distance)."""
        return relevance_score_fn(self.metric)

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        _no_extra(kwargs, "max_marginal_relevance_search")
        return self.max_marginal_relevance_search_by_vector(
            self._embedding.embed_query(query), k, fetch_k, lambda_mult, filter, where_document
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
        where_document: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """`k` documents chosen among the `fetch_k` nearest for relevance and diversity
        (`lambda_mult` 1 = relevance only, 0 = diversity only; cosine similarity)."""
        _no_extra(kwargs, "max_marginal_relevance_search")
        result = self._query(
            embedding,
            max(k, fetch_k),
            filter,
            where_document,
            ("documents", "metadatas", "distances", "embeddings"),
        )
        found = result["embeddings"][0] if result["embeddings"] is not None else None
        if found is None or len(found) == 0:
            return []
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), found.tolist(), lambda_mult=lambda_mult, k=k
        )
        docs = _documents(result)
        return [docs[i][0] for i in chosen]

    def _search(
        self,
        embedding: Sequence[float],
        k: int,
        filter: Mapping[str, Any] | None,
        where_document: Mapping[str, Any] | None,
    ) -> list[tuple[Document, float]]:
        result = self._query(
            embedding, k, filter, where_document, ("documents", "metadatas", "distances")
        )
        return _documents(result)

    def _query(
        self,
        embedding: Sequence[float],
        k: int,
        filter: Mapping[str, Any] | None,
        where_document: Mapping[str, Any] | None,
        include: Include,
    ) -> QueryResult:
        return self._collection.query(
            query_embeddings=[list(embedding)],
            n_results=k,
            where=filter or None,
            where_document=where_document or None,
            include=include,
        )

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_documents(
        cls,
        documents: list[Document],
        embedding: Embeddings | EmbeddingFunction | None = None,
        **kwargs: Any,
    ) -> Self:
        """`from_texts` with the documents' texts, metadata and ids (where set)."""
        if "ids" not in kwargs and any(d.id for d in documents):
            kwargs["ids"] = [d.id for d in documents]
        return cls.from_texts(
            [d.page_content for d in documents],
            embedding,
            metadatas=[d.metadata for d in documents],
            **kwargs,
        )

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | EmbeddingFunction | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: Sequence[str | None] | None = None,
        collection_name: str = "langchain",
        client: Client | None = None,
        path: str | Path | None = None,
        collection_metadata: Mapping[str, Any] | None = None,
        configuration: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        """A store over `collection_name` (in `client`, at `path`, or in memory) holding
        `texts`. Other keyword arguments go to the constructor (e.g. `batch_size`)."""
        store = cls(
            collection_name,
            embedding,
            client=client,
            path=path,
            collection_metadata=collection_metadata,
            configuration=configuration,
            **kwargs,
        )
        store.add_texts(texts, metadatas, ids=ids)
        return store


def _document(record_id: str, text: str | None, metadata: Mapping[str, Any] | None) -> Document:
    return Document(page_content=text or "", metadata=from_haima_metadata(metadata), id=record_id)


def _documents(result: QueryResult) -> list[tuple[Document, float]]:
    ids = result["ids"][0]
    texts = result["documents"][0] if result["documents"] is not None else [None] * len(ids)
    mds = result["metadatas"][0] if result["metadatas"] is not None else [None] * len(ids)
    distances = result["distances"][0] if result["distances"] is not None else [math.nan] * len(ids)
    return [
        (_document(record_id, text, md), float(distance))
        for record_id, text, md, distance in zip(ids, texts, mds, distances, strict=True)
    ]


def _no_extra(kwargs: Mapping[str, Any], method: str) -> None:
    if kwargs:
        raise TypeError(f"{method}() got unexpected keyword argument(s): {', '.join(kwargs)}")
