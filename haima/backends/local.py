"""LocalBackend: the embedded engine (SQLite as the source of truth, FAISS as its cache).

Writes commit to SQLite in one transaction per call and then, when the in-memory index is
exactly one batch behind, apply to it directly; otherwise the index catches up from the
store before the next read. Reads check `PRAGMA data_version`, so a second process's
commits are seen without reopening.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from haima import text
from haima.backends.base import CollectionModel, QueryMode
from haima.config import CollectionConfiguration
from haima.errors import (
    DimensionMismatchError,
    InvalidArgumentError,
    NotFoundError,
    ResetNotAllowedError,
)
from haima.filters import (
    And,
    Filter,
    IdIn,
    combine,
    parse_where,
    parse_where_document,
)
from haima.index.collection_index import INDEX_STEP, CollectionIndex, PartPlan
from haima.index.faiss_index import (
    Rids,
    SearchTuning,
    VectorIndex,
    Vectors,
    faiss_threads,
    prepare,
)
from haima.index.fusion import fused_distance, reciprocal_rank_fusion
from haima.index.plan_cache import PlanCache, PlanCacheStats, ViewRequest
from haima.index.snapshot import Snapshot, SnapshotError, write_snapshot
from haima.settings import Settings
from haima.storage.sqlite import (
    DEFAULT_DATABASE,
    DEFAULT_TENANT,
    CollectionRow,
    Store,
    decode_metadata,
    vectors_from_blobs,
)
from haima.types import GetResult, IncludeField, QueryResult, Where, WhereDocument
from haima.validation import merged_metadata

log = logging.getLogger("haima")

#: Filter plans kept per backend, bounded by bytes (exact-scan plans hold vectors): by
#: default twice the open collections' vectors (a view of half of them fits), within
#: these bounds.
PLAN_CACHE_FLOOR = 32 * 1024 * 1024
PLAN_CACHE_CEILING = 256 * 1024 * 1024

#: Filters are resolved from the metadata index alone (`Store.indexed_rids`) when the
#: collection holds at least 1/this of the rids ever allocated in the store.
SHARE_FOR_RID_SELECT = 4

#: Hybrid search fuses this many candidates from each side: max(factor × n_results, floor).
HYBRID_CANDIDATE_FACTOR = 4
HYBRID_CANDIDATE_FLOOR = 50

#: Documents segmented ahead of a write, to be indexed once it runs (see `_segment_early`).
EarlyTexts = text.SegmentedLater | None


@dataclass
class _IndexSlot:
    """A collection's loaded index and what it was last checked against."""

    index: CollectionIndex
    data_version: int = -1
    stale: bool = False
    #: The collection as last read, valid while `data_version` holds (see `_for_query`).
    row: CollectionRow | None = None
    config: CollectionConfiguration | None = None
    last_saved: float = field(default_factory=time.monotonic)
    last_write: float = 0.0


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
        self._slots: dict[str, _IndexSlot] = {}
        self._plans = PlanCache(PLAN_CACHE_FLOOR, self.settings.filter_view_after)
        #: Notified when a view build ends (`build_index` waits for the indexer's).
        self._view_built = threading.Condition(self.lock)
        #: Collections whose keyword index this process has seen built by its segmenter.
        self._keyword_checked: set[str] = set()
        self._closed = False
        self._indexer: _Indexer | None = None
        #: Builds filtered views at the lowest CPU priority, without the lock (the
        #: indexer holds the lock during its steps, so it keeps the normal priority).
        self._view_builder: ThreadPoolExecutor | None = None
        if self.settings.background_indexing:
            self._view_builder = ThreadPoolExecutor(
                1, thread_name_prefix="haima-views", initializer=_yield_to_queries
            )
            self._indexer = _Indexer(self)
            self._indexer.start()

    # -- lifecycle -------------------------------------------------------------------------

    def heartbeat(self) -> int:
        return time.time_ns()

    def close(self) -> None:
        if self._closed:
            return
        if self._indexer is not None:
            self._indexer.stop()
        if self._view_builder is not None:
            self._view_builder.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            for collection_id in list(self._slots):
                self._save(collection_id)
            self._closed = True
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
            with self.store.transaction() as conn:
                conn.execute("DELETE FROM tenants WHERE name != ?", (DEFAULT_TENANT,))
            self.store.reclaim_space()

    def all_databases(self) -> list[tuple[str, str]]:
        with self.lock:
            rows = self.store.conn.execute("SELECT tenant, name FROM databases").fetchall()
        return [(str(t), str(n)) for t, n in rows]

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
        return CollectionModel(
            id=row.id,
            name=row.name,
            tenant=row.tenant,
            database=row.database,
            metadata=row.metadata,
            configuration=row.configuration,
            dimension=row.dimension,
        )

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
        self._slots.pop(collection_id, None)
        self._keyword_checked.discard(collection_id)
        self._plans.forget(collection_id)
        if self.root is not None:
            shutil.rmtree(self._index_dir(collection_id), ignore_errors=True)
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
            slot = self._slots.get(collection_id)
            if slot is not None:
                slot.row = slot.config = None
            if slot is not None and configuration is not None:
                slot.index.reconfigure(
                    CollectionConfiguration.from_json(configuration).index, self._loader(row)
                )
                self._plans.forget(collection_id)
                self._wake_indexer()
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
        count = len(ids)
        docs = list(documents) if documents is not None else [None] * count
        mds = list(metadatas) if metadatas is not None else [None] * count
        with self.lock:
            row = self._load_before_write(collection_id)
            early = self._segment_early(row, docs)
            with self.store.transaction() as conn:
                existing = self.store.existing(conn, collection_id, ids)
                if existing:
                    # Chroma's rule: an id already stored is skipped, not replaced and not
                    # an error (see docs/architecture.md §3, "add of a stored id").
                    keep = [i for i, record_id in enumerate(ids) if record_id not in existing]
                    self._check_dimension(conn, collection_id, embeddings)
                    if not keep:
                        return
                    ids = [ids[i] for i in keep]
                    docs = [docs[i] for i in keep]
                    mds = [mds[i] for i in keep]
                    embeddings = embeddings[keep]
                    count = len(ids)
                    early = None  # segmented for the whole batch: the index segments again
                seq = self._begin_write(conn, collection_id, embeddings)
                rids = self.store.allocate_rids(conn, count)
                keyword_index = self.store.keyword_index(conn, collection_id)
                self.store.insert_records(
                    conn,
                    collection_id,
                    rids,
                    ids,
                    docs,
                    mds,
                    embeddings,
                    keyword_index=keyword_index,
                    texts=early if keyword_index is not None else None,
                )
            self._after_write(collection_id, seq, np.asarray(rids, np.int64), embeddings, ids, None)

    def upsert(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self._write_records(collection_id, ids, embeddings, documents, metadatas, must_exist=False)

    def update(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors | None,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self._write_records(collection_id, ids, embeddings, documents, metadatas, must_exist=True)

    def _write_records(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors | None,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
        must_exist: bool,
    ) -> None:
        """Update (must_exist) or upsert: given fields replace, metadata keys merge (a None
        value removes a key); a new embedding gives the record a new rid."""
        with self.lock:
            row = self._load_before_write(collection_id)
            early = self._segment_early(row, documents)
            with self.store.transaction() as conn:
                seq = self._begin_write(conn, collection_id, embeddings)
                existing = self.store.existing(conn, collection_id, ids)
                if must_exist and len(existing) < len(ids):
                    missing = [i for i in ids if i not in existing]
                    shown = ", ".join(repr(i) for i in missing[:5])
                    raise NotFoundError(
                        f"ids: {len(missing)} do not exist in the collection ({shown})"
                    )
                new_pos: list[int] = []
                new_docs: list[str | None] = []
                new_mds: list[dict[str, Any] | None] = []
                replaced: list[tuple[int, dict[str, Any] | None]] = []
                # (rid, position) of records updated in place with a new document
                retexted: list[tuple[int, int]] = []
                for i, record_id in enumerate(ids):
                    old = existing.get(record_id)
                    doc_given = documents is not None and documents[i] is not None
                    md_change = metadatas[i] if metadatas is not None else None
                    if old is None:
                        md = {k: v for k, v in (md_change or {}).items() if v is not None}
                        new_pos.append(i)
                        new_docs.append(documents[i] if documents is not None else None)
                        new_mds.append(md or None)
                        continue
                    doc = documents[i] if doc_given and documents is not None else old.document
                    md2 = (
                        merged_metadata(old.metadata, md_change)
                        if md_change is not None
                        else old.metadata
                    )
                    if embeddings is None:
                        self.store.update_in_place(conn, old.rid, doc, md2, old.metadata)
                        if doc != old.document:
                            retexted.append((old.rid, i))
                    else:
                        replaced.append((old.rid, old.metadata))
                        new_pos.append(i)
                        new_docs.append(doc)
                        new_mds.append(md2)
                keyword_index = self.store.keyword_index(conn, collection_id)
                if replaced:
                    self.store.delete_records(
                        conn, collection_id, replaced, seq, keyword_index=keyword_index
                    )
                rids = self.store.allocate_rids(conn, len(new_pos))
                vectors = (
                    embeddings[new_pos] if embeddings is not None else np.zeros((0, 1), np.float32)
                )
                if new_pos:
                    self.store.insert_records(
                        conn,
                        collection_id,
                        rids,
                        [ids[i] for i in new_pos],
                        new_docs,
                        new_mds,
                        vectors,
                        keyword_index=keyword_index,
                        texts=None
                        if keyword_index is None
                        else _texts_of(early, documents, new_pos, new_docs),
                    )
                if keyword_index is not None and retexted:
                    in_place = [r for r, _ in retexted]
                    keyword_index.remove(conn, in_place)
                    positions = [i for _, i in retexted]
                    assert documents is not None  # only a given document is a new one
                    keyword_index.add(
                        conn,
                        in_place,
                        _texts_of(early, documents, positions, [documents[i] for i in positions]),
                    )
            self._after_write(
                collection_id,
                seq,
                np.asarray(rids, np.int64),
                vectors,
                [ids[i] for i in new_pos],
                np.asarray([rid for rid, _ in replaced], np.int64),
            )

    def delete(
        self,
        collection_id: str,
        ids: list[str] | None,
        where: Where | None,
        where_document: WhereDocument | None,
    ) -> None:
        filt = _parse_filters(where, where_document)
        with self.lock:
            self._load_before_write(collection_id)
            with self.store.transaction() as conn:
                self.store.collection_state(conn, collection_id)
                rows = self.store.select_records(
                    collection_id,
                    ids=ids,
                    filt=filt,
                    limit=None,
                    offset=None,
                    with_embeddings=False,
                )
                doomed = [(int(r[0]), decode_metadata(r[3])) for r in rows]
                if not doomed:
                    return
                seq = self.store.next_seq(conn, collection_id)
                self.store.delete_records(
                    conn,
                    collection_id,
                    doomed,
                    seq,
                    keyword_index=self.store.keyword_index(conn, collection_id, adding=False),
                )
                rids = [rid for rid, _ in doomed]
            self._after_write(
                collection_id,
                seq,
                np.zeros(0, np.int64),
                np.zeros((0, 1), np.float32),
                [],
                np.asarray(rids),
            )

    def _load_before_write(self, collection_id: str) -> CollectionRow:
        """Bring the index up to date before a write, so the write can be applied to it
        directly afterwards instead of being read back from SQLite."""
        row = self.store.get_collection_by_id(collection_id)
        if row.dimension is not None:
            self._synced(collection_id, row)
        return row

    @staticmethod
    def _segment_early(row: CollectionRow, documents: Sequence[str | None] | None) -> EarlyTexts:
        """Start segmenting the documents of a write on a helper thread if the collection
        (as last read) has a keyword index: it then overlaps the write's other SQL work.
        The transaction reads the index state again and decides; a result it does not
        need is dropped."""
        keyword_on = CollectionConfiguration.from_json(row.configuration).keyword.enabled
        if not keyword_on or documents is None or all(d is None for d in documents):
            return None
        return text.SegmentedLater(documents)

    def _begin_write(self, conn: Any, collection_id: str, embeddings: Vectors | None) -> int:
        dimension = self._check_dimension(conn, collection_id, embeddings)
        if dimension is None and embeddings is not None and len(embeddings):
            self.store.set_dimension(conn, collection_id, int(embeddings.shape[1]))
        return self.store.next_seq(conn, collection_id)

    def _check_dimension(
        self, conn: Any, collection_id: str, embeddings: Vectors | None
    ) -> int | None:
        """The collection's dimension (None: not set yet); embeddings of another one are
        refused."""
        dimension, _ = self.store.collection_state(conn, collection_id)
        given = None if embeddings is None or not len(embeddings) else embeddings.shape[1]
        if dimension is not None and given is not None and given != dimension:
            raise DimensionMismatchError(f"embeddings: expected dimension {dimension}, got {given}")
        return dimension

    def _after_write(
        self,
        collection_id: str,
        seq: int,
        rids: Rids,
        vectors: Vectors,
        ids: Sequence[str],
        deleted: Rids | None,
    ) -> None:
        """Apply a committed batch to the loaded index if it is exactly one batch behind;
        otherwise leave it to catch up from the store before the next read."""
        self._plans.forget(collection_id)
        slot = self._slots.get(collection_id)
        if slot is None and seq == 1 and len(rids):
            # The collection's first batch: start its index here rather than read the
            # batch back from SQLite at the first query.
            row = self.store.get_collection_by_id(collection_id)
            config = CollectionConfiguration.from_json(row.configuration)
            slot = _IndexSlot(CollectionIndex(int(vectors.shape[1]), config.metric, config.index))
            slot.data_version = self.store.data_version()
            self._slots[collection_id] = slot
        if slot is None:
            return
        slot.last_write = time.monotonic()
        if slot.index.seq == seq - 1 and not slot.stale:
            gone = deleted if deleted is not None else np.zeros(0, np.int64)
            slot.index.apply(rids, vectors, ids, gone, seq)
        else:
            slot.stale = True
        self._wake_indexer()

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
        filt = _parse_filters(where, where_document)
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
            ids=[r[1] for r in rows],
            embeddings=vectors_from_blobs([r[4] for r in rows], row.dimension or 0)
            if with_embeddings
            else None,
            documents=[r[2] for r in rows] if "documents" in include else None,
            metadatas=[decode_metadata(r[3]) for r in rows] if "metadatas" in include else None,
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
        filt = _parse_filters(where, where_document)
        if ids is not None:
            filt = combine(IdIn(tuple(ids)), filt)
        search = _Search(mode, query_embeddings, query_texts, n_results, filt)
        # A record found by the search may be deleted by another process before its row
        # is read: search again (twice), then answer with what could be read.
        for attempt in range(3):
            answer = self._query_once(collection_id, search, include, partial=attempt == 2)
            if answer is not None:
                return answer
        raise AssertionError("a partial query always answers")

    def _query_once(
        self,
        collection_id: str,
        search: _Search,
        include: Sequence[IncludeField],
        partial: bool = False,
    ) -> QueryResult | None:
        """One search. Each SQL read is a single statement (its own snapshot); if a record
        found by the search was deleted by another process before its row was read, the
        index is marked stale and None is returned, so the caller searches again."""
        with self.lock:
            row, config, slot = self._for_query(collection_id)
            if search.mode == "vector":
                assert search.embeddings is not None
                distances, rids = self._vector_search(
                    row, config, slot, search.embeddings, search.n_results, search.filt
                )
            else:
                distances, rids = self._text_search(row, config, slot, search)
            if (
                slot is not None
                and search.mode == "vector"  # the index and the search saw one state
                and _RECORD_FIELDS.isdisjoint(include)
            ):
                return _ids_result(rids, distances, slot.index.ids, include)
            wanted = set(rids[rids >= 0].tolist())
            records = self.store.records_by_rid(
                wanted,
                documents="documents" in include,
                metadatas="metadatas" in include,
                embeddings="embeddings" in include,
            )
            if len(records) < len(wanted) and not partial:
                if slot is not None:
                    slot.stale = True
                return None
        return _query_result(rids, distances, records, include, row.dimension)

    def _vector_search(
        self,
        row: CollectionRow,
        config: CollectionConfiguration,
        slot: _IndexSlot | None,
        query_embeddings: Vectors,
        n_results: int,
        filt: Filter | None,
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        """(distances, rids), one row per query, -1 where fewer than `n_results` match."""
        index = slot.index if slot is not None else None
        if index is not None and query_embeddings.shape[1] != index.dim:
            raise DimensionMismatchError(
                f"query_embeddings: expected dimension {index.dim}, got {query_embeddings.shape[1]}"
            )
        live = index.live_count if index is not None else 0
        if index is None or not live:
            n_queries = len(query_embeddings)
            return np.zeros((n_queries, 0), np.float32), np.zeros((n_queries, 0), np.int64)
        plans = None if filt is None else self._plans_for(row.id, index, filt)
        queries = prepare(query_embeddings, index.metric)
        cfg = config.index
        tuning = SearchTuning(ef_search=cfg.ef_search, nprobe=cfg.nprobe)
        with faiss_threads(cfg.num_threads):
            return index.search(queries, min(n_results, live), plans, tuning, self._loader(row))

    def _text_search(
        self,
        row: CollectionRow,
        config: CollectionConfiguration,
        slot: _IndexSlot | None,
        search: _Search,
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        """Keyword or hybrid search, as (distances, rids) like `_vector_search`.

        keyword: distance = FTS5's bm25(), the negated BM25 score (≤ 0, lower is better).
        hybrid: each side ranks max(4 × n_results, 50) candidates under the same filter;
        reciprocal rank fusion orders them; distance = `fused_distance` (0 … 1)."""
        assert search.texts is not None
        if not config.keyword.enabled or not self._keyword_ready(row.id):
            raise InvalidArgumentError(
                f"mode={search.mode!r}: collection {row.name!r} has no keyword index; enable "
                "it with collection.modify(configuration={'keyword': {'enabled': True}}) "
                "(it indexes the stored documents), or create the collection with that "
                "configuration"
            )
        if search.mode == "keyword":
            return _padded(self._keyword_ranks(row, search.texts, search.n_results, search.filt))
        return _padded(self._hybrid_ranks(row, config, slot, search))

    def _hybrid_ranks(
        self,
        row: CollectionRow,
        config: CollectionConfiguration,
        slot: _IndexSlot | None,
        search: _Search,
    ) -> list[list[tuple[int, float]]]:
        """Per query, (rid, fused distance) of the best records of both rankings."""
        assert search.embeddings is not None and search.texts is not None
        candidates = max(HYBRID_CANDIDATE_FACTOR * search.n_results, HYBRID_CANDIDATE_FLOOR)
        _, vector_rids = self._vector_search(
            row, config, slot, search.embeddings, candidates, search.filt
        )
        keyword_hits = self._keyword_ranks(row, search.texts, candidates, search.filt)
        k = config.keyword.rrf_k
        fused = []
        for by_vector, by_words in zip(vector_rids.tolist(), keyword_hits, strict=True):
            rankings = [[r for r in by_vector if r >= 0], [r for r, _ in by_words]]
            best = reciprocal_rank_fusion(rankings, k, search.n_results)
            fused.append([(r, fused_distance(score, k, len(rankings))) for r, score in best])
        return fused

    def _keyword_ranks(
        self, row: CollectionRow, texts: list[str], limit: int, filt: Filter | None
    ) -> list[list[tuple[int, float]]]:
        try:
            return self.store.keyword_search(row.id, texts, limit, filt)
        except sqlite3.OperationalError as exc:
            if "no such table: keyword_" not in str(exc):
                raise
            # Another process disabled the index after this one read the configuration.
            raise InvalidArgumentError(
                f"collection {row.name!r} has no keyword index any more (it was disabled)"
            ) from exc

    def _keyword_ready(self, collection_id: str) -> bool:
        """Whether the keyword index exists, built by this process's segmenter (checked
        once per process; another segmenter's index is rebuilt, see storage/keyword.py)."""
        if collection_id in self._keyword_checked:
            return True
        ready = self.store.keyword_ready(collection_id)
        if ready:
            self._keyword_checked.add(collection_id)
        return ready

    def _for_query(
        self, collection_id: str
    ) -> tuple[CollectionRow, CollectionConfiguration, _IndexSlot | None]:
        """The collection's row, configuration and synced index. When no other connection
        has committed since the last query, the cached row and configuration are current
        (this process's own changes reset them), which spares two queries per search."""
        slot = self._slots.get(collection_id)
        if (
            slot is not None
            and slot.row is not None
            and slot.config is not None
            and not slot.stale
            and self.store.data_version() == slot.data_version
        ):
            return slot.row, slot.config, slot
        row = self.store.get_collection_by_id(collection_id)
        config = CollectionConfiguration.from_json(row.configuration)
        slot = self._synced(collection_id, row)
        if slot is not None:
            slot.row, slot.config = row, config
        return row, config, slot

    def build_index(self, collection_id: str) -> None:
        """Finish the ANN index now, and the filtered views asked for (both are otherwise
        built in the background)."""
        while True:
            with self.lock:
                row = self.store.get_collection_by_id(collection_id)
                slot = self._synced(collection_id, row)
                if slot is None:
                    return
                if not self._index_step(slot, row, batch=10_000):
                    self._save(collection_id)
                    break
        while True:
            with self.lock:
                wanted = self._next_view(collection_id)
                if wanted is None:
                    if self._closed or not self._plans.building(collection_id):
                        return
                    # The builder thread's build, to its end (the bound only guards
                    # against a build cancelled by close()).
                    self._view_built.wait(timeout=1.0)
                    continue
            self._build_view(*wanted)

    # -- the index cache -------------------------------------------------------------------

    def _synced(self, collection_id: str, row: CollectionRow) -> _IndexSlot | None:
        """The collection's index, caught up with every committed write."""
        slot = self._slots.get(collection_id)
        if slot is None:
            if row.dimension is None:
                return None
            slot = _IndexSlot(self._load_index(row))
            self._slots[collection_id] = slot
        version = self.store.data_version()
        if slot.stale or version != slot.data_version:
            self._catch_up(slot.index, row)
            slot.stale = False
            slot.data_version = version
        return slot

    def _catch_up(self, index: CollectionIndex, row: CollectionRow) -> None:
        """Apply what other connections committed, read in one transaction so that the
        seq, the deletion-log floor, the new vectors and the deletions agree."""
        assert row.dimension is not None
        with self.store.read_transaction():
            seq, log_floor = self.store.seq_of(row.id)
            if seq == index.seq:
                return
            if index.seq < log_floor:
                # The deletions we would need were pruned: start again from the store.
                index = CollectionIndex(index.dim, index.metric, index.cfg)
                self._slots[row.id].index = index
            rids, vectors, ids = self.store.vectors_after(row.id, index.max_rid, row.dimension)
            deleted = self.store.deletions_after(row.id, index.seq)
        index.apply(rids, vectors, ids, deleted, seq)
        self._plans.forget(row.id)

    def _load_index(self, row: CollectionRow) -> CollectionIndex:
        assert row.dimension is not None
        config = CollectionConfiguration.from_json(row.configuration)
        if self.root is not None:
            path = self._snapshot_path(row.id)
            if path.exists():
                try:
                    with Snapshot(path) as snapshot:
                        header = snapshot.fields
                        if header["dim"] != row.dimension or header["metric"] != config.metric:
                            raise SnapshotError("dimension or metric differs from the collection's")
                        if int(header["seq"]) < row.log_floor:
                            raise SnapshotError("older than the deletion log")
                        index = CollectionIndex.from_snapshot(config.index, snapshot)
                    index.dirty = False
                    if index.main is not None and index.target_kind() != index.main.kind:
                        index.reconfigure(config.index, self._loader(row))
                    return index
                except (SnapshotError, ValueError, KeyError, RuntimeError) as exc:
                    log.warning(
                        "index snapshot of collection %r is unusable (%s); rebuilding it from SQLite",
                        row.name,
                        exc,
                    )
            elif row.log_floor > 0:
                # A snapshot was written once (saving sets the floor), so it was removed.
                log.warning(
                    "index snapshot of collection %r is missing; rebuilding it from SQLite",
                    row.name,
                )
        return CollectionIndex(row.dimension, config.metric, config.index)

    def _loader(self, row: CollectionRow) -> Any:
        dimension = row.dimension
        assert dimension is not None

        def load(rids: Rids) -> Vectors:
            return self.store.vectors_of([int(r) for r in rids], dimension)

        return load

    def _plans_for(
        self, collection_id: str, index: CollectionIndex, filt: Filter
    ) -> list[PartPlan]:
        key = (collection_id, filt)
        plans = self._plans.get(key, index.version)
        if plans is None:
            matches = self._matching_rids(collection_id, index, filt)
            row = self.store.get_collection_by_id(collection_id)
            plans = index.plan(matches, self._loader(row))
            if _names_ids(filt):
                return plans  # `query(ids=...)` names records for one query: not cached
            self._plans.resize(self._plan_budget())
            self._plans.put(key, index.version, plans)
        if self._plans.has_requests:  # a view is wanted: the indexer hands it to the builder
            self._wake_indexer()
        return plans

    def _plan_budget(self) -> int:
        """Bytes the plan cache may hold: the setting, or twice the open collections'
        vectors within the floor and the ceiling (a cache much larger than the data it
        serves buys little)."""
        if self.settings.plan_cache_mb is not None:
            return int(self.settings.plan_cache_mb * 1024 * 1024)
        data = sum(s.index.live_count * s.index.dim * 4 for s in self._slots.values())
        return min(PLAN_CACHE_CEILING, max(PLAN_CACHE_FLOOR, 2 * data))

    def _matching_rids(self, collection_id: str, index: CollectionIndex, filt: Filter) -> Rids:
        """The rids of the collection's records that match `filt` (the plan's first step)."""
        if index.live_count * SHARE_FOR_RID_SELECT >= self.store.rids_allocated():
            # The collection holds a good share of the store: reading the matching rids
            # from the metadata index, whatever their collection, beats scanning the
            # collection's records; other collections' rids find no position in this
            # index, and plan() drops them.
            found = self.store.indexed_rids(filt, index.min_rid, index.max_rid)
            if found is not None:
                return found
        return self.store.matching_rids(collection_id, filt)

    # -- filtered views ----------------------------------------------------------------------

    def plan_cache_stats(self) -> PlanCacheStats:
        with self.lock:
            return self._plans.stats()

    def _next_view(
        self, collection_id: str | None = None
    ) -> tuple[ViewRequest, Callable[[], VectorIndex]] | None:
        """The next view to build and the job that builds it (caller holds the lock)."""
        while (request := self._plans.next_request(collection_id)) is not None:
            slot = self._slots.get(request.key[0])
            if slot is not None and slot.index.version == request.version:
                return request, slot.index.view_job(request.plan)
            self._plans.finish(request, None)  # its index moved on: nothing to build
        return None

    def _build_view(self, request: ViewRequest, job: Callable[[], VectorIndex]) -> None:
        """Build a view without the lock (queries go on meanwhile), then attach it if its
        plan is still current."""
        view = None
        try:
            view = job()
        finally:
            with self.lock:
                self._plans.finish(request, view)
                self._view_built.notify_all()

    # -- snapshots ---------------------------------------------------------------------------

    def _index_dir(self, collection_id: str) -> Path:
        assert self.root is not None
        return self.root / "indexes" / collection_id

    def _snapshot_path(self, collection_id: str) -> Path:
        return self._index_dir(collection_id) / "index.hidx"

    def _save(self, collection_id: str) -> None:
        """Write the collection's index snapshot if it changed, then prune the deletion
        log up to the seq the snapshot covers."""
        slot = self._slots.get(collection_id)
        if self.root is None or slot is None or not slot.index.dirty:
            return
        header, arrays = slot.index.to_arrays()
        write_snapshot(self._snapshot_path(collection_id), header, arrays)
        slot.index.dirty = False
        slot.last_saved = time.monotonic()
        self.store.prune_deletions(collection_id, int(header["seq"]))

    # -- background indexing ---------------------------------------------------------------

    def _wake_indexer(self) -> None:
        if self._indexer is not None:
            self._indexer.wake()

    def _index_some(self) -> bool:
        """One step of background work; True if there may be more. A view asked for is
        handed to the view builder (built here when there is none)."""
        if self._index_step_due():
            return True
        with self.lock:
            wanted = None if self._closed else self._next_view()
        if wanted is None:
            return False
        if self._view_builder is None:
            self._build_view(*wanted)
        else:
            self._view_builder.submit(self._build_view, *wanted)
        return True

    def _index_step_due(self) -> bool:
        """Index or compact a collection that is due, else save snapshots that are; True
        if a step ran."""
        with self.lock:
            if self._closed:
                return False
            now = time.monotonic()
            for collection_id, slot in list(self._slots.items()):
                index = slot.index
                if not (index.pending() or index.needs_compaction()):
                    continue
                if not self._indexing_due(slot, now):
                    continue
                try:
                    row = self.store.get_collection_by_id(collection_id)
                except NotFoundError:
                    self._slots.pop(collection_id, None)
                    continue
                slot = self._synced(collection_id, row) or slot
                self._index_step(slot, row, batch=INDEX_STEP)
                if not slot.index.pending():
                    self._save(collection_id)
                return True
            for collection_id, slot in list(self._slots.items()):
                if slot.index.dirty and now - slot.last_saved > self.settings.snapshot_interval:
                    self._save(collection_id)
        return False

    def _index_step(self, slot: _IndexSlot, row: CollectionRow, batch: int) -> int:
        """Compact the ANN part if tombstones call for it (giving SQLite's free pages back
        to the file system), then move up to `batch` vectors into it; returns how many."""
        version = slot.index.version
        if slot.index.needs_compaction():
            slot.index.compact(self._loader(row))
            self.store.reclaim_space()
        moved = slot.index.index_step(self._loader(row), batch=batch)
        if slot.index.version != version:
            self._plans.forget(row.id)  # stale now: free their memory
        return moved

    def _indexing_due(self, slot: _IndexSlot, now: float) -> bool:
        """Index once writes pause, so that a bulk load is not slowed by the indexer
        taking the lock between its batches; but never let the exact tail grow past
        `max_unindexed`, where exact scans would get slow."""
        quiet = now - slot.last_write >= self.settings.index_delay
        return quiet or slot.index.tail.live_count >= self.settings.max_unindexed

    def _next_indexing_in(self) -> float:
        """Seconds until a collection waiting for writes to pause becomes due."""
        with self.lock:
            waits = [
                slot.last_write + self.settings.index_delay - time.monotonic()
                for slot in self._slots.values()
                if slot.index.pending() or slot.index.needs_compaction()
            ]
        return max(min(waits), 0.01) if waits else self.settings.snapshot_interval


@dataclass(frozen=True)
class _Search:
    """What one `query` call asks for (see `Backend.query`)."""

    mode: QueryMode
    embeddings: Vectors | None
    texts: list[str] | None
    n_results: int
    filt: Filter | None


class _Indexer:
    """The background thread that moves tail vectors into ANN indexes, one small step at
    a time, and writes snapshots when a collection's indexing is done."""

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self._wakeup = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="haima-indexer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        with self._wakeup:
            self._wakeup.notify()

    def stop(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                if self._stopping:
                    return
            pause = None
            try:
                if self._backend._index_some():
                    continue
                pause = self._backend._next_indexing_in()
            except Exception:  # the query path stays exact; retry later, not in a loop
                log.exception("background indexing failed")
                pause = self._backend.settings.snapshot_interval
            with self._wakeup:
                if self._stopping:
                    return
                self._wakeup.wait(timeout=pause)


def _yield_to_queries() -> None:
    """Run the calling thread at the lowest CPU priority, so that queries take a core
    from it at once: on 2 cores, exact scans (two BLAS threads) ran 3-5× slower beside a
    view being built at equal priority. Only for work done without the lock, which would
    otherwise keep queries waiting on a starved thread. Linux only: elsewhere priority
    is per process, and the process's own is left alone."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):  # not permitted here: the normal priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _texts_of(
    early: EarlyTexts,
    given: Sequence[str | None] | None,
    positions: Sequence[int],
    documents: Sequence[str | None],
) -> list[str | None]:
    """Segmented `documents`, documents[j] being that of the call's record positions[j]:
    a document given in the call comes from the early segmentation; one kept from the
    stored record (an upsert or update that changes only the embedding) is cut now."""
    done = early.result() if early is not None else None
    out: list[str | None] = [None] * len(documents)
    todo: list[int] = []
    for j, (i, doc) in enumerate(zip(positions, documents, strict=True)):
        if doc is None:
            continue
        if done is not None and given is not None and given[i] is not None:
            out[j] = done[i]
        else:
            todo.append(j)
    words = text.segment_documents([documents[j] or "" for j in todo])
    for j, segmented in zip(todo, words, strict=True):
        out[j] = segmented
    return out


def _padded(rows: list[list[tuple[int, float]]]) -> tuple[npt.NDArray[np.float32], Rids]:
    """Per-query (rid, distance) lists as the (distances, rids) matrices of a vector
    search: rows padded with rid -1, which `_query_result` skips."""
    width = max((len(r) for r in rows), default=0)
    distances = np.zeros((len(rows), width), np.float32)
    rids = np.full((len(rows), width), -1, np.int64)
    for i, hits in enumerate(rows):
        if hits:
            rids[i, : len(hits)] = [rid for rid, _ in hits]
            distances[i, : len(hits)] = [d for _, d in hits]
    return distances, rids


def _names_ids(filt: Filter) -> bool:
    """Whether `filt` holds an `IdIn` (`combine` puts it at the top level)."""
    return isinstance(filt, IdIn) or (
        isinstance(filt, And) and any(isinstance(c, IdIn) for c in filt.children)
    )


def _parse_filters(where: Where | None, where_document: WhereDocument | None) -> Filter | None:
    """Parse both filters; a filter seen before is not parsed again (queries repeat them).
    The key is the filters' repr, which tells 1 from "1" and 1.0 (JSON would not, and a
    dict key 1 must stay an error)."""
    if where is None and where_document is None:
        return None
    try:
        key = repr((where, where_document))
    except RecursionError:  # nested far past the parsers' limit, which will say so
        key = ""
    if not key or len(key) > _FILTER_KEY_MAX:  # kept small, so the cache stays small
        return combine(parse_where(where), parse_where_document(where_document))
    with _filters_lock:
        parsed = _filters_seen.get(key, _UNSEEN)
        if parsed is not _UNSEEN:
            _filters_seen.move_to_end(key)
            return parsed  # type: ignore[return-value]
    parsed = combine(parse_where(where), parse_where_document(where_document))
    with _filters_lock:
        _filters_seen[key] = parsed
        if len(_filters_seen) > _FILTERS_KEPT:
            _filters_seen.popitem(last=False)
    return parsed


#: Parsed filters by repr, most recently used last (process-wide: they depend on nothing).
_FILTERS_KEPT = 1024
#: Longer filters (long `$in` lists) are parsed each time: at most ~4 MB are kept.
_FILTER_KEY_MAX = 4096
_filters_seen: OrderedDict[str, Filter | None] = OrderedDict()
_filters_lock = threading.Lock()
_UNSEEN = object()


#: Include fields read from SQLite; without them an answer comes from the index alone.
_RECORD_FIELDS = frozenset({"documents", "metadatas", "embeddings"})


def _ids_result(
    rids: Rids, distances: Any, ids_of: dict[int, str], include: Sequence[IncludeField]
) -> QueryResult:
    """An answer of ids (and distances), from the index's rid → id map."""
    ids: list[list[str]] = []
    dists: list[list[float]] = []
    id_of = ids_of.__getitem__
    for row_rids, row_dist in zip(rids.tolist(), distances.tolist(), strict=True):
        if row_rids and row_rids[-1] == -1:  # -1 pads the end of a short row
            found = row_rids.index(-1)
            row_rids, row_dist = row_rids[:found], row_dist[:found]
        ids.append(list(map(id_of, row_rids)))
        dists.append(row_dist)
    return QueryResult(
        ids=ids,
        embeddings=None,
        documents=None,
        metadatas=None,
        distances=dists if "distances" in include else None,
        uris=None,
        data=None,
        included=list(include),
    )


def _query_result(
    rids: Rids,
    distances: Any,
    records: dict[int, tuple[Any, ...]],
    include: Sequence[IncludeField],
    dimension: int | None,
) -> QueryResult:
    ids: list[list[str]] = []
    docs: list[list[str | None]] = []
    mds: list[list[Any]] = []
    dists: list[list[float]] = []
    embs: list[Vectors] = []
    # Python lists first: iterating NumPy scalars costs more than the rest of this loop.
    for row_rids, row_dist in zip(rids.tolist(), distances.tolist(), strict=True):
        keep = [(r, d) for r, d in zip(row_rids, row_dist, strict=True) if r in records]
        ids.append([records[r][0] for r, _ in keep])
        if "documents" in include:
            docs.append([records[r][1] for r, _ in keep])
        if "metadatas" in include:
            mds.append([decode_metadata(records[r][2]) for r, _ in keep])
        dists.append([d for _, d in keep])
        if "embeddings" in include:
            embs.append(vectors_from_blobs([records[r][3] for r, _ in keep], dimension or 0))
    return QueryResult(
        ids=ids,
        embeddings=embs if "embeddings" in include else None,
        documents=docs if "documents" in include else None,
        metadatas=mds if "metadatas" in include else None,
        distances=dists if "distances" in include else None,
        uris=None,
        data=None,
        included=list(include),
    )
