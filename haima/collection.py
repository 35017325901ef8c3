"""Collection: the one class users hold, whatever the backend.

It validates input, turns documents into vectors with the collection's embedding
function, and passes everything to its backend; results come back in Chroma's shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from haima import validation
from haima.backends.base import QUERY_MODES, Backend, CollectionModel, QueryMode
from haima.config import CollectionConfiguration, parse_configuration, updated_configuration
from haima.embeddings import EmbeddingFunction, embed_documents, embed_queries
from haima.errors import InvalidArgumentError
from haima.types import (
    DEFAULT_GET_INCLUDE,
    DEFAULT_QUERY_INCLUDE,
    Embeddings,
    GetResult,
    Include,
    QueryResult,
    Vectors,
    Where,
    WhereDocument,
)


class Collection:
    def __init__(
        self,
        backend: Backend,
        model: CollectionModel,
        embedding_function: EmbeddingFunction | None,
        owner: object | None = None,
    ) -> None:
        self._backend = backend
        self._model = model
        self._embedding_function = embedding_function
        # The client that made this collection closes the backend when it is collected;
        # holding it keeps `PersistentClient(path).get_collection(...)` usable.
        self._owner = owner

    def __repr__(self) -> str:
        return f"Collection(name={self.name!r}, id={self.id!r})"

    # -- properties -------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._model.id

    @property
    def name(self) -> str:
        return self._model.name

    @property
    def metadata(self) -> dict[str, Any] | None:
        return self._model.metadata

    @property
    def configuration(self) -> dict[str, Any]:
        return self._model.configuration

    @property
    def dimension(self) -> int | None:
        return self._model.dimension

    @property
    def embedding_function(self) -> EmbeddingFunction | None:
        return self._embedding_function

    @property
    def tenant(self) -> str:
        return self._model.tenant

    @property
    def database(self) -> str:
        return self._model.database

    # -- writes ---------------------------------------------------------------------------

    def add(
        self,
        ids: str | Sequence[str],
        embeddings: Embeddings | None = None,
        metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
        documents: str | Sequence[str | None] | None = None,
    ) -> None:
        """Add new records; an id that exists already is an error (see `upsert`)."""
        record_ids, vectors, docs, mds = self._records(ids, embeddings, metadatas, documents)
        self._backend.add(self.id, record_ids, vectors, docs, mds)
        self._learn_dimension(vectors)

    def upsert(
        self,
        ids: str | Sequence[str],
        embeddings: Embeddings | None = None,
        metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
        documents: str | Sequence[str | None] | None = None,
    ) -> None:
        """Add records, or update those whose id exists (metadata keys merge as in update)."""
        record_ids, vectors, docs, mds = self._records(
            ids, embeddings, metadatas, documents, allow_none_values=True
        )
        self._backend.upsert(self.id, record_ids, vectors, docs, mds)
        self._learn_dimension(vectors)

    def update(
        self,
        ids: str | Sequence[str],
        embeddings: Embeddings | None = None,
        metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
        documents: str | Sequence[str | None] | None = None,
    ) -> None:
        """Change existing records. Given metadata keys replace the stored ones, a key
        set to None is removed, other keys stay (Chroma's semantics). New documents are
        re-embedded when the collection has an embedding function and no embeddings
        are given."""
        record_ids = validation.ids(ids)
        count = len(record_ids)
        docs = validation.documents(documents, count) if documents is not None else None
        mds = (
            validation.metadatas(metadatas, count, allow_none_values=True)
            if metadatas is not None
            else None
        )
        vectors: Vectors | None = None
        if embeddings is not None:
            vectors = validation.embeddings(embeddings, count, self._model.dimension)
        elif docs is not None and self._embedding_function is not None:
            if any(d is None for d in docs):
                raise InvalidArgumentError(
                    "documents: every document must be given to re-embed them"
                )
            vectors = self._embed([d for d in docs if d is not None])
        self._backend.update(self.id, record_ids, vectors, docs, mds)

    def delete(
        self,
        ids: str | Sequence[str] | None = None,
        where: Where | None = None,
        where_document: WhereDocument | None = None,
    ) -> None:
        """Delete the records with these ids and/or matching the filters (all must hold)."""
        if ids is None and not where and not where_document:
            raise InvalidArgumentError(
                "delete: give ids, where or where_document (deleting everything needs an "
                "explicit filter or delete_collection())"
            )
        record_ids = validation.ids(ids) if ids is not None else None
        self._backend.delete(self.id, record_ids, where, where_document)

    # -- reads ----------------------------------------------------------------------------

    def count(self) -> int:
        return self._backend.count(self.id)

    def get(
        self,
        ids: str | Sequence[str] | None = None,
        where: Where | None = None,
        where_document: WhereDocument | None = None,
        limit: int | None = None,
        offset: int | None = None,
        include: Include = DEFAULT_GET_INCLUDE,
    ) -> GetResult:
        """Records by id and/or filter, in the order they were first stored (as Chroma)."""
        return self._backend.get(
            self.id,
            validation.ids(ids) if ids is not None else None,
            where,
            where_document,
            validation.non_negative_int(limit, "limit"),
            validation.non_negative_int(offset, "offset"),
            validation.include(include, allowed_distances=False),
        )

    def peek(self, limit: int = 10) -> GetResult:
        return self.get(limit=limit, include=("documents", "metadatas", "embeddings"))

    def query(
        self,
        query_embeddings: Embeddings | None = None,
        query_texts: str | Sequence[str] | None = None,
        n_results: int = 10,
        where: Where | None = None,
        where_document: WhereDocument | None = None,
        include: Include = DEFAULT_QUERY_INCLUDE,
        mode: QueryMode = "vector",
        ids: str | Sequence[str] | None = None,
    ) -> QueryResult:
        """The `n_results` best records for each query (fewer if fewer match); with `ids`,
        among those records only (as Chroma's `query(ids=...)`; combines with filters).

        `mode="vector"` ranks by embedding distance (give query_embeddings or
        query_texts); "keyword" by BM25 over the documents' words (query_texts); "hybrid"
        fuses both rankings (query_texts, embedded by the collection's function, or
        query_texts and query_embeddings together). Keyword and hybrid need the keyword
        index: `configuration={"keyword": {"enabled": True}}`. See docs/hybrid-search.md.
        """
        if mode not in QUERY_MODES:
            raise InvalidArgumentError(
                f"mode: expected one of {', '.join(map(repr, QUERY_MODES))}, got {mode!r}"
            )
        n = validation.positive_int(n_results, "n_results")
        fields = validation.include(include, allowed_distances=True)
        among = None if ids is None else validation.ids(ids)
        if mode == "vector":
            queries = self._vector_query(query_embeddings, query_texts)
            return self._backend.query(
                self.id, queries, n, where, where_document, fields, ids=among
            )
        texts = self._text_query(query_texts, mode)
        if mode == "keyword" and query_embeddings is not None:
            raise InvalidArgumentError(
                "query_embeddings: mode='keyword' matches words and takes query_texts only "
                "(mode='hybrid' uses both)"
            )
        vectors = self._hybrid_vectors(query_embeddings, texts) if mode == "hybrid" else None
        return self._backend.query(
            self.id,
            vectors,
            n,
            where,
            where_document,
            fields,
            query_texts=texts,
            mode=mode,
            ids=among,
        )

    def _hybrid_vectors(self, query_embeddings: Embeddings | None, texts: list[str]) -> Vectors:
        """The vector side of a hybrid query: the texts embedded, or the embeddings given
        with them (one per text)."""
        if query_embeddings is None:
            return self._embed(texts, queries=True)
        vectors = validation.query_embeddings(query_embeddings, self._model.dimension)
        if len(vectors) != len(texts):
            raise InvalidArgumentError(
                f"query_embeddings: got {len(vectors)} for {len(texts)} query_texts; "
                "mode='hybrid' pairs them one to one"
            )
        return vectors

    def _vector_query(
        self, query_embeddings: Embeddings | None, query_texts: str | Sequence[str] | None
    ) -> Vectors:
        if (query_embeddings is None) == (query_texts is None):
            raise InvalidArgumentError("query: give exactly one of query_embeddings or query_texts")
        if query_texts is not None:
            return self._embed(self._text_query(query_texts, "vector"), queries=True)
        assert query_embeddings is not None
        return validation.query_embeddings(query_embeddings, self._model.dimension)

    @staticmethod
    def _text_query(query_texts: str | Sequence[str] | None, mode: QueryMode) -> list[str]:
        if query_texts is None:
            raise InvalidArgumentError(
                f"query_texts: mode={mode!r} searches the documents' words, so it needs query_texts"
            )
        if not isinstance(query_texts, (str, Sequence)):
            raise InvalidArgumentError(
                "query_texts: expected a string or a list of strings, "
                f"got {type(query_texts).__name__}"
            )
        given = [query_texts] if isinstance(query_texts, str) else list(query_texts)
        validation.documents(given, len(given), "query_texts")
        if not given:
            raise InvalidArgumentError("query_texts: give at least one text")
        texts: list[str] = []
        for i, text in enumerate(given):
            if text is None:
                raise InvalidArgumentError(f"query_texts[{i}]: expected a string, got None")
            texts.append(text)
        return texts

    # -- the collection itself --------------------------------------------------------------

    def modify(
        self,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        configuration: Mapping[str, Any] | None = None,
    ) -> None:
        """Rename, replace metadata, or change index settings (a new index type is
        rebuilt in the background; the metric cannot change)."""
        new_name = validation.collection_name(name) if name is not None else None
        new_metadata = validation.collection_metadata(metadata) if metadata is not None else None
        new_config = None
        if configuration is not None:
            current = CollectionConfiguration.from_json(self._model.configuration)
            new_config = updated_configuration(current, configuration).to_json()
        self._model = self._backend.modify_collection(self.id, new_name, new_metadata, new_config)

    def build_index(self) -> None:
        """Finish building the ANN index now, and the filtered views asked for (both are
        normally built in the background)."""
        self._backend.build_index(self.id)

    # -- helpers ----------------------------------------------------------------------------

    def _learn_dimension(self, vectors: Vectors) -> None:
        """The first vectors fix the collection's dimension."""
        if self._model.dimension is None:
            self._model = dataclasses.replace(self._model, dimension=int(vectors.shape[1]))

    def _records(
        self,
        ids: str | Sequence[str],
        embeddings: Embeddings | None,
        metadatas: Any,
        documents: Any,
        allow_none_values: bool = False,
    ) -> tuple[list[str], Vectors, list[str | None] | None, list[dict[str, Any] | None] | None]:
        record_ids = validation.ids(ids)
        if not record_ids:
            raise InvalidArgumentError("ids: give at least one id")
        count = len(record_ids)
        docs = validation.documents(documents, count) if documents is not None else None
        mds = (
            validation.metadatas(metadatas, count, allow_none_values=allow_none_values)
            if metadatas is not None
            else None
        )
        if embeddings is not None:
            vectors = validation.embeddings(embeddings, count, self._model.dimension)
        elif docs is not None:
            if any(d is None for d in docs):
                raise InvalidArgumentError(
                    "documents: every record needs a document when embeddings are not given"
                )
            vectors = self._embed([d for d in docs if d is not None])
        else:
            raise InvalidArgumentError("embeddings: give embeddings or documents for every record")
        return record_ids, vectors, docs, mds

    def _embed(self, texts: list[str], queries: bool = False) -> Vectors:
        fn = self._embedding_function
        if fn is None:
            field = "query_embeddings" if queries else "embeddings"
            raise InvalidArgumentError(
                f"{field}: collection {self.name!r} has no embedding function, so embeddings "
                "must be given; or pass embedding_function= when getting the collection"
            )
        vectors = (
            embed_queries(fn, texts, field="query_texts")
            if queries
            else embed_documents(fn, texts, field="documents")
        )
        dimension = self._model.dimension
        if dimension is not None and vectors.shape[1] != dimension:
            raise InvalidArgumentError(
                f"embedding function: produced dimension {vectors.shape[1]}, but collection "
                f"{self.name!r} has dimension {dimension}"
            )
        return vectors


__all__ = ["Collection", "parse_configuration"]
