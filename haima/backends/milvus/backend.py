"""MilvusBackend: the Backend protocol over a Milvus deployment (or milvus-lite), through
the official `pymilvus` client (docs/scale-out.md).

Every Milvus call uses Strong consistency, so a write is visible to the next read of any
client. Haima keeps no state of its own besides a cache of catalog entries: a second
process (or machine) opens the collections as they were made.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from haima._deps import import_optional
from haima.backends.base import CollectionModel, QueryMode
from haima.backends.milvus.catalog import Catalog, CatalogCollection, records_collection_name
from haima.backends.milvus.expressions import (
    DOCUMENT_FIELD,
    ID_FIELD,
    TAGGED_FIELD,
    compile_filter,
    tagged_metadata,
)
from haima.backends.milvus.rows import (
    check_fits,
    exact_nearest,
    fields_for,
    metadata_of,
    vector_matrix,
    write_batches,
)
from haima.backends.milvus.schema import (
    RECORD_FIELDS,
    SEQ_FIELD,
    SPARSE_FIELD,
    TEXT_FIELD,
    VARCHAR_MAX,
    VECTOR_FIELD,
    distance_of,
    index_build_key,
    index_params,
    record_schema,
    search_params,
)
from haima.backends.parsed_filters import parse_filters
from haima.config import CollectionConfiguration, keyword_index_missing
from haima.errors import (
    DimensionMismatchError,
    InvalidArgumentError,
    NotFoundError,
    ResetNotAllowedError,
    ServerUnavailableError,
    UniqueConstraintError,
)
from haima.filters import Filter, IdIn, combine
from haima.index.fusion import convex_fusion, reciprocal_rank_fusion
from haima.index.plan_cache import PlanCacheStats
from haima.settings import Settings
from haima.storage.sqlite import DEFAULT_DATABASE, DEFAULT_TENANT
from haima.types import (
    GetResult,
    IncludeField,
    QueryResult,
    Vectors,
    Where,
    WhereDocument,
)

#: Milvus answers at most this many rows per query or search (its `max_query_result_window`).
MILVUS_WINDOW = 16_384
#: A filtered query whose filter matches at most this many records is answered exactly:
#: their vectors are read and ranked here. An HNSW graph searched under a tight filter
#: can miss neighbours; Milvus guards against it itself (it scans when few records
#: pass), and this makes it certain where it is cheap: reading 1,000 vectors cost a
#: quarter of the query's time on milvus-lite (benchmarks/milvus.py).
EXACT_MATCH_LIMIT = 512
#: How long a filter found to match more than EXACT_MATCH_LIMIT records is believed to
#: (writes through this client end it sooner); and how many such filters are kept.
MATCH_SIZE_TTL = 10.0
_LARGE_FILTERS_KEPT = 4096
#: Catalog entries are read again after this many seconds, so that most calls skip a
#: round trip to Milvus; changes made by other clients (a rename, new search settings, a
#: deleted collection) are seen within it.
CATALOG_TTL = 1.0
#: Hybrid search fuses this many candidates from each side: max(factor × n, floor), as
#: the local engine does.
_HYBRID_FACTOR, _HYBRID_FLOOR = 4, 50


#: gRPC options for milvus-lite: no keepalive pings (see MilvusBackend.__init__).
_LITE_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0}


def _pymilvus() -> Any:
    return import_optional(
        "pymilvus", package="pymilvus", extra="milvus", purpose="the Milvus backend"
    )


class MilvusBackend:
    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        db_name: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        """`uri`: a Milvus server (`http://host:19530`, `https://...` with `token`) or a
        milvus-lite file (`./store.db`). `db_name`: the Milvus database Haima keeps its
        catalog and collections in."""
        self.settings = settings or Settings()
        self.uri = uri
        self._pymilvus = _pymilvus()
        options: dict[str, Any] = {"uri": uri}
        if token:
            options["token"] = token
        if db_name:
            options["db_name"] = db_name
        lite = not uri.startswith(("http://", "https://", "tcp://"))  # a milvus-lite file
        if lite:
            # milvus-lite serves gRPC in this machine with gRPC's default server policy,
            # which answers pymilvus's 10-second keepalive pings on an idle connection
            # with "too many pings" and drops it; a local connection needs none.
            options["grpc_options"] = _LITE_GRPC_OPTIONS
        try:
            self._client = self._pymilvus.MilvusClient(**options)
        except self._pymilvus.exceptions.MilvusException as exc:
            hint = " (a milvus-lite file is open in one process at a time)" if lite else ""
            raise ServerUnavailableError(
                f"uri: cannot reach Milvus at {uri}: {getattr(exc, 'message', exc)}{hint}"
            ) from None
        self._catalog = Catalog(self._pymilvus, self._client)
        self._catalog.put_tenant(DEFAULT_TENANT)
        if DEFAULT_DATABASE not in self._catalog.databases(DEFAULT_TENANT):
            self._catalog.put_database(DEFAULT_TENANT, DEFAULT_DATABASE)
        self._loaded: set[str] = set()
        self._seq_lock = threading.Lock()
        self._last_seq = 0
        #: Catalog entries by collection id, with when they were read (see `_entry`).
        self._entries: dict[str, tuple[float, CatalogCollection]] = {}
        #: (collection id, expression) → (when, version) of filters matching many records.
        self._large_filters: dict[tuple[str, str], tuple[float, int]] = {}
        #: Writes per collection through this backend (`version`).
        self._writes: dict[str, int] = {}
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    def heartbeat(self) -> int:
        return time.time_ns()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    def reset(self) -> None:
        if not self.settings.allow_reset:
            raise ResetNotAllowedError(
                "reset() is disabled; create the client with Settings(allow_reset=True)"
            )
        for collection in self._catalog.all_collections():
            self._drop(collection)
        for tenant in self._catalog.tenants():
            for database in self._catalog.databases(tenant):
                if (tenant, database) != (DEFAULT_TENANT, DEFAULT_DATABASE):
                    self._catalog.delete_database(tenant, database)
            if tenant != DEFAULT_TENANT:
                self._catalog.delete_tenant(tenant)

    # -- tenants and databases -------------------------------------------------------------

    def create_tenant(self, name: str) -> None:
        if self._catalog.has_tenant(name):
            raise UniqueConstraintError(f"tenant {name!r} already exists")
        self._catalog.put_tenant(name)

    def get_tenant(self, name: str) -> str:
        if not self._catalog.has_tenant(name):
            raise NotFoundError(f"tenant {name!r} does not exist")
        return name

    def create_database(self, tenant: str, name: str) -> None:
        if name in self.list_databases(tenant):
            raise UniqueConstraintError(f"database {name!r} already exists in tenant {tenant!r}")
        self._catalog.put_database(tenant, name)

    def get_database(self, tenant: str, name: str) -> str:
        if name not in self.list_databases(tenant):
            raise NotFoundError(f"database {name!r} does not exist in tenant {tenant!r}")
        return name

    def list_databases(self, tenant: str) -> list[str]:
        self.get_tenant(tenant)
        return self._catalog.databases(tenant)

    def delete_database(self, tenant: str, name: str) -> None:
        self.get_database(tenant, name)
        for collection in self._catalog.collections(tenant, name):
            self._drop(collection)
        self._catalog.delete_database(tenant, name)

    # -- collections ---------------------------------------------------------------------------

    def create_collection(
        self,
        tenant: str,
        database: str,
        name: str,
        metadata: dict[str, Any] | None,
        configuration: dict[str, Any],
        get_or_create: bool,
    ) -> CollectionModel:
        self.get_database(tenant, database)
        existing = self._catalog.collections(tenant, database, name)
        if existing:
            if get_or_create:
                return existing[0].model()
            raise UniqueConstraintError(f"collection {name!r} already exists")
        collection = CatalogCollection(
            id=str(uuid.uuid4()),
            tenant=tenant,
            database=database,
            name=name,
            metadata=metadata,
            configuration=configuration,
            dimension=None,
            created=time.time_ns(),
        )
        # The Milvus collection is made by the first write, which fixes the dimension.
        self._put(collection)
        return collection.model()

    def get_collection(self, tenant: str, database: str, name: str) -> CollectionModel:
        self.get_database(tenant, database)
        found = self._catalog.collections(tenant, database, name)
        if not found:
            raise NotFoundError(f"collection {name!r} does not exist")
        return found[0].model()

    def get_collection_by_id(self, collection_id: str) -> CollectionModel:
        return self._entry(collection_id).model()

    def list_collections(
        self, tenant: str, database: str, limit: int | None, offset: int | None
    ) -> list[CollectionModel]:
        self.get_database(tenant, database)
        models = [c.model() for c in self._catalog.collections(tenant, database)]
        start = offset or 0
        return models[start : start + limit if limit is not None else None]

    def count_collections(self, tenant: str, database: str) -> int:
        self.get_database(tenant, database)
        return len(self._catalog.collections(tenant, database))

    def delete_collection(self, tenant: str, database: str, name: str) -> None:
        self.get_database(tenant, database)
        found = self._catalog.collections(tenant, database, name)
        if not found:
            raise NotFoundError(f"collection {name!r} does not exist")
        self._drop(found[0])

    def _drop(self, collection: CatalogCollection) -> None:
        if self._client.has_collection(collection.milvus_name):
            self._client.drop_collection(collection.milvus_name)
        self._loaded.discard(collection.milvus_name)
        self._catalog.delete_collection(collection.id)
        self._entries.pop(collection.id, None)

    def modify_collection(
        self,
        collection_id: str,
        name: str | None,
        metadata: dict[str, Any] | None,
        configuration: dict[str, Any] | None,
    ) -> CollectionModel:
        current = self._entry(collection_id)
        renamed = name is not None and name != current.name
        if renamed and self._catalog.collections(current.tenant, current.database, name or ""):
            raise UniqueConstraintError(f"collection {name!r} already exists")
        new = dataclasses.replace(
            current,
            name=name if name is not None else current.name,
            metadata=metadata if metadata is not None else current.metadata,
            configuration=configuration if configuration is not None else current.configuration,
        )
        if configuration is not None and self._exists(current):
            new = self._reconfigure(current, new)
        self._put(new)
        return new.model()

    def _reconfigure(self, old: CatalogCollection, new: CatalogCollection) -> CatalogCollection:
        """Apply a changed configuration to an existing Milvus collection: new index
        settings rebuild the index; turning keyword search on or off copies the records
        into a Milvus collection of the new schema (the BM25 field is part of it); search
        parameters need nothing. Returns `new` with the Milvus collection it now uses."""
        before = CollectionConfiguration.from_json(old.configuration)
        after = CollectionConfiguration.from_json(new.configuration)
        if before.keyword.enabled != after.keyword.enabled:
            return self._copy_into_new_schema(new, after)
        if index_build_key(before) != index_build_key(after):
            name = old.milvus_name
            self._client.release_collection(name)
            self._client.drop_index(name, VECTOR_FIELD)
            self._client.create_index(name, index_params(self._client, after, False))
            self._client.load_collection(name)
        return new

    def _copy_into_new_schema(
        self, collection: CatalogCollection, config: CollectionConfiguration
    ) -> CatalogCollection:
        """The records copied into a fresh Milvus collection made for `config`; the catalog
        switches to it once the copy is complete, so an interruption leaves the old one in
        use (and the partial copy is dropped by the next attempt)."""
        keyword = config.keyword.enabled
        assert collection.dimension is not None  # the Milvus collection exists
        target = f"{records_collection_name(collection.id)}_{time.time_ns()}"
        self._create_records_collection(target, collection.dimension, config)
        fields = [*RECORD_FIELDS, VECTOR_FIELD]
        iterator = self._client.query_iterator(
            collection.milvus_name, batch_size=2048, filter="", output_fields=fields
        )
        try:
            while batch := iterator.next():
                rows = [{k: row[k] for k in fields} for row in batch]
                if keyword:
                    for row in rows:
                        row[TEXT_FIELD] = row[DOCUMENT_FIELD] or ""
                for part in write_batches(rows):
                    self._client.insert(target, part)
        finally:
            iterator.close()
        self._client.load_collection(target)
        moved = dataclasses.replace(collection, milvus_name=target)
        self._put(moved)
        self._client.drop_collection(collection.milvus_name)
        self._loaded.discard(collection.milvus_name)
        self._loaded.add(target)
        return moved

    def _entry(self, collection_id: str) -> CatalogCollection:
        """The collection's catalog entry, read again once CATALOG_TTL has passed."""
        now = time.monotonic()
        cached = self._entries.get(collection_id)
        if cached is not None and now - cached[0] < CATALOG_TTL:
            return cached[1]
        entry = self._catalog.collection_by_id(collection_id)
        if entry is None:
            self._entries.pop(collection_id, None)
            raise NotFoundError(f"collection {collection_id} does not exist")
        self._entries[collection_id] = (now, entry)
        return entry

    def _put(self, entry: CatalogCollection) -> None:
        self._catalog.put_collection(entry)
        self._entries[entry.id] = (time.monotonic(), entry)

    def _exists(self, collection: CatalogCollection) -> bool:
        """Whether the collection's Milvus collection exists (made by its first write),
        loaded for searching."""
        name = collection.milvus_name
        if name in self._loaded:
            return True
        if not self._client.has_collection(name):
            return False
        self._client.load_collection(name)
        self._loaded.add(name)
        return True

    def _create_records_collection(
        self, name: str, dimension: int, config: CollectionConfiguration
    ) -> None:
        keyword = config.keyword.enabled
        try:
            self._client.create_collection(
                name,
                schema=record_schema(self._pymilvus, self._client, dimension, keyword),
                index_params=index_params(self._client, config, keyword),
                consistency_level="Strong",
            )
        except self._pymilvus.exceptions.MilvusException as exc:
            if not keyword:
                raise
            raise InvalidArgumentError(
                "configuration.keyword.enabled: this Milvus deployment could not make the "
                "BM25 field keyword search needs (full-text search came with Milvus 2.5; "
                f"milvus-lite needs `pip install jieba`): {getattr(exc, 'message', exc)}"
            ) from None

    def _ensure_created(self, collection: CatalogCollection, dimension: int) -> CatalogCollection:
        """The collection with its Milvus collection made (on the first write)."""
        if collection.dimension is not None:
            if collection.dimension != dimension:
                raise DimensionMismatchError(
                    f"embeddings: collection {collection.name!r} expects dimension "
                    f"{collection.dimension}, got {dimension}"
                )
            if self._exists(collection):
                return collection
        config = CollectionConfiguration.from_json(collection.configuration)
        name = collection.milvus_name
        if not self._client.has_collection(name):
            self._create_records_collection(name, dimension, config)
        self._client.load_collection(name)
        self._loaded.add(name)
        made = dataclasses.replace(collection, dimension=dimension)
        self._put(made)
        return made

    # -- writes --------------------------------------------------------------------------------

    def _next_seqs(self, count: int) -> list[int]:
        """Insertion sequence numbers: nanoseconds, increasing within this process (and,
        clocks permitting, across processes): `get` answers in this order."""
        with self._seq_lock:
            start = max(time.time_ns(), self._last_seq + 1)
            self._last_seq = start + count - 1
        return list(range(start, start + count))

    def add(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        collection = self._ensure_created(self._entry(collection_id), embeddings.shape[1])
        # Chroma's rule: an id already stored is skipped, not replaced and not an error.
        stored = set(self._stored(collection, ids, [ID_FIELD]))
        keep = [i for i, record_id in enumerate(ids) if record_id not in stored]
        if not keep:
            return
        rows = self._rows(
            collection,
            [ids[i] for i in keep],
            embeddings[keep],
            [documents[i] for i in keep] if documents is not None else [None] * len(keep),
            [metadatas[i] for i in keep] if metadatas is not None else [None] * len(keep),
            self._next_seqs(len(keep)),
        )
        self._write(collection, rows, upsert=False)

    def upsert(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self._merge(collection_id, ids, embeddings, documents, metadatas, must_exist=False)

    def update(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors | None,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
    ) -> None:
        self._merge(collection_id, ids, embeddings, documents, metadatas, must_exist=True)

    def _merge(
        self,
        collection_id: str,
        ids: list[str],
        embeddings: Vectors | None,
        documents: Sequence[str | None] | None,
        metadatas: Sequence[dict[str, Any] | None] | None,
        must_exist: bool,
    ) -> None:
        """Update (must_exist) or upsert: given fields replace, metadata keys merge (a None
        value removes a key); a new embedding moves the record to the end of `get`'s order,
        as in the local engine."""
        collection = self._entry(collection_id)
        if embeddings is not None:
            collection = self._ensure_created(collection, embeddings.shape[1])
        fields = [*RECORD_FIELDS, VECTOR_FIELD]
        old = self._stored(collection, ids, fields)  # {} before the first write
        missing = [i for i in ids if i not in old]
        if must_exist and missing:
            shown = ", ".join(repr(i) for i in missing[:5])
            raise NotFoundError(f"ids: {len(missing)} do not exist in the collection ({shown})")
        new_seqs = iter(self._next_seqs(len(ids)))
        out_ids, vectors, docs, mds, seqs = [], [], [], [], []
        for i, record_id in enumerate(ids):
            before = old.get(record_id)
            change = metadatas[i] if metadatas is not None else None
            doc = documents[i] if documents is not None else None
            seq = next(new_seqs)
            if before is None:
                md = {k: v for k, v in (change or {}).items() if v is not None}
                assert embeddings is not None  # an upsert of a new record has its vector
                vector = embeddings[i]
            else:
                md = dict(metadata_of(before) or {})
                for key, value in (change or {}).items():
                    if value is None:
                        md.pop(key, None)
                    else:
                        md[key] = value
                doc = doc if doc is not None else before[DOCUMENT_FIELD]
                if embeddings is None:
                    vector = np.asarray(before[VECTOR_FIELD], np.float32)
                    seq = int(before[SEQ_FIELD])
                else:
                    vector = embeddings[i]
            out_ids.append(record_id)
            vectors.append(vector)
            docs.append(doc)
            mds.append(md or None)
            seqs.append(seq)
        rows = self._rows(collection, out_ids, np.stack(vectors), docs, mds, seqs)
        self._write(collection, rows, upsert=True)

    def _rows(
        self,
        collection: CatalogCollection,
        ids: list[str],
        vectors: Vectors,
        documents: Sequence[str | None],
        metadatas: Sequence[dict[str, Any] | None],
        seqs: list[int],
    ) -> list[dict[str, Any]]:
        keyword = CollectionConfiguration.from_json(collection.configuration).keyword.enabled
        rows = []
        for i, record_id in enumerate(ids):
            md = metadatas[i] or None
            tagged = tagged_metadata(md)
            document = documents[i]
            check_fits(record_id, "ids", i)
            check_fits(document, "documents", i)
            if md and len(repr(tagged)) * 4 > VARCHAR_MAX:  # JSON text is only made if long
                check_fits(json.dumps(tagged, ensure_ascii=False), "metadatas", i)
            row: dict[str, Any] = {
                ID_FIELD: record_id,
                VECTOR_FIELD: vectors[i].tolist(),
                DOCUMENT_FIELD: document,
                TAGGED_FIELD: tagged,
                SEQ_FIELD: seqs[i],
            }
            if keyword:
                row[TEXT_FIELD] = document or ""
            rows.append(row)
        return rows

    def _write(
        self, collection: CatalogCollection, rows: list[dict[str, Any]], upsert: bool
    ) -> None:
        """Rows written in batches within Milvus's message size."""
        write = self._client.upsert if upsert else self._client.insert
        for batch in write_batches(rows):
            write(collection.milvus_name, batch)
        self._wrote(collection.id)

    def _wrote(self, collection_id: str) -> None:
        with self._seq_lock:
            self._writes[collection_id] = self._writes.get(collection_id, 0) + 1

    def delete(
        self,
        collection_id: str,
        ids: list[str] | None,
        where: Where | None,
        where_document: WhereDocument | None,
    ) -> None:
        collection = self._entry(collection_id)
        filt = parse_filters(where, where_document)
        if ids is not None:
            filt = combine(IdIn(tuple(ids)), filt)
        expression = compile_filter(filt) if filt is not None else f"{SEQ_FIELD} >= 0"
        if not self._exists(collection):
            return
        self._client.delete(collection.milvus_name, filter=expression)
        self._wrote(collection.id)

    # -- reads ---------------------------------------------------------------------------------

    def count(self, collection_id: str) -> int:
        collection = self._entry(collection_id)
        if not self._exists(collection):
            return 0
        rows = self._client.query(collection.milvus_name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _stored(
        self, collection: CatalogCollection, ids: list[str], fields: list[str]
    ) -> dict[str, dict[str, Any]]:
        """The stored records among `ids`, by id."""
        found: dict[str, dict[str, Any]] = {}
        if not self._exists(collection):
            return found
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            expression = compile_filter(IdIn(tuple(chunk)))
            for row in self._client.query(
                collection.milvus_name, filter=expression, output_fields=fields
            ):
                found[row[ID_FIELD]] = row
        return found

    def _matching(self, collection: CatalogCollection, filt: Filter | None) -> list[dict[str, Any]]:
        """(id, seq) of every record `filt` matches, past Milvus's query window."""
        expression = compile_filter(filt) if filt is not None else ""
        fields = [ID_FIELD, SEQ_FIELD]
        first: list[dict[str, Any]] = self._client.query(
            collection.milvus_name, filter=expression, output_fields=fields, limit=MILVUS_WINDOW
        )
        if len(first) < MILVUS_WINDOW:
            return first
        rows: list[dict[str, Any]] = []
        iterator = self._client.query_iterator(
            collection.milvus_name, batch_size=4096, filter=expression, output_fields=fields
        )
        try:
            while batch := iterator.next():
                rows.extend(batch)
        finally:
            iterator.close()
        return rows

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
        collection = self._entry(collection_id)
        filt = parse_filters(where, where_document)
        if ids is not None:
            filt = combine(IdIn(tuple(ids)), filt)
        with_vectors = "embeddings" in include
        records: list[dict[str, Any]] = []
        if self._exists(collection) and limit != 0:
            # Milvus has no order but its primary key's: the page is chosen here, by
            # insertion order, then its records are read.
            keys = sorted(self._matching(collection, filt), key=lambda r: r[SEQ_FIELD])
            page = [
                r[ID_FIELD] for r in keys[offset or 0 :][: limit if limit is not None else None]
            ]
            fields = [*RECORD_FIELDS, VECTOR_FIELD] if with_vectors else RECORD_FIELDS
            found = self._stored(collection, page, fields)
            records = [found[i] for i in page if i in found]
        dimension = collection.dimension or 0
        return GetResult(
            ids=[r[ID_FIELD] for r in records],
            embeddings=vector_matrix([r[VECTOR_FIELD] for r in records], dimension)
            if with_vectors
            else None,
            documents=[r[DOCUMENT_FIELD] for r in records] if "documents" in include else None,
            metadatas=[metadata_of(r) for r in records] if "metadatas" in include else None,
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
        collection = self._entry(collection_id)
        config = CollectionConfiguration.from_json(collection.configuration)
        filt = parse_filters(where, where_document)
        if ids is not None:
            filt = combine(IdIn(tuple(ids)), filt)
        if mode != "vector" and not config.keyword.enabled:
            raise keyword_index_missing(mode, collection.name)
        dimension = collection.dimension
        if query_embeddings is not None and dimension not in (None, query_embeddings.shape[1]):
            raise DimensionMismatchError(
                f"query_embeddings: collection {collection.name!r} expects dimension "
                f"{collection.dimension}, got {query_embeddings.shape[1]}"
            )
        queries = (
            len(query_texts)
            if mode == "keyword" and query_texts is not None
            else (len(query_embeddings) if query_embeddings is not None else 0)
        )
        hits: list[list[tuple[str, float]]] = [[] for _ in range(queries)]
        rows: dict[str, dict[str, Any]] = {}  # fields of hits read along with them
        if self._exists(collection) and n_results > 0 and queries:
            n = min(n_results, MILVUS_WINDOW)
            expression = compile_filter(filt) if filt is not None else ""
            if mode == "vector":
                assert query_embeddings is not None
                hits = self._vector_hits(
                    collection, config, query_embeddings, n, expression, rows, fields_for(include)
                )
            elif mode == "keyword":
                assert query_texts is not None
                hits = self._keyword_hits(collection, query_texts, n, expression)
            else:
                assert query_embeddings is not None and query_texts is not None
                hits = self._hybrid_hits(
                    collection, config, query_embeddings, query_texts, n, expression
                )
        return self._query_result(collection, hits, include, rows)

    def _vector_hits(
        self,
        collection: CatalogCollection,
        config: CollectionConfiguration,
        vectors: Vectors,
        n: int,
        expression: str,
        rows: dict[str, dict[str, Any]] | None = None,
        fields: Sequence[str] = (ID_FIELD,),
    ) -> list[list[tuple[str, float]]]:
        """The `n` nearest records to each vector; with `rows`, their `fields` are put
        there as the search returns them (saving a second read for the answer)."""
        if expression and config.index.type != "flat":
            few = self._few_matches(collection, expression)
            if few is not None:
                return [exact_nearest(config.metric, few[0], few[1], v, n) for v in vectors]
        answers = self._client.search(
            collection.milvus_name,
            data=vectors.tolist(),
            anns_field=VECTOR_FIELD,
            limit=n,
            filter=expression,
            search_params=search_params(config),
            output_fields=list(fields),
        )
        if rows is not None:
            for answer in answers:
                for hit in answer:
                    rows[hit["id"]] = {ID_FIELD: hit["id"], **hit["entity"]}
        return [
            [(h["id"], distance_of(config.metric, h["distance"])) for h in answer]
            for answer in answers
        ]

    def _few_matches(
        self, collection: CatalogCollection, expression: str
    ) -> tuple[list[str], Vectors] | None:
        """The ids and vectors of the records `expression` matches, if they are few
        enough to rank exactly (see EXACT_MATCH_LIMIT); else None. A filter found to match
        more is remembered for MATCH_SIZE_TTL (or until this client writes), so that its
        next queries go straight to Milvus's search."""
        key = (collection.id, expression)
        now = time.monotonic()
        version = self.version(collection.id)
        large = self._large_filters.get(key)
        if large is not None and now - large[0] < MATCH_SIZE_TTL and large[1] == version:
            return None
        rows = self._client.query(
            collection.milvus_name,
            filter=expression,
            output_fields=[ID_FIELD, VECTOR_FIELD],
            limit=EXACT_MATCH_LIMIT + 1,
        )
        if len(rows) > EXACT_MATCH_LIMIT:
            if len(self._large_filters) >= _LARGE_FILTERS_KEPT:
                self._large_filters.clear()
            self._large_filters[key] = (now, version)
            return None
        ids = [r[ID_FIELD] for r in rows]
        return ids, vector_matrix([r[VECTOR_FIELD] for r in rows], collection.dimension or 0)

    def _keyword_hits(
        self, collection: CatalogCollection, texts: list[str], n: int, expression: str
    ) -> list[list[tuple[str, float]]]:
        answers = self._client.search(
            collection.milvus_name,
            data=texts,
            anns_field=SPARSE_FIELD,
            limit=n,
            filter=expression,
            search_params={"metric_type": "BM25"},
            output_fields=[ID_FIELD],
        )
        # BM25 distance: the negated score (≤ 0, lower is better), as the local engine's.
        return [[(h["id"], -abs(float(h["distance"]))) for h in answer] for answer in answers]

    def _hybrid_hits(
        self,
        collection: CatalogCollection,
        config: CollectionConfiguration,
        vectors: Vectors,
        texts: list[str],
        n: int,
        expression: str,
    ) -> list[list[tuple[str, float]]]:
        candidates = min(max(_HYBRID_FACTOR * n, _HYBRID_FLOOR), MILVUS_WINDOW)
        vector_side = self._vector_hits(collection, config, vectors, candidates, expression)
        keyword_side = self._keyword_hits(collection, texts, candidates, expression)
        fused: list[list[tuple[str, float]]] = []
        for kw, vec in zip(keyword_side, vector_side, strict=True):
            # Fusion ranks by integer keys (ties to the smaller: the first seen here).
            names: dict[str, int] = {}
            for record_id, _ in [*kw, *vec]:
                names.setdefault(record_id, len(names))
            back = {key: name for name, key in names.items()}
            if config.keyword.fusion == "rrf":
                ranked = reciprocal_rank_fusion(
                    [[names[i] for i, _ in kw], [names[i] for i, _ in vec]], config.keyword.rrf_k, n
                )
            else:
                ranked = convex_fusion(
                    [(names[i], d) for i, d in kw],
                    [(names[i], d) for i, d in vec],
                    config.keyword.weight,
                    n,
                )
            fused.append([(back[key], distance) for key, distance in ranked])
        return fused

    def _query_result(
        self,
        collection: CatalogCollection,
        hits: list[list[tuple[str, float]]],
        include: Sequence[IncludeField],
        rows: dict[str, dict[str, Any]],
    ) -> QueryResult:
        fields = fields_for(include)
        records = dict(rows)
        if len(fields) > 1:
            every = dict.fromkeys(i for answer in hits for i, _ in answer)
            missing = [i for i in every if i not in records]
            records.update(self._stored(collection, missing, fields) if missing else {})
        dimension = collection.dimension or 0
        return QueryResult(
            ids=[[i for i, _ in answer] for answer in hits],
            embeddings=[
                vector_matrix([records[i][VECTOR_FIELD] for i, _ in answer], dimension)
                for answer in hits
            ]
            if "embeddings" in include
            else None,
            documents=[[records[i][DOCUMENT_FIELD] for i, _ in answer] for answer in hits]
            if "documents" in include
            else None,
            metadatas=[[metadata_of(records[i]) for i, _ in answer] for answer in hits]
            if "metadatas" in include
            else None,
            distances=[[d for _, d in answer] for answer in hits]
            if "distances" in include
            else None,
            uris=None,
            data=None,
            included=list(include),
        )

    # -- what a server shows (console, /metrics) ------------------------------------------------

    def all_databases(self) -> list[tuple[str, str]]:
        return [(t, d) for t in self._catalog.tenants() for d in self._catalog.databases(t)]

    def load_indexes(self) -> None:
        """Nothing: Milvus holds its collections' indexes itself."""

    def index_status(self, collection_id: str) -> dict[str, Any]:
        """The Milvus index as Milvus describes it: its type, rows indexed and pending."""
        collection = self._entry(collection_id)
        if not self._exists(collection):
            return {"state": "empty", "ann": None, "snapshot_bytes": 0}
        info = self._client.describe_index(collection.milvus_name, VECTOR_FIELD)
        pending = int(info.get("pending_index_rows", 0))
        return {
            "state": "building" if pending else "ready",
            "ann": str(info.get("index_type", "")).lower() or None,
            "indexed": int(info.get("indexed_rows", 0)),
            "exact": 0,
            "pending": pending,
            "snapshot_bytes": 0,  # Milvus keeps its indexes itself
        }

    def version(self, collection_id: str) -> int:
        """Changes with every write through this backend (writes by other clients of the
        Milvus deployment are not seen: the console's caches then lag by their lifetime)."""
        return self._writes.get(collection_id, 0)

    def text_bytes(self, collection_id: str, limit: int) -> tuple[int, int]:
        """(bytes of ids, documents and metadata, rows read) over at most `limit` records."""
        collection = self._entry(collection_id)
        if not self._exists(collection):
            return 0, 0
        rows = self._client.query(
            collection.milvus_name,
            filter="",
            output_fields=[ID_FIELD, DOCUMENT_FIELD, TAGGED_FIELD],
            limit=min(limit, MILVUS_WINDOW),
        )
        summed = sum(
            len(r[ID_FIELD].encode())
            + len((r[DOCUMENT_FIELD] or "").encode())
            + (
                len(json.dumps(r[TAGGED_FIELD], ensure_ascii=False).encode())
                if r[TAGGED_FIELD]
                else 0
            )
            for r in rows
        )
        return summed, len(rows)

    def plan_cache_stats(self) -> PlanCacheStats:
        """Milvus plans its own filtered searches: Haima caches none."""
        return PlanCacheStats(plans=0, views=0, building=0, nbytes=0)

    def build_index(self, collection_id: str) -> None:
        """Milvus builds its indexes itself; this waits until the collection's is done."""
        collection = self._entry(collection_id)
        if self._exists(collection):
            self._client.flush(collection.milvus_name)
