"""Work done off the query path: moving tail vectors into ANN indexes, compacting them,
writing snapshots, building the filtered views that repeated filters ask for, and
checkpointing SQLite's WAL (so that no write holds the lock while it is copied).

No query waits for a build or a snapshot write. One thread (the indexer) decides what is
due; the slow parts run without the backend's lock, on a second thread at the lowest CPU
priority: an ANN part is extended on a copy of the next tail vectors and swapped in
(with the deletions made meanwhile replayed), a snapshot's content is copied under the
lock and written without it, and filtered views are built and attached if their plan is
still current. Queries meanwhile answer exactly from what exists (the exact tail holds
every vector not yet in the ANN part). Only compaction, and extending ANN parts too large
to copy, still take small steps under the lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from haima._process import return_freed_memory
from haima.backends.local.indexes import IndexCache, IndexSlot
from haima.errors import NotFoundError
from haima.index.collection_index import INDEX_STEP, ExtendJob
from haima.index.faiss_index import VectorIndex
from haima.index.plan_cache import PlanCache, ViewRequest
from haima.settings import Settings
from haima.storage.sqlite import CHECKPOINT_BYTES, Store

log = logging.getLogger("haima")

#: A view to build and the job that builds it.
ViewJob = tuple[ViewRequest, Callable[[], VectorIndex]]
#: Tail vectors an extension copies per hold of the lock (~0.5 ms at 384 dimensions).
EXTEND_COPY_ROWS = 2_048
#: Queries defer a collection's indexing (see `Background._indexing_due_at`) while its
#: exact tail holds at most this many bytes of vectors (43,690 at 384 dimensions), and
#: for at most this many times `Settings.index_delay` after its last write.
DEFER_TAIL_BYTES = 64 * 2**20
QUERY_DEFERRAL = 10
#: Paused between two holds of the lock in a row, so that a query waiting for it gets it.
LOCK_HANDOFF = 0.0002
T = TypeVar("T")


class Background:
    def __init__(
        self,
        lock: threading.RLock,
        store: Store,
        settings: Settings,
        indexes: IndexCache,
        plans: PlanCache,
    ) -> None:
        self.lock = lock
        self.store = store
        self.settings = settings
        self.indexes = indexes
        self.plans = plans
        self.closed = False
        #: Notified when a view build ends (`build_now` waits for the builder's).
        self.view_built = threading.Condition(lock)
        self._indexer: _Indexer | None = None
        #: The size of the next extension's vectors, to be allocated off the lock.
        self._extend_shape: tuple[int, int] | None = None
        #: Builds ANN parts and filtered views at the lowest CPU priority, without the
        #: lock (the indexer holds the lock during its steps, so it keeps the normal
        #: priority).
        self.view_builder: ThreadPoolExecutor | None = None
        #: Test hook: called (without the lock) just before a build or a snapshot write
        #: runs off the lock, with "build" or "snapshot" and the collection id.
        self.before_off_lock: Callable[[str, str], None] | None = None
        if settings.background_indexing:
            self.view_builder = ThreadPoolExecutor(
                1, thread_name_prefix="haima-views", initializer=_yield_to_queries
            )
            self._indexer = _Indexer(self)
            self._indexer.start()

    def wake(self) -> None:
        if self._indexer is not None:
            self._indexer.wake()

    def stop(self) -> None:
        """Stop both threads (a view being built is waited for); call without the lock."""
        if self._indexer is not None:
            self._indexer.stop()
        if self.view_builder is not None:
            self.view_builder.shutdown(wait=True, cancel_futures=True)

    def build_now(self, collection_id: str) -> None:
        """Finish the collection's ANN index now, and the filtered views asked for."""
        # In place, under the lock: the caller asked to wait. The maintenance lock keeps
        # the indexer from copying the ANN part while it grows here.
        with self.indexes.maintenance:
            while True:
                with self.lock:
                    row = self.store.get_collection_by_id(collection_id)
                    slot = self.indexes.synced(collection_id, row)
                    if slot is None:
                        return
                    if not self.indexes.index_step(slot, row, batch=10_000):
                        self.indexes.save(collection_id)
                        break
        while True:
            with self.lock:
                wanted = self.next_view(collection_id)
                if wanted is None:
                    if self.closed or not self.plans.building(collection_id):
                        return
                    # The builder thread's build, to its end (the bound only guards
                    # against a build cancelled by close()).
                    self.view_built.wait(timeout=1.0)
                    continue
            self.build_view(*wanted)

    # -- filtered views ------------------------------------------------------------------

    def next_view(self, collection_id: str | None = None) -> ViewJob | None:
        """The next view to build and the job that builds it (caller holds the lock)."""
        while (request := self.plans.next_request(collection_id)) is not None:
            slot = self.indexes.slots.get(request.key[0])
            if slot is not None and slot.index.version == request.version:
                return request, slot.index.view_job(request.plan)
            self.plans.finish(request, None)  # its index moved on: nothing to build
        return None

    def build_view(self, request: ViewRequest, job: Callable[[], VectorIndex]) -> None:
        """Build a view without the lock (queries go on meanwhile), then attach it if its
        plan is still current."""
        view = None
        try:
            view = job()
        finally:
            with self.lock:
                self.plans.finish(request, view)
                self.view_built.notify_all()

    # -- indexing ------------------------------------------------------------------------

    def index_some(self) -> bool:
        """One step of background work; True if there may be more. A view asked for is
        handed to the view builder (built here when there is none)."""
        if self.store.wal_bytes() >= CHECKPOINT_BYTES:
            self.store.checkpoint()  # without the lock: writes and queries go on
        if self._index_step_due():
            return True
        with self.lock:
            wanted = None if self.closed else self.next_view()
        if wanted is None:
            return False
        if self.view_builder is None:
            self.build_view(*wanted)
        else:
            self.view_builder.submit(self.build_view, *wanted)
        return True

    def next_indexing_in(self) -> float:
        """Seconds until a collection waiting for writes to pause becomes due."""
        with self.lock:
            waits = [
                self._indexing_due_at(slot) - time.monotonic()
                for slot in self.indexes.slots.values()
                if slot.index.pending() or slot.index.needs_compaction()
            ]
        return max(min(waits), 0.01) if waits else self.settings.snapshot_interval

    def _index_step_due(self) -> bool:
        """Index or compact a collection that is due, else save snapshots that are; True
        if a step ran."""
        with self.indexes.maintenance:
            return self._maintain()

    def _maintain(self) -> bool:
        job: ExtendJob | None = None
        buffer = None
        if self._extend_shape is not None:  # asked for by the last call: made off the lock
            buffer = np.empty(self._extend_shape, np.float32)
            buffer[...] = 0.0  # touch every page now, not under the lock (3x `fill`'s speed)
            self._extend_shape = None
        with self.lock:
            if self.closed:
                return False
            now = time.monotonic()
            slots = self.indexes.slots
            for collection_id, slot in list(slots.items()):
                index = slot.index
                if not (index.pending() or index.needs_compaction()):
                    continue
                if not self._indexing_due(slot, now):
                    continue
                try:
                    row = self.store.get_collection_by_id(collection_id)
                except NotFoundError:
                    slots.pop(collection_id, None)
                    continue
                slot = self.indexes.synced(collection_id, row) or slot
                if not slot.index.needs_compaction():
                    wanted = slot.index.extend_batch()
                    if wanted and (buffer is None or buffer.shape[1] != slot.index.dim):
                        # Make the copy's memory without the lock, then come back for
                        # the copy (see CollectionIndex.start_extend).
                        self._extend_shape = (wanted, slot.index.dim)
                        return True
                    job = self.indexes.start_extend(slot, into=buffer)
                if job is None:  # compaction, or a part too large to copy: in place
                    self.indexes.index_step(slot, row, batch=INDEX_STEP)
                    if not slot.index.pending():
                        self._save_off_lock(collection_id)
                    return True
                break
            else:
                due = [
                    collection_id
                    for collection_id, slot in slots.items()
                    if slot.index.dirty and now - slot.last_saved > self.settings.snapshot_interval
                ]
                for collection_id in due:
                    self._save_off_lock(collection_id)
                return False
        if job.positions is not None:  # its vectors: copied a chunk per hold of the lock
            source = slot.index
            for start in range(0, len(job.rids), EXTEND_COPY_ROWS):
                with self.lock:
                    current = slots.get(collection_id)
                    if current is None or current.index is not source:
                        return True  # reloaded, or the collection went: start again
                    if not source.copy_for_extend(job, start, start + EXTEND_COPY_ROWS):
                        return True  # the tail's positions moved: start again
                time.sleep(LOCK_HANDOFF)
        built = self._off_lock("build", collection_id, job.build)
        with self.lock:
            swapped = self.indexes.finish_extend(collection_id, job, built)
            done = swapped and not slots[collection_id].index.pending()
            if done:
                self._save_off_lock(collection_id)
        del job, built
        return_freed_memory()  # the replaced part, the job's copy, the snapshot's bytes
        return True

    def _save_off_lock(self, collection_id: str) -> None:
        """Write the collection's snapshot: content copied now (the caller holds the
        lock), the file written with the lock released, the deletion log pruned after."""
        job = self.indexes.snapshot_job(collection_id)
        if job is None:
            return
        self.lock.release()  # held once (RLock) by every caller
        try:
            self._off_lock("snapshot", collection_id, lambda: self.indexes.write_snapshot(job))
        finally:
            self.lock.acquire()
        self.indexes.snapshot_written(job)

    def _off_lock(self, what: str, collection_id: str, work: Callable[[], T]) -> T:
        """Run `work` without the lock, on the low-priority builder thread if there is one."""
        if self.before_off_lock is not None:
            self.before_off_lock(what, collection_id)
        if self.view_builder is None:
            return work()
        return self.view_builder.submit(work).result()

    def _indexing_due(self, slot: IndexSlot, now: float) -> bool:
        """Index once writes pause, so that a bulk load is not slowed by the indexer
        taking the lock between its batches (and queries, see `_indexing_due_at`); but
        never let the exact tail grow past `max_unindexed`, where exact scans would get
        slow."""
        if slot.index.tail.live_count >= self.settings.max_unindexed:
            return True
        return now >= self._indexing_due_at(slot)

    def _indexing_due_at(self, slot: IndexSlot) -> float:
        """When the collection's indexing is due (monotonic time): `index_delay` after
        its last write, and, while its exact tail scans quickly, also after its last
        query, though never later than QUERY_DEFERRAL x `index_delay` after the write.

        Why wait for queries: a build is CPU work beside them. On 2 cores, even at the
        lowest priority, it delayed queries right after a bulk load by 5-10 ms (the
        machine's two cores busy at once), where an exact scan of a 20,000 x 384 tail
        takes ~1 ms. Past DEFER_TAIL_BYTES the scan costs more than the build's
        interference, and the build starts once writes pause."""
        delay = self.settings.index_delay
        due = slot.last_write + delay
        tail = slot.index.tail
        if tail.live_count * tail.dim * 4 > DEFER_TAIL_BYTES:
            return due
        return max(due, min(slot.last_query + delay, slot.last_write + QUERY_DEFERRAL * delay))


class _Indexer:
    """The background thread that moves tail vectors into ANN indexes, one small step at
    a time, and writes snapshots when a collection's indexing is done."""

    def __init__(self, work: Background) -> None:
        self._work = work
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
                if self._work.index_some():
                    continue
                pause = self._work.next_indexing_in()
            except Exception:  # the query path stays exact; retry later, not in a loop
                log.exception("background indexing failed")
                pause = self._work.settings.snapshot_interval
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
        with contextlib.suppress(OSError, AttributeError):
            # SCHED_IDLE too: a waking query thread preempts it at once, where a nice-19
            # thread could keep the core for the rest of its time slice.
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
