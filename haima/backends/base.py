"""The Backend protocol: the one seam between the Python API and where data lives.

`Collection` and `Client` are written once against this protocol; the local engine, the
HTTP client and the Milvus adapter implement it. Inputs arrive validated and embedded
(ids unique, vectors a float32 matrix); filters arrive as the raw `where` dicts, which
each backend parses (a server receives them as JSON anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, get_args

from haima.types import CollectionModel as CollectionModel  # re-exported: the protocol's type
from haima.types import GetResult, IncludeField, QueryResult, Vectors, Where, WhereDocument

#: How `query` ranks: by vector distance, by BM25 over the documents' words, or both
#: fused by reciprocal rank fusion (docs/hybrid-search.md).
QueryMode = Literal["vector", "keyword", "hybrid"]
QUERY_MODES: tuple[QueryMode, ...] = get_args(QueryMode)


class Backend(Protocol):
    def heartbeat(self) -> int: ...

    def close(self) -> None: ...

    def reset(self) -> None: ...

    # tenants and databases
    def create_tenant(self, name: str) -> None: ...

    def get_tenant(self, name: str) -> str: ...

    def create_database(self, tenant: str, name: str) -> None: ...

    def get_database(self, tenant: str, name: str) -> str: ...

    def list_databases(self, tenant: str) -> list[str]: ...

    def delete_database(self, tenant: str, name: str) -> None: ...

    # collections
    def create_collection(
        self,
        tenant: str,
        database: str,
        name: str,
        metadata: dict[str, Any] | None,
        configuration: dict[str, Any],
        get_or_create: bool,
    ) -> CollectionModel: ...

    def get_collection(self, tenant: str, database: str, name: str) -> CollectionModel: ...

    def get_collection_by_id(self, collection_id: str) -> CollectionModel: ...

    def list_collections(
        self, tenant: str, database: str, limit: int | None, offset: int | None
    ) -> list[CollectionModel]: ...

    def count_collections(self, tenant: str, database: str) -> int: ...

    def delete_collection(self, tenant: str, database: str, name: str) -> None: ...

    def modify_collection(
        self,
        collection_id: str,
        name: str | None,
        metadata: dict[str, Any] | None,
        configuration: dict[str, Any] | None,
    ) -> CollectionModel: ...

    # records
    def add(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None: ...

    def upsert(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None: ...

    def update(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors | None,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None: ...

    def delete(
        self,
        collection_id: str,
        ids: list[str] | None,
        where: Where | None,
        where_document: WhereDocument | None,
    ) -> None: ...

    def count(self, collection_id: str) -> int: ...

    def get(
        self,
        collection_id: str,
        ids: list[str] | None,
        where: Where | None,
        where_document: WhereDocument | None,
        limit: int | None,
        offset: int | None,
        include: Sequence[IncludeField],
    ) -> GetResult: ...

    def query(
        self,
        collection_id: str,
        query_embeddings: Vectors | None,
        n_results: int,
        where: Where | None,
        where_document: WhereDocument | None,
        include: Sequence[IncludeField],
        query_texts: list[str] | None = None,
        mode: QueryMode = "vector",
        ids: list[str] | None = None,
    ) -> QueryResult:
        """The best `n_results` records per query (fewer if fewer match), best first,
        among the records named by `ids` when given (Chroma 1.x's `query(ids=...)`).

        - "vector": `query_embeddings` (one row per query); `query_texts` None.
        - "keyword": `query_texts`; `query_embeddings` None. Needs the collection's keyword
          index (`configuration.keyword.enabled`), else InvalidArgumentError.
        - "hybrid": both, row i of `query_embeddings` being text i embedded. The backend
          fuses the two rankings itself (a server fuses server-side).

        `query_texts` and `mode` come last, with defaults, so that a vector query is the
        call every backend has answered since the first release. Distances per mode are
        documented in docs/hybrid-search.md.
        """
        ...

    def build_index(self, collection_id: str) -> None: ...
