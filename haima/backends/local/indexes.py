"""The index cache: each collection's FAISS index in memory, kept in step with SQLite,
and its snapshot on disk.

SQLite is the source of truth. A write applies its committed batch to the loaded index
when the index is exactly one batch behind; otherwise the index catches up from the store
(new vectors after its highest rid, deletions from the log) before the next read. Reads
check `PRAGMA data_version`, so a second process's commits are seen without reopening.
A snapshot lets the next process start from the index instead of rebuilding it.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from haima.config import CollectionConfiguration
from haima.errors import NotFoundError
from haima.index.collection_index import CollectionIndex, ExtendJob, ids_arrays
from haima.index.faiss_index import Rids, VectorFiller, VectorIndex, Vectors, prepare_in_place
from haima.index.plan_cache import PlanCache
from haima.index.snapshot import Snapshot, SnapshotError, write_snapshot
from haima.storage.rows import CollectionRow
from haima.storage.sqlite import Store

log = logging.getLogger("haima")

#: Reads a collection's stored vectors by rid (the indexes' way back to SQLite).
Loader = Callable[[Rids], Vectors]


@dataclass
class IndexSlot:
    """A collection's loaded index and what it was last checked against."""

    index: CollectionIndex
    data_version: int = -1
    stale: bool = False
    #: The collection as last read, valid while `data_version` holds (see `for_query`).
    row: CollectionRow | None = None
    config: CollectionConfiguration | None = None
    last_saved: float = field(default_factory=time.monotonic)
    last_write: float = 0.0
    #: When a vector search last read the index (the indexer waits for a pause).
    last_query: float = 0.0


@dataclass
class SnapshotJob:
    """A snapshot's content, copied under the lock, to be written without it."""

    collection_id: str
    index: CollectionIndex
    path: Path
    header: dict[str, Any]
    arrays: dict[str, np.ndarray[Any, Any]]
    #: The record ids by rid, encoded into arrays when the file is written.
    ids: dict[int, str]


class IndexCache:
    """Not thread-safe by itself: every caller holds the backend's lock, except for the
    parts documented as running without it (`write_snapshot`, `ExtendJob.build`)."""

    def __init__(self, store: Store, root: Path | None, plans: PlanCache) -> None:
        self.store = store
        self.root = root
        #: Plans are made for one index version: they are forgotten when it moves.
        self.plans = plans
        self.slots: dict[str, IndexSlot] = {}
        #: Held, without the backend's lock, by whoever builds or writes a snapshot off
        #: the lock, so that two of them never overlap. Taken *before* the backend's lock,
        #: never while holding it.
        self.maintenance = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        #: Test hook: called without the lock just before an index is loaded off it.
        self.before_load: Callable[[str], None] | None = None

    def load_unlocked(self, collection_id: str, lock: threading.RLock) -> None:
        """Load the collection's index from its snapshot *without* holding `lock` (the
        backend's), then install it, so that a large store's first query does not keep
        every other request (listing collections, other collections' queries) waiting
        while it reads the vectors back from SQLite. Nothing happens when the index is
        loaded already, or there is no snapshot to load; the caller's locked path then
        builds or catches it up as before."""
        with lock:
            if collection_id in self.slots or self.root is None:
                return
            row = self.store.get_collection_by_id(collection_id)
            if row.dimension is None or not self._snapshot_path(collection_id).exists():
                return
            # One load per collection at a time (two would read the same vectors twice);
            # other collections load meanwhile.
            gate = self._loading.setdefault(collection_id, threading.Lock())
        with gate:
            with lock:
                if collection_id in self.slots:
                    return
            if self.before_load is not None:
                self.before_load(collection_id)
            index = self._load(row)  # the store takes its lock per statement
            with lock:
                self._loading.pop(collection_id, None)
                current = self.store.get_collection_by_id(collection_id)
                if collection_id in self.slots or current.configuration != row.configuration:
                    return  # loaded meanwhile, or reconfigured: the locked path decides
                self.slots[collection_id] = IndexSlot(index)  # catches up at first use

    def synced(self, collection_id: str, row: CollectionRow) -> IndexSlot | None:
        """The collection's index, caught up with every committed write (None: the
        collection has no vector yet)."""
        slot = self.slots.get(collection_id)
        if slot is None:
            if row.dimension is None:
                return None
            slot = IndexSlot(self._load(row))
            self.slots[collection_id] = slot
        version = self.store.data_version()
        if slot.stale or version != slot.data_version:
            self._catch_up(slot.index, row)
            slot.stale = False
            slot.data_version = version
        return slot

    def for_query(
        self, collection_id: str
    ) -> tuple[CollectionRow, CollectionConfiguration, IndexSlot | None]:
        """The collection's row, configuration and synced index. When no other connection
        has committed since the last query, the cached row and configuration are current
        (this process's own changes reset them), which spares two queries per search."""
        slot = self.slots.get(collection_id)
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
        slot = self.synced(collection_id, row)
        if slot is not None:
            slot.row, slot.config = row, config
        return row, config, slot

    def before_write(self, collection_id: str) -> CollectionRow:
        """Bring the index up to date before a write, so the write can be applied to it
        directly afterwards instead of being read back from SQLite."""
        row = self.store.get_collection_by_id(collection_id)
        if row.dimension is not None:
            self.synced(collection_id, row)
        return row

    def after_write(
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
        self.plans.forget(collection_id)
        slot = self.slots.get(collection_id)
        if slot is None and seq == 1 and len(rids):
            # The collection's first batch: start its index here rather than read the
            # batch back from SQLite at the first query.
            row = self.store.get_collection_by_id(collection_id)
            config = CollectionConfiguration.from_json(row.configuration)
            slot = IndexSlot(CollectionIndex(int(vectors.shape[1]), config.metric, config.index))
            slot.data_version = self.store.data_version()
            self.slots[collection_id] = slot
        if slot is None:
            return
        slot.last_write = time.monotonic()
        if slot.index.seq == seq - 1 and not slot.stale:
            gone = deleted if deleted is not None else np.zeros(0, np.int64)
            slot.index.apply(rids, vectors, ids, gone, seq)
        else:
            slot.stale = True

    def reconfigured(self, row: CollectionRow, configuration: dict[str, Any] | None) -> bool:
        """Forget the cached row after `modify`; a new configuration rebuilds the index's
        ANN part as configured. Returns whether there is indexing to do."""
        slot = self.slots.get(row.id)
        if slot is None:
            return False
        slot.row = slot.config = None
        if configuration is None:
            return False
        slot.index.reconfigure(
            CollectionConfiguration.from_json(configuration).index, self.loader(row)
        )
        self.plans.forget(row.id)
        return True

    def drop(self, collection_id: str) -> None:
        """Forget a deleted collection's index, plans and snapshot."""
        self.slots.pop(collection_id, None)
        self.plans.forget(collection_id)
        if self.root is not None:
            shutil.rmtree(self._index_dir(collection_id), ignore_errors=True)

    def loader(self, row: CollectionRow) -> Loader:
        dimension = row.dimension
        assert dimension is not None

        def load(rids: Rids) -> Vectors:
            return self.store.vectors_of(rids, dimension)

        return load

    def _prepared_filler(self, row: CollectionRow, config: CollectionConfiguration) -> VectorFiller:
        """Writes vectors by rid as the index holds them (normalised for cosine) into the
        caller's matrix, zeros for rids deleted since the snapshot (their deletions are
        replayed right after loading)."""
        dimension = row.dimension
        assert dimension is not None

        def fill(rids: Rids, out: Vectors) -> None:
            self.store.vectors_of(rids, dimension, missing_ok=True, out=out)
            prepare_in_place(out, config.metric)

        return fill

    def status(self, collection_id: str) -> dict[str, Any]:
        """What is built for the collection and whether building goes on (for operators):
        state "ready" (every vector searchable by the index it should have), "building"
        (vectors wait for the ANN part, or it is being compacted), or "not loaded" (this
        process has not opened the index; its snapshot says which ANN kind it holds)."""
        slot = self.slots.get(collection_id)
        if slot is None:
            return {"state": "not loaded", "ann": self._snapshot_ann_kind(collection_id)}
        index = slot.index
        building = bool(index.pending() or index.needs_compaction())
        return {
            "state": "building" if building else "ready",
            "ann": index.main.kind if index.main is not None else None,
            "indexed": index.main.live_count if index.main is not None else 0,
            "exact": index.tail.live_count,
            "pending": index.pending(),
        }

    def snapshot_bytes(self, collection_id: str) -> int:
        """The size of the collection's snapshot file (0: none)."""
        if self.root is None:
            return 0
        try:
            return self._snapshot_path(collection_id).stat().st_size
        except OSError:
            return 0

    def _snapshot_ann_kind(self, collection_id: str) -> str | None:
        if self.root is None or not self._snapshot_path(collection_id).is_file():
            return None
        try:
            with Snapshot(self._snapshot_path(collection_id)) as snapshot:
                kind = snapshot.fields.get("main_kind")
        except SnapshotError:
            return None
        return str(kind) if kind else None

    def vector_bytes(self) -> int:
        """What the loaded collections' vectors take (the plan cache's budget follows it)."""
        return sum(s.index.live_count * s.index.dim * 4 for s in self.slots.values())

    def index_step(self, slot: IndexSlot, row: CollectionRow, batch: int) -> int:
        """Compact the ANN part if tombstones call for it (giving SQLite's free pages back
        to the file system), then move up to `batch` vectors into it; returns how many."""
        version = slot.index.version
        if slot.index.needs_compaction():
            slot.index.compact(self.loader(row))
            self.store.reclaim_space()
        moved = slot.index.index_step(self.loader(row), batch=batch)
        if slot.index.version != version:
            self.plans.forget(row.id)  # stale now: free their memory
        return moved

    def start_extend(self, slot: IndexSlot, into: Vectors | None = None) -> ExtendJob | None:
        """The next off-lock build of the collection's ANN part, if one is due (see
        `CollectionIndex.start_extend` for `into`)."""
        return slot.index.start_extend(into)

    def finish_extend(self, collection_id: str, job: ExtendJob, built: VectorIndex) -> bool:
        """Swap a built ANN part in, if the collection and its part are still those the
        job started from."""
        slot = self.slots.get(collection_id)
        if slot is None or not slot.index.finish_extend(job, built):
            return False
        self.plans.forget(collection_id)  # made for the old part
        return True

    # -- snapshots -----------------------------------------------------------------------

    def save(self, collection_id: str) -> None:
        """Write the collection's index snapshot if it changed, then prune the deletion
        log up to the seq the snapshot covers (all under the lock)."""
        job = self.snapshot_job(collection_id)
        if job is not None:
            self.write_snapshot(job)
            self.snapshot_written(job)

    def snapshot_job(self, collection_id: str) -> SnapshotJob | None:
        """The collection's snapshot content if it changed since the last one, copied so
        that it can be written without the lock while writes go on."""
        slot = self.slots.get(collection_id)
        if self.root is None or slot is None or not slot.index.dirty:
            return None
        header, arrays = slot.index.to_arrays(with_ids=False)  # copies, or never mutated
        slot.index.dirty = False
        slot.last_saved = time.monotonic()
        return SnapshotJob(
            collection_id,
            slot.index,
            self._snapshot_path(collection_id),
            header,
            arrays,
            dict(slot.index.ids),
        )

    def write_snapshot(self, job: SnapshotJob) -> None:
        """Write the file (temp, fsync, rename): safe without the backend's lock."""
        try:
            write_snapshot(job.path, job.header, {**job.arrays, **ids_arrays(job.ids)})
        except BaseException:
            job.index.dirty = True  # written next time
            raise

    def snapshot_written(self, job: SnapshotJob) -> None:
        """After the file is in place: prune the deletion log it makes unnecessary, or
        remove the file if the collection was deleted while it was written."""
        if job.index.main is not None:
            job.index.main.drop_serialized()  # its memory is not needed any more
        if job.collection_id not in self.slots:
            try:
                self.store.get_collection_by_id(job.collection_id)
            except NotFoundError:  # deleted while the file was written
                shutil.rmtree(job.path.parent, ignore_errors=True)
                return
        self.store.prune_deletions(job.collection_id, int(job.header["seq"]))

    def save_all(self) -> None:
        for collection_id in list(self.slots):
            self.save(collection_id)

    def _index_dir(self, collection_id: str) -> Path:
        assert self.root is not None
        return self.root / "indexes" / collection_id

    def _snapshot_path(self, collection_id: str) -> Path:
        return self._index_dir(collection_id) / "index.hidx"

    # -- loading -------------------------------------------------------------------------

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
                self.slots[row.id].index = index
            rids, vectors, ids = self.store.vectors_after(row.id, index.max_rid, row.dimension)
            deleted = self.store.deletions_after(row.id, index.seq)
        index.apply(rids, vectors, ids, deleted, seq)
        self.plans.forget(row.id)

    def _load(self, row: CollectionRow) -> CollectionIndex:
        """The collection's index from its snapshot, or a new one to fill from SQLite."""
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
                        index = CollectionIndex.from_snapshot(
                            config.index, snapshot, self._prepared_filler(row, config)
                        )
                    index.dirty = False
                    if index.main is not None and index.target_kind() != index.main.kind:
                        index.reconfigure(config.index, self.loader(row))
                    return index
                except (SnapshotError, ValueError, KeyError, RuntimeError) as exc:
                    log.warning(
                        "index snapshot of collection %r is unusable (%s); rebuilding it from SQLite",
                        row.name,
                        exc,
                    )
            elif row.log_floor > 0:
                # A snapshot was written once (pruning after it set the floor), so it
                # was removed.
                log.warning(
                    "index snapshot of collection %r is missing; rebuilding it from SQLite",
                    row.name,
                )
        return CollectionIndex(row.dimension, config.metric, config.index)
