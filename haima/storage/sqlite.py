"""The SQLite store: collections, records, the metadata index, the keyword (BM25) indexes
and the deletion log. One write call is one transaction, whatever its size.

The store knows nothing about FAISS; it hands out rids, vectors and row data.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from haima import deadline
from haima.config import CollectionConfiguration
from haima.errors import NotFoundError, UniqueConstraintError
from haima.filters import Filter
from haima.storage import keyword
from haima.storage._sql import in_chunks
from haima.storage.commits import CommitWatch
from haima.storage.filter_sql import register_sql_functions, rid_select, where_sql
from haima.storage.keyword import KeywordIndex
from haima.storage.rows import (
    CollectionRow,
    FoundRecord,
    RecordRow,
    decode_metadata,
    encode_metadata,
    vectors_from_blobs,
)
from haima.storage.writes import WriteTransaction
from haima.types import Rids as Rids  # re-exported

DEFAULT_TENANT = "default_tenant"
DEFAULT_DATABASE = "default_database"
PAGE_SIZE = 32_768
#: The WAL size from which the local backend's indexer checkpoints it (Store.checkpoint):
#: SQLite's own default, 1,000 pages of 4 KiB, would be a checkpoint every 4 MiB here.
CHECKPOINT_BYTES = 32 * 2**20
#: Past this many pages (256 MiB) a write checkpoints the WAL itself: when no indexer
#: runs (Settings.background_indexing off) or it cannot keep up.
SAFETY_CHECKPOINT_PAGES = 8_192


@functools.lru_cache(maxsize=1024)
def _normalized_configuration(stored: str) -> str:
    """A stored configuration's JSON with the settings added since it was written. Every
    request reads its collection's row, and normalising through the dataclasses cost
    ~50 µs of a 0.5 ms query; the result depends on the text alone."""
    return json.dumps(CollectionConfiguration.from_json(json.loads(stored)).to_json())


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("haima.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Store:
    """One SQLite database (a file in WAL mode, or in memory) behind one connection.

    Calls are serialised with a lock: the connection is shared by the caller's threads
    and the background indexer.
    """

    def __init__(self, path: Path | None, *, synchronous: str = "FULL") -> None:
        self.path = path
        self.lock = threading.RLock()
        target = str(path) if path is not None else ":memory:"
        self.conn = sqlite3.connect(
            target, isolation_level=None, check_same_thread=False, timeout=60.0
        )
        register_sql_functions(self.conn)
        # A statement of a request past its deadline stops ("interrupted") and its
        # transaction rolls back; see haima/deadline.py.
        self.conn.set_progress_handler(deadline.expired, _DEADLINE_CHECK_STEPS)
        self._commits: CommitWatch | None = None
        self._checkpointer: sqlite3.Connection | None = None
        if self._is_new():
            # Both must precede the first write (switching to WAL writes the header).
            # Records carry ~1.5 KB vectors: with 32 KiB pages ingestion ran 3x faster
            # than with the default 4 KiB (measured 26k → 79k rows/s at 384 dims).
            # Incremental auto-vacuum lets deletes return pages to the file system.
            self.conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            self.conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        if path is not None:
            self.conn.execute("PRAGMA journal_mode=WAL")
        # After a checkpoint the WAL file is cut back to 4 MiB: a bulk load otherwise
        # leaves it at its largest size on disk for good.
        self.conn.execute("PRAGMA journal_size_limit=4194304")
        # Writes checkpoint the WAL only past this many pages (a safety net): the local
        # backend's indexer checkpoints from CHECKPOINT_BYTES on, on a connection of its
        # own (`checkpoint`), so that no write holds the lock while the WAL is copied.
        self.conn.execute(f"PRAGMA wal_autocheckpoint={SAFETY_CHECKPOINT_PAGES}")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("PRAGMA temp_store=MEMORY")
        # 16 MiB of page cache: 64 MiB answered queries, gets and ingests no faster
        # (100,000 records; the OS caches the file too) and kept 25 MB more resident.
        self.conn.execute("PRAGMA cache_size=-16384")
        self._migrate()
        if path is not None:
            self._commits = CommitWatch(path)  # WAL mode is on: the -shm file exists
        self._data_version = self.data_version()

    # -- lifecycle -----------------------------------------------------------------

    def _is_new(self) -> bool:
        return int(self.conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]) == 0

    def _migrate(self) -> None:
        with self.lock:
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
            pending = [(n, sql) for n, sql in _migrations() if n > version]
            if not pending:
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while we waited for the lock.
                version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
                for number, sql in pending:
                    if number > version:
                        for statement in _split_sql(sql):
                            self.conn.execute(statement)
                        self.conn.execute(f"PRAGMA user_version={number}")
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self.lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
            self.conn.close()
            if self._commits is not None:
                self._commits.close()  # after the connection: see storage/commits.py

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: the write lock is taken at the start, so two
        processes never interleave a read-modify-write."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[WriteTransaction]:
        """`transaction()` with the write calls of records (see storage/writes.py)."""
        with self.transaction() as conn:
            yield WriteTransaction(conn)

    @contextmanager
    def read_transaction(self) -> Iterator[None]:
        """A read snapshot (BEGIN DEFERRED); joins the transaction already open."""
        with self.lock:
            if self.conn.in_transaction:
                yield
                return
            self.conn.execute("BEGIN")
            try:
                yield
            finally:
                self.conn.execute("COMMIT")

    def data_version(self) -> int:
        """Changes whenever another connection commits (PRAGMA data_version). An
        in-memory database has no other connection; every query asks, so it is spared."""
        if self._commits is None:
            return 0
        header = self._commits.header()
        known = self._commits.unchanged(header)
        if known is not None:
            return known
        with self.lock:
            version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        self._commits.remember(header, version)
        return version

    def changed_elsewhere(self) -> bool:
        version = self.data_version()
        if version != self._data_version:
            self._data_version = version
            return True
        return False

    def wal_bytes(self) -> int:
        """The WAL file's size (0 for an in-memory store)."""
        if self.path is None:
            return 0
        try:
            return os.stat(f"{self.path}-wal").st_size
        except OSError:
            return 0

    def checkpoint(self) -> None:
        """Copy the WAL's committed pages into the database file, on a connection of its
        own and without the store's lock: SQLite's PASSIVE mode waits for no reader and no
        writer, so reads and writes go on meanwhile. For one thread at a time (the local
        backend's indexer). A write that finds the WAL emptied starts it over; its size on
        disk is cut back to the journal size limit then.

        Measured: a commit that checkpointed 32 MiB held the lock for 37 ms instead of 6."""
        if self.path is None:
            return
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=60.0
            )
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def reclaim_space(self) -> None:
        with self.lock:
            # Each step of this pragma frees one page, and `execute` steps a statement
            # without result columns only once; `executescript` runs it to the end.
            self.conn.executescript("PRAGMA incremental_vacuum;")
            if self.path is not None:
                # PASSIVE: copy what no reader still needs, never wait for readers of
                # other processes (TRUNCATE would block on them).
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # -- tenants and databases -------------------------------------------------------

    def create_tenant(self, name: str) -> None:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM tenants WHERE name = ?", (name,)).fetchone():
                raise UniqueConstraintError(f"tenant {name!r} already exists")
            conn.execute("INSERT INTO tenants (name) VALUES (?)", (name,))

    def tenant_exists(self, name: str) -> bool:
        with self.lock:
            return bool(
                self.conn.execute("SELECT 1 FROM tenants WHERE name = ?", (name,)).fetchone()
            )

    def create_database(self, tenant: str, name: str) -> str:
        with self.transaction() as conn:
            if not conn.execute("SELECT 1 FROM tenants WHERE name = ?", (tenant,)).fetchone():
                raise NotFoundError(f"tenant {tenant!r} does not exist")
            if conn.execute(
                "SELECT 1 FROM databases WHERE tenant = ? AND name = ?", (tenant, name)
            ).fetchone():
                raise UniqueConstraintError(
                    f"database {name!r} already exists in tenant {tenant!r}"
                )
            db_id = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO databases (tenant, name, id) VALUES (?, ?, ?)", (tenant, name, db_id)
            )
            return db_id

    def get_database(self, tenant: str, name: str) -> str:
        with self.lock:
            row = self.conn.execute(
                "SELECT id FROM databases WHERE tenant = ? AND name = ?", (tenant, name)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"database {name!r} does not exist in tenant {tenant!r}")
        return str(row[0])

    def list_databases(self, tenant: str) -> list[tuple[str, str]]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT name, id FROM databases WHERE tenant = ? ORDER BY name", (tenant,)
            ).fetchall()
        return [(str(n), str(i)) for n, i in rows]

    def all_databases(self) -> list[tuple[str, str]]:
        """(tenant, name) of every database."""
        with self.lock:
            rows = self.conn.execute("SELECT tenant, name FROM databases").fetchall()
        return [(str(t), str(n)) for t, n in rows]

    def delete_other_tenants(self) -> None:
        """Every tenant but the default one (for `reset`; their databases go first)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM tenants WHERE name != ?", (DEFAULT_TENANT,))

    def delete_database(self, tenant: str, name: str) -> list[str]:
        """Delete a database row; returns the ids of its collections (to delete first)."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM collections WHERE tenant = ? AND database = ?", (tenant, name)
            ).fetchall()
            conn.execute("DELETE FROM databases WHERE tenant = ? AND name = ?", (tenant, name))
        return [str(r[0]) for r in rows]

    # -- collections -------------------------------------------------------------------

    _COLLECTION_COLUMNS = (
        "id, tenant, database, name, metadata, configuration, dimension, seq, log_floor"
    )

    @staticmethod
    def _collection(row: Sequence[Any]) -> CollectionRow:
        return CollectionRow(
            id=row[0],
            tenant=row[1],
            database=row[2],
            name=row[3],
            metadata=decode_metadata(row[4]),
            # Normalised: settings added since the row was written get their defaults.
            configuration=json.loads(_normalized_configuration(row[5])),
            dimension=row[6],
            seq=row[7],
            log_floor=row[8],
        )

    def create_collection(
        self,
        tenant: str,
        database: str,
        name: str,
        metadata: dict[str, Any] | None,
        configuration: dict[str, Any],
        get_or_create: bool,
        *,
        keyword_index: bool = False,
    ) -> tuple[CollectionRow, bool]:
        """Returns the collection and whether it was created now (with a keyword index
        if `keyword_index`)."""
        with self.transaction() as conn:
            self._require_database(conn, tenant, database)
            existing = self._find(conn, tenant, database, name)
            if existing is not None:
                if get_or_create:
                    return existing, False
                raise UniqueConstraintError(f"collection {name!r} already exists")
            collection_id = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO collections (id, tenant, database, name, metadata, configuration,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    collection_id,
                    tenant,
                    database,
                    name,
                    encode_metadata(metadata),
                    json.dumps(configuration),
                    time.time(),
                ),
            )
            if keyword_index:
                keyword.create(conn, collection_id)
            created = self._find(conn, tenant, database, name)
            assert created is not None
            return created, True

    @staticmethod
    def _require_database(conn: sqlite3.Connection, tenant: str, database: str) -> None:
        if not conn.execute(
            "SELECT 1 FROM databases WHERE tenant = ? AND name = ?", (tenant, database)
        ).fetchone():
            raise NotFoundError(f"database {database!r} does not exist in tenant {tenant!r}")

    def _find(
        self, conn: sqlite3.Connection, tenant: str, database: str, name: str
    ) -> CollectionRow | None:
        row = conn.execute(
            f"SELECT {self._COLLECTION_COLUMNS} FROM collections"
            " WHERE tenant = ? AND database = ? AND name = ?",
            (tenant, database, name),
        ).fetchone()
        return None if row is None else self._collection(row)

    def get_collection(self, tenant: str, database: str, name: str) -> CollectionRow:
        with self.lock:
            found = self._find(self.conn, tenant, database, name)
        if found is None:
            raise NotFoundError(f"collection {name!r} does not exist")
        return found

    def get_collection_by_id(self, collection_id: str) -> CollectionRow:
        with self.lock:
            row = self.conn.execute(
                f"SELECT {self._COLLECTION_COLUMNS} FROM collections WHERE id = ?",
                (collection_id,),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"collection {collection_id!r} does not exist (it was deleted)")
        return self._collection(row)

    def list_collections(
        self, tenant: str, database: str, limit: int | None, offset: int | None
    ) -> list[CollectionRow]:
        with self.lock:
            rows = self.conn.execute(
                f"SELECT {self._COLLECTION_COLUMNS} FROM collections"
                " WHERE tenant = ? AND database = ? ORDER BY created_at, name LIMIT ? OFFSET ?",
                (tenant, database, -1 if limit is None else limit, offset or 0),
            ).fetchall()
        return [self._collection(r) for r in rows]

    def count_collections(self, tenant: str, database: str) -> int:
        with self.lock:
            row = self.conn.execute(
                "SELECT count(*) FROM collections WHERE tenant = ? AND database = ?",
                (tenant, database),
            ).fetchone()
        return int(row[0])

    def delete_collection(self, collection_id: str) -> None:
        with self.transaction() as conn:
            keyword.drop(conn, collection_id)
            conn.execute(
                "DELETE FROM metadata_index WHERE rid IN"
                " (SELECT rid FROM records WHERE collection_id = ?)",
                (collection_id,),
            )
            conn.execute(
                "DELETE FROM vectors WHERE rid IN"
                " (SELECT rid FROM records WHERE collection_id = ?)",
                (collection_id,),
            )
            conn.execute("DELETE FROM records WHERE collection_id = ?", (collection_id,))
            conn.execute("DELETE FROM deletions WHERE collection_id = ?", (collection_id,))
            conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    def modify_collection(
        self,
        collection_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        configuration: dict[str, Any] | None = None,
        keyword_index: bool | None = None,
    ) -> CollectionRow:
        """Change what is given; `keyword_index` True builds the collection's keyword
        index over its documents, False drops it, both with the configuration change."""
        with self.transaction() as conn:
            current = conn.execute(
                "SELECT tenant, database FROM collections WHERE id = ?", (collection_id,)
            ).fetchone()
            if current is None:
                raise NotFoundError(f"collection {collection_id!r} does not exist")
            if name is not None:
                clash = self._find(conn, current[0], current[1], name)
                if clash is not None and clash.id != collection_id:
                    raise UniqueConstraintError(f"collection {name!r} already exists")
                conn.execute("UPDATE collections SET name = ? WHERE id = ?", (name, collection_id))
            if metadata is not None:
                conn.execute(
                    "UPDATE collections SET metadata = ? WHERE id = ?",
                    (encode_metadata(metadata), collection_id),
                )
            if configuration is not None:
                conn.execute(
                    "UPDATE collections SET configuration = ? WHERE id = ?",
                    (json.dumps(configuration), collection_id),
                )
            if keyword_index is True:
                keyword.create(conn, collection_id)
            elif keyword_index is False:
                keyword.drop(conn, collection_id)
        return self.get_collection_by_id(collection_id)

    # -- reads -------------------------------------------------------------------------

    def keyword_ready(self, collection_id: str) -> bool:
        """Whether the collection has a keyword index, rebuilt first (in one write
        transaction) if another segmenter built it."""
        with self.lock:
            current = keyword.is_current(self.conn, collection_id)
            if current is False:
                with self.transaction() as conn:
                    return keyword.find(conn, collection_id) is not None
        return current is not None

    def keyword_search(
        self,
        collection_id: str,
        texts: Sequence[str],
        limit: int,
        filt: Filter | None,
    ) -> list[list[tuple[int, float]]]:
        """Per text, (rid, bm25) of the best `limit` matches of `filt`, best first."""
        index = KeywordIndex(keyword.table_name(collection_id))
        condition, params = where_sql(filt) if filt is not None else (None, [])
        with self.lock:
            return [index.search(self.conn, t, limit, condition, params) for t in texts]

    def seq_of(self, collection_id: str) -> tuple[int, int]:
        """(seq, log_floor) of a collection as committed now."""
        with self.lock:
            row = self.conn.execute(
                "SELECT seq, log_floor FROM collections WHERE id = ?", (collection_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"collection {collection_id!r} does not exist (it was deleted)")
        return int(row[0]), int(row[1])

    def vectors_after(
        self, collection_id: str, after_rid: int, dimension: int
    ) -> tuple[Rids, npt.NDArray[np.float32], list[str]]:
        """Every vector of the collection with rid > after_rid, in rid order, with ids."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT v.rid, v.embedding, r.id FROM vectors v JOIN records r ON r.rid = v.rid"
                " WHERE v.rid > ? AND r.collection_id = ? ORDER BY v.rid",
                (after_rid, collection_id),
            ).fetchall()
        rids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = vectors_from_blobs([r[1] for r in rows], dimension)
        return rids, vectors, [r[2] for r in rows]

    def vectors_of(
        self,
        rids: Sequence[int] | Rids,
        dimension: int,
        *,
        missing_ok: bool = False,
        out: npt.NDArray[np.float32] | None = None,
    ) -> npt.NDArray[np.float32]:
        """Stored vectors of `rids`, in the order given. `missing_ok`: zeros for rids no
        longer stored (an index snapshot older than a deletion; the index replays the
        deletion right after, so such a vector is never an answer); otherwise a missing
        rid is a KeyError (after which `out` may hold some of the rows). The matrix is new
        and writable, or `out` (len(rids) x `dimension` float32) filled and returned: an
        index load writes straight into FAISS's storage.

        Dense runs of rids (an index's, read back when it loads) are read as rid ranges,
        sparse ones by `IN` lists: a range scan read 30,000 vectors in half the time. Each
        chunk is written into the matrix as soon as it is read, so its BLOBs never all
        live at once (an index load's peak memory, and its page faults)."""
        wanted = np.asarray(rids, dtype=np.int64)
        if not len(wanted):
            return np.zeros((0, dimension), np.float32) if out is None else out
        increasing = len(wanted) < 2 or bool((wanted[1:] > wanted[:-1]).all())
        keys = wanted if increasing else np.unique(wanted)
        # Rows in `keys` order: the result itself when the rids come in increasing order.
        matrix = (
            out if increasing and out is not None else np.empty((len(keys), dimension), np.float32)
        )
        present = np.ones(len(keys), bool)
        for start in range(0, len(keys), _VECTOR_READ_CHUNK):
            chunk = keys[start : start + _VECTOR_READ_CHUNK]
            low, high = int(chunk[0]), int(chunk[-1])
            # The lock per chunk, not around the loop: loading a large index reads many
            # chunks, and listing collections or a heartbeat should not wait for all.
            with self.lock:
                if high - low < 2 * len(chunk):
                    rows = self.conn.execute(
                        "SELECT rid, embedding FROM vectors WHERE rid BETWEEN ? AND ? ORDER BY rid",
                        (low, high),
                    ).fetchall()
                else:
                    rows = []
                    for part, marks in in_chunks(chunk.tolist()):
                        rows += self.conn.execute(
                            f"SELECT rid, embedding FROM vectors WHERE rid IN ({marks})", part
                        ).fetchall()
            rows_at = slice(start, start + len(chunk))
            present[rows_at] = _place_vectors(rows, chunk, matrix[rows_at], dimension)
            del rows
            time.sleep(0)  # let a thread waiting for the lock take it (locks are not fair)
        if not present.all() and not missing_ok:
            raise KeyError(int(keys[np.flatnonzero(~present)[0]]))
        if increasing:
            return matrix
        return np.take(matrix, np.searchsorted(keys, wanted), axis=0, out=out)

    def deletions_after(self, collection_id: str, seq: int) -> Rids:
        with self.lock:
            rows = self.conn.execute(
                "SELECT rid FROM deletions WHERE collection_id = ? AND seq > ?",
                (collection_id, seq),
            ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def prune_deletions(self, collection_id: str, up_to_seq: int) -> None:
        """Forget deletions an index snapshot covers; later readers older than the floor
        rebuild instead of replaying. Nothing is written when there is nothing to forget:
        the commit's fsync held the lock for ~15 ms after every snapshot of a bulk load."""
        with self.lock:
            found = self.conn.execute(
                "SELECT 1 FROM deletions WHERE collection_id = ? AND seq <= ? AND seq > "
                "(SELECT log_floor FROM collections WHERE id = ?) LIMIT 1",
                (collection_id, up_to_seq, collection_id),
            ).fetchone()
        if found is None:
            return
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT log_floor FROM collections WHERE id = ?", (collection_id,)
            ).fetchone()
            if row is None or up_to_seq <= int(row[0]):
                return
            conn.execute(
                "DELETE FROM deletions WHERE collection_id = ? AND seq <= ?",
                (collection_id, up_to_seq),
            )
            conn.execute(
                "UPDATE collections SET log_floor = ? WHERE id = ?", (up_to_seq, collection_id)
            )

    def matching_rids(self, collection_id: str, filt: Filter) -> Rids:
        """The collection's rids that match `filt`, sorted: a scan of its records."""
        condition, params = where_sql(filt)
        with self.lock:
            rows = self.conn.execute(
                f"SELECT r.rid FROM records r WHERE r.collection_id = ? AND ({condition})",
                (collection_id, *params),
            ).fetchall()
        rids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        rids.sort()
        return rids

    def rids_allocated(self) -> int:
        """The largest rid ever allocated (records of every collection, deleted included)."""
        with self.lock:
            row = self.conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'records'"
            ).fetchone()
        return int(row[0]) if row else 0

    def indexed_rids(self, filt: Filter, low: int, high: int) -> Rids | None:
        """The distinct rids in [low, high] matching `filt`, sorted, read from the metadata
        index alone (they may belong to any collection: the caller keeps its own); None
        when `filt` needs more than the index (see `filter_sql.rid_select`)."""
        selection = rid_select(filt, low, high)
        if selection is None:
            return None
        with self.lock:
            rows = self.conn.execute(*selection).fetchall()
        return np.unique(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    def text_bytes(self, collection_id: str, limit: int) -> tuple[int, int]:
        """(bytes of ids, documents and metadata, rows read) over at most `limit` of the
        collection's records: data, without SQLite's page and index overhead."""
        with self.read_transaction():
            row = self.conn.execute(
                "SELECT COALESCE(SUM(length(CAST(id AS BLOB)) + COALESCE(length(CAST("
                "document AS BLOB)), 0) + COALESCE(length(CAST(metadata AS BLOB)), 0)), 0), "
                "count(*) FROM (SELECT id, document, metadata FROM records "
                "WHERE collection_id = ? LIMIT ?)",
                (collection_id, limit),
            ).fetchone()
        return int(row[0]), int(row[1])

    def count(self, collection_id: str) -> int:
        with self.lock:
            row = self.conn.execute(
                "SELECT count(*) FROM records WHERE collection_id = ?", (collection_id,)
            ).fetchone()
        return int(row[0])

    def records_by_rid(
        self, rids: Iterable[int], *, documents: bool, metadatas: bool, embeddings: bool
    ) -> dict[int, FoundRecord]:
        """rid → the record's fields; columns not asked for are None (reading and
        decoding them is most of a fast query's cost)."""
        columns = ", ".join(
            [
                "r.rid",
                "r.id",
                "r.document" if documents else "NULL",
                "r.metadata" if metadatas else "NULL",
                "v.embedding" if embeddings else "NULL",
            ]
        )
        source = "records r" + (" JOIN vectors v ON v.rid = r.rid" if embeddings else "")
        wanted = [int(r) for r in rids]
        out: dict[int, FoundRecord] = {}
        with self.lock:
            for part, marks in in_chunks(wanted):
                for rid, *fields in self.conn.execute(
                    f"SELECT {columns} FROM {source} WHERE r.rid IN ({marks})", part
                ):
                    out[rid] = FoundRecord(*fields)
        return out

    def select_records(
        self,
        collection_id: str,
        *,
        ids: Sequence[str] | None,
        filt: Filter | None,
        limit: int | None,
        offset: int | None,
        with_embeddings: bool,
    ) -> list[RecordRow]:
        """The records in rid order (the order they were first stored), paginated."""
        columns = "r.rid, r.id, r.document, r.metadata" + (
            ", v.embedding" if with_embeddings else ""
        )
        source = "records r" + (" JOIN vectors v ON v.rid = r.rid" if with_embeddings else "")
        where = ["r.collection_id = ?"]
        args: list[Any] = [collection_id]
        if ids is not None:
            # Ids are looked up as bound parameters, never through `json_each`, which
            # cuts a string at a NUL (then "victim\x00x" would name "victim"); the rids
            # found are integers, which JSON carries exactly.
            rids = self._rids_of_ids(collection_id, ids)
            if not rids:
                return []
            # `+` keeps SQLite from reading the collection's index (every record of it:
            # 3 ms for 100 ids in 20,000) instead of looking the rids up (0.13 ms).
            where[0] = "+r.collection_id = ?"
            where.append("r.rid IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(rids))
        if filt is not None:
            condition, params = where_sql(filt)
            where.append(f"({condition})")
            args.extend(params)
        sql = (
            f"SELECT {columns} FROM {source} WHERE {' AND '.join(where)}"
            " ORDER BY r.rid LIMIT ? OFFSET ?"
        )
        args.extend([-1 if limit is None else limit, offset or 0])
        with self.lock:
            return [RecordRow(*row) for row in self.conn.execute(sql, args)]

    def _rids_of_ids(self, collection_id: str, ids: Sequence[str]) -> list[int]:
        rids: list[int] = []
        with self.lock:
            for part, marks in in_chunks(ids):
                rids.extend(
                    rid
                    for (rid,) in self.conn.execute(
                        f"SELECT rid FROM records WHERE collection_id = ? AND id IN ({marks})",
                        (collection_id, *part),
                    )
                )
        return rids


#: SQLite virtual machine steps between deadline checks (about 0.1-0.5 ms of work).
_DEADLINE_CHECK_STEPS = 20_000
#: Rids per statement (and per hold of the store's lock) when reading vectors back. Small
#: enough that a chunk's BLOBs (768 KiB at 384 dimensions) stay under the server's heap
#: trim threshold and reuse the same memory: an index load of 30,000 x 384 took 0.11 s
#: with 512, 0.12 s with 8,192, and its peak memory fell by 8 MB.
_VECTOR_READ_CHUNK = 512


def _place_vectors(
    rows: list[tuple[int, bytes]],
    chunk: Rids,
    into: npt.NDArray[np.float32],
    dimension: int,
) -> npt.NDArray[np.bool_]:
    """Write the vectors of `rows` (rid, BLOB) into `into`, one row per rid of `chunk`
    (increasing); rids with no row get zeros. Which rids had a row."""
    found = np.fromiter((row[0] for row in rows), np.int64, count=len(rows))
    blobs = [row[1] for row in rows]
    if np.array_equal(found, chunk):  # the common case: an index's own rids, in order
        vectors_from_blobs(blobs, dimension, into)
        return np.ones(len(chunk), bool)
    vectors = vectors_from_blobs(blobs, dimension)
    order = np.argsort(found, kind="stable")
    found, vectors = found[order], vectors[order]
    at = np.minimum(np.searchsorted(found, chunk), max(len(found) - 1, 0))
    present = found[at] == chunk if len(found) else np.zeros(len(chunk), bool)
    into[~present] = 0.0
    into[present] = vectors[at[present]]
    return present


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (triggers contain `;` inside BEGIN … END)."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("--")):
            continue
        current.append(line)
        candidate = "\n".join(current)
        if stripped.endswith(";") and sqlite3.complete_statement(candidate):
            statements.append(candidate)
            current = []
    if current and "\n".join(current).strip():
        statements.append("\n".join(current))
    return statements
