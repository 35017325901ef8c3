"""LocalBackend: the embedded engine (SQLite as the source of truth, FAISS as its cache).

The front over the engine's rooms: `Store` (all SQL), `IndexCache` (indexes in step
with the store, snapshots), `Writer` (writes), `Searcher` (vector, keyword and hybrid
search through the planner's cached plans) and `Background` (indexing and filtered
views off the query path). They share one lock, the store's.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from haima.backends.base import CollectionModel, QueryMode
from haima.backends.local.background import Background
from haima.backends.local.indexes import IndexCache
from haima.backends.local.search import PLAN_CACHE_FLOOR, Search, Searcher
from haima.backends.local.writes import Writer
from haima.backends.parsed_filters import parse_filters
from haima.config import CollectionConfiguration
from haima.errors import NotFoundError, ResetNotAllowedError
from haima.filters import IdIn, combine
from haima.index.faiss_index import Vectors
from haima.index.plan_cache import PlanCache, PlanCacheStats
from haima.settings import Settings
from haima.storage.rows import CollectionRow, decode_metadata, vectors_from_blobs
from haima.storage.sqlite import DEFAULT_DATABASE, DEFAULT_TENANT, Store
from haima.types import GetResult, IncludeField, QueryResult, Where, WhereDocument

#: The SQLite database in a store's folder; the index snapshots lie beside it.
STORE_FILE = "haima.sqlite3"


class LocalBackend:
    def __init__(
        self,
        path: str | Path | None = None,
        settings: Settings | None = None,
        *,
        create: bool = True,
    ) -> None:
        """A store in memory (`path` None) or in the folder `path`, created there unless
        `create` is False: then a folder without a store is a NotFoundError, so that
        reading from a mistyped path does not leave an empty store behind."""
        self.settings = settings or Settings()
        self.root = Path(path) if path is not None else None
        if self.root is not None and not create and not (self.root / STORE_FILE).is_file():
            raise NotFoundError(f"no Haima store at {self.root} (it holds no {STORE_FILE})")
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
        self.store = Store(
            self.root / STORE_FILE if self.root else None,
            synchronous=self.settings.sqlite_synchronous,
        )
        self.lock = self.store.lock
        self.plans = PlanCache(PLAN_CACHE_FLOOR, self.settings.filter_view_after)
        self.indexes = IndexCache(self.store, self.root, self.plans)
        self.background = Background(self.lock, self.store, self.settings, self.indexes, self.plans)
        wake = self.background.wake
        self.writer = Writer(self.lock, self.store, self.indexes, wake)
        self.searcher = Searcher(
            self.lock, self.store, self.settings, self.indexes, self.plans, wake
        )

    # -- lifecycle -------------------------------------------------------------------------

    def heartbeat(self) -> int:
        return time.time_ns()

    def close(self) -> None:
        if self.background.closed:
            return
        self.background.stop()
        with self.lock:
            self.indexes.save_all()
            self.background.closed = True
            self.store.close()

    def reset(self) -> None:
        if not self.settings.allow_reset:
            raise ResetNotAllowedError(
                "reset() is disabled; create the client with Settings(allow_reset=True)"
            )
        with self.lock:
            for tenant, database in self.all_databases():
                for row in self.store.list_collections(tenant, database, None, None):
                    self._drop_collection(row.id)
                if (tenant, database) != (DEFAULT_TENANT, DEFAULT_DATABASE):
                    self.store.delete_database(tenant, database)
            self.store.delete_other_tenants()
            self.store.reclaim_space()

    def all_databases(self) -> list[tuple[str, str]]:
        return self.store.all_databases()

    def load_indexes(self) -> None:
        """Load every collection's index snapshot now, each without holding the lock (a
        server's start: its first queries then find the indexes loaded, or wait for the
        load under way instead of starting their own)."""
        with self.lock:
            if self.background.closed:
                return
            ids = [
                row.id
                for tenant, database in self.all_databases()
                for row in self.store.list_collections(tenant, database, None, None)
            ]
        for collection_id in ids:
            try:
                self.indexes.load_unlocked(collection_id, self.lock)
            except sqlite3.ProgrammingError:
                if self.background.closed:
                    return  # closed meanwhile: nothing to load for
                raise

    # -- tenants and databases -------------------------------------------------------------

    def create_tenant(self, name: str) -> None:
        self.store.create_tenant(name)

    def get_tenant(self, name: str) -> str:
        if not self.store.tenant_exists(name):
            raise NotFoundError(f"tenant {name!r} does not exist")
        return name

    def create_database(self, tenant: str, name: str) -> None:
        self.store.create_database(tenant, name)

    def get_database(self, tenant: str, name: str) -> str:
        return self.store.get_database(tenant, name)

    def list_databases(self, tenant: str) -> list[str]:
        self.get_tenant(tenant)  # a tenant that does not exist is an error, not an empty list
        return [name for name, _ in self.store.list_databases(tenant)]

    def delete_database(self, tenant: str, name: str) -> None:
        self.store.get_database(tenant, name)
        with self.lock:
            for row in self.store.list_collections(tenant, name, None, None):
                self._drop_collection(row.id)
            self.store.delete_database(tenant, name)

    # -- collections -------------------------------------------------------------------------

    @staticmethod
    def _model(row: CollectionRow) -> CollectionModel:
        return row.model()

    def create_collection(
        self,
        tenant: str,
        database: str,
        name: str,
        metadata: dict[str, Any] | None,
        configuration: dict[str, Any],
        get_or_create: bool,
    ) -> CollectionModel:
        keyword_index = CollectionConfiguration.from_json(configuration).keyword.enabled
        row, _ = self.store.create_collection(
            tenant,
            database,
            name,
            metadata,
            configuration,
            get_or_create,
            keyword_index=keyword_index,
        )
        return self._model(row)

    def get_collection(self, tenant: str, database: str, name: str) -> CollectionModel:
        return self._model(self.store.get_collection(tenant, database, name))

    def get_collection_by_id(self, collection_id: str) -> CollectionModel:
        return self._model(self.store.get_collection_by_id(collection_id))

    def list_collections(
        self, tenant: str, database: str, limit: int | None, offset: int | None
    ) -> list[CollectionModel]:
        self.store.get_database(tenant, database)  # missing: NotFoundError, not []
        return [
            self._model(r) for r in self.store.list_collections(tenant, database, limit, offset)
        ]

    def count_collections(self, tenant: str, database: str) -> int:
        self.store.get_database(tenant, database)
        return self.store.count_collections(tenant, database)

    def delete_collection(self, tenant: str, database: str, name: str) -> None:
        with self.lock:
            row = self.store.get_collection(tenant, database, name)
            self._drop_collection(row.id)

    def _drop_collection(self, collection_id: str) -> None:
        self.store.delete_collection(collection_id)
        self.indexes.drop(collection_id)
        self.searcher.forget(collection_id)
        self.store.reclaim_space()

    def modify_collection(
        self,
        collection_id: str,
        name: str | None,
        metadata: dict[str, Any] | None,
        configuration: dict[str, Any] | None,
    ) -> CollectionModel:
        keyword_index = None  # unchanged
        if configuration is not None:
            keyword_index = CollectionConfiguration.from_json(configuration).keyword.enabled
        with self.lock:
            row = self.store.modify_collection(
                collection_id,
                name=name,
                metadata=metadata,
                configuration=configuration,
                keyword_index=keyword_index,
            )
            if keyword_index is False:
                self.store.reclaim_space()  # a dropped keyword index's pages
            if self.indexes.reconfigured(row, configuration):
                self.background.wake()
        return self._model(row)

    # -- writes --------------------------------------------------------------------------------

    def add(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self.writer.add(collection_id, ids, embeddings, documents, metadatas)

    def upsert(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self.writer.write(collection_id, ids, embeddings, documents, metadatas, must_exist=False)

    def update(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors | None,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self.writer.write(collection_id, ids, embeddings, documents, metadatas, must_exist=True)

    def delete(
        self,
        collection_id: str,
        ids: list[str] | None,
        where: Where | None,
        where_document: WhereDocument | None,
    ) -> None:
        self.writer.delete(collection_id, ids, parse_filters(where, where_document))

    # -- reads ---------------------------------------------------------------------------------

    def count(self, collection_id: str) -> int:
        self.store.get_collection_by_id(collection_id)
        return self.store.count(collection_id)

    def get(
        self,
        collection_id: str,
        ids: list[str] | None,
        where: Where | None,
        where_document: WhereDocument | None,
        limit: int | None,
        offset: int | None,
        include: Sequence[IncludeField],
    ) -> GetResult:
        filt = parse_filters(where, where_document)
        row = self.store.get_collection_by_id(collection_id)
        with_embeddings = "embeddings" in include
        rows = self.store.select_records(
            collection_id,
            ids=ids,
            filt=filt,
            limit=limit,
            offset=offset,
            with_embeddings=with_embeddings,
        )
        # Records come in the order they were first stored, with or without `ids`, as in
        # Chroma: `limit` and `offset` page through that one order.
        return GetResult(
            ids=[r.id for r in rows],
            embeddings=vectors_from_blobs([r.embedding for r in rows], row.dimension or 0)
            if with_embeddings
            else None,
            documents=[r.document for r in rows] if "documents" in include else None,
            metadatas=[decode_metadata(r.metadata) for r in rows]
            if "metadatas" in include
            else None,
            uris=None,
            data=None,
            included=list(include),
        )

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
        filt = parse_filters(where, where_document)
        if ids is not None:
            filt = combine(IdIn(tuple(ids)), filt)
        search = Search(mode, query_embeddings, query_texts, n_results, filt)
        return self.searcher.query(collection_id, search, include)

    def build_index(self, collection_id: str) -> None:
        """Finish the ANN index now, and the filtered views asked for (both are otherwise
        built in the background)."""
        self.background.build_now(collection_id)

    def index_status(self, collection_id: str) -> dict[str, Any]:
        """The collection's index as this process holds it (see `IndexCache.status`), and
        the size of its snapshot on disk."""
        with self.lock:
            status = self.indexes.status(collection_id)
            status["snapshot_bytes"] = self.indexes.snapshot_bytes(collection_id)
        return status

    def version(self, collection_id: str) -> int:
        """A number that changes with every write to the collection (its write sequence)."""
        return self.store.seq_of(collection_id)[0]

    def text_bytes(self, collection_id: str, limit: int) -> tuple[int, int]:
        """(bytes of ids, documents and metadata, rows read) over at most `limit` records."""
        return self.store.text_bytes(collection_id, limit)

    def plan_cache_stats(self) -> PlanCacheStats:
        with self.lock:
            return self.plans.stats()
