"""One FAISS index whose labels are positions, with the position → rid map and tombstones.

Positions (not rids) are FAISS's labels so that a filter becomes a dense bitmap over
positions, which `IDSelectorBitmap` tests in O(1). Vectors are only ever appended, in
rid order, so `rids` stays sorted and rid → position is a binary search.
"""

from __future__ import annotations

import os

# FAISS's OpenMP threads spin while they wait; on a small shared machine that costs more
# than it gains (measured 184 → 31 QPS for single queries). Must precede the import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from haima.config import IndexConfig, Metric
from haima.index.snapshot import Snapshot
from haima.types import Rids as Rids  # re-exported: the index modules name them here
from haima.types import Vectors as Vectors

# FAISS's own type stubs are partial (SWIG); it is used as an untyped module here.
faiss: Any = importlib.import_module("faiss")

Bitmap = npt.NDArray[np.uint8]
#: Writes the prepared vectors of `rids` into `out` (a (len(rids), dim) float32 matrix):
#: how a snapshot's part gets its vectors from SQLite, straight into FAISS's storage.
VectorFiller = Callable[[Rids, Vectors], None]

#: Index kinds whose stored vectors are the originals, usable for exact re-scoring.
EXACT_STORAGE = frozenset({"flat", "hnsw"})


def faiss_metric(metric: Metric) -> int:
    return int(faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)


def prepare(vectors: Vectors, metric: Metric) -> Vectors:
    """What FAISS stores: cosine vectors are normalised (then inner product = cosine)."""
    return prepare_in_place(np.array(vectors, dtype=np.float32, order="C", copy=True), metric)


def prepare_in_place(vectors: Vectors, metric: Metric) -> Vectors:
    """`prepare` on a float32 C-ordered matrix the caller owns, without a copy."""
    if metric == "cosine" and len(vectors):
        faiss.normalize_L2(vectors)  # in place, in C; zero vectors stay zero
    return vectors


def to_distances(scores: npt.NDArray[np.float32], metric: Metric) -> npt.NDArray[np.float32]:
    """FAISS scores → Haima distances: l2 squared distance; cosine and ip as 1 − score."""
    if metric == "l2":
        return scores
    return np.subtract(1.0, scores, out=scores)  # in place: the scores are not kept


def build_faiss_index(kind: str, dim: int, metric: Metric, cfg: IndexConfig, n_train: int) -> Any:
    """A new, empty FAISS index of `kind`; IVF kinds are sized for `n_train` vectors."""
    fm = faiss_metric(metric)
    if kind == "flat":
        return (
            faiss.IndexFlatIP(dim) if fm == faiss.METRIC_INNER_PRODUCT else faiss.IndexFlatL2(dim)
        )
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, cfg.max_neighbors, fm)
        index.hnsw.efConstruction = cfg.ef_construction
        index.hnsw.efSearch = cfg.ef_search
        return index
    if kind == "sq8":
        return faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, fm)
    nlist = cfg.nlist or default_nlist(n_train)
    quantizer = (
        faiss.IndexFlatIP(dim) if fm == faiss.METRIC_INNER_PRODUCT else faiss.IndexFlatL2(dim)
    )
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, fm)
    elif kind == "ivf_pq":
        index = faiss.IndexIVFPQ(
            quantizer, dim, nlist, default_pq_m(dim, cfg.pq_m), cfg.pq_nbits, fm
        )
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.own_fields = True
    quantizer.this.disown()
    return index


def default_nlist(n: int) -> int:
    """About 4·√n lists, with at least 39 training points per list (FAISS's own floor)."""
    return max(1, min(int(4 * math.sqrt(max(n, 1))), n // 39))


def default_pq_m(dim: int, requested: int | None) -> int:
    if requested is not None:
        if dim % requested:
            raise ValueError(f"pq_m={requested} must divide the dimension {dim}")
        return requested
    target = max(1, dim // 4)
    return max(m for m in range(1, target + 1) if dim % m == 0)


def training_size(kind: str, cfg: IndexConfig) -> int:
    """Vectors needed before an index of `kind` can be trained (0: needs no training)."""
    if kind in ("flat", "hnsw"):
        return 0
    if kind == "sq8":
        return 1_000
    nlist = cfg.nlist or 0
    need = max(39 * nlist, 10_000)
    if kind == "ivf_pq":
        need = max(need, 39 * 2**cfg.pq_nbits)
    return need


@dataclass(frozen=True, slots=True)
class SearchTuning:
    ef_search: int = 100
    nprobe: int = 16


class VectorIndex:
    """A FAISS index plus positions → rids and a tombstone bitmap."""

    def __init__(self, kind: str, index: Any, metric: Metric) -> None:
        self.kind = kind
        self.index = index
        self.metric = metric
        self.dim = int(index.d)
        #: rids by position, then unused capacity; the last element is always -1 so that
        #: FAISS's label -1 maps to rid -1 without a mask.
        self._rids = np.full(1, -1, dtype=np.int64)
        self._deleted = np.empty(0, dtype=bool)
        self.size = 0
        self.n_deleted = 0
        self._plain_params: dict[tuple[str, int, int], Any] = {}
        #: The snapshot's arrays of the FAISS structure while `index` holds `ntotal`
        #: vectors, made off the lock by a build (see `cache_serialized`); a snapshot
        #: reuses them.
        self._serialized: tuple[int, dict[str, npt.NDArray[Any]]] | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def rids(self) -> Rids:
        return self._rids[: self.size]

    @property
    def deleted(self) -> npt.NDArray[np.bool_]:
        return self._deleted[: self.size]

    @property
    def live_count(self) -> int:
        return self.size - self.n_deleted

    @property
    def max_rid(self) -> int:
        return int(self._rids[self.size - 1]) if self.size else 0

    @property
    def exact(self) -> bool:
        return self.kind in EXACT_STORAGE

    def add(self, rids: Rids, vectors: Vectors) -> None:
        """Append vectors (already `prepare`d) with rids above every rid held."""
        if len(rids) == 0:
            return
        if self.size and int(rids[0]) <= self.max_rid:
            raise ValueError("rids must be appended in increasing order")
        self._reserve(self.size + len(rids))
        self.index.add(vectors)
        self._rids[self.size : self.size + len(rids)] = rids
        self._deleted[self.size : self.size + len(rids)] = False
        self.size += len(rids)

    def clone(self, size: int) -> VectorIndex:
        """A deep copy of the first `size` positions (the whole index when nothing was
        added since `size` was read), tombstones included. Safe beside searches: FAISS
        only reads the original."""
        index = faiss.clone_index(self.index)
        if index.ntotal != size:
            raise ValueError(f"clone: the index holds {index.ntotal} vectors, expected {size}")
        out = VectorIndex(self.kind, index, self.metric)
        out._reserve(size)
        out._rids[:size] = self._rids[:size]
        out._deleted[:size] = self._deleted[:size]
        out.size = size
        out.n_deleted = int(out._deleted[:size].sum())
        return out

    def copy_tombstones(self, other: VectorIndex, size: int) -> None:
        """Take `other`'s tombstones of its first `size` positions (same rids there)."""
        self._deleted[:size] = other._deleted[:size]
        self.n_deleted = int(self._deleted[: self.size].sum())

    def cache_serialized(self) -> None:
        """Make the snapshot's copy of the FAISS structure now: a build calls this off
        the lock, and the snapshot taken under the lock right after its swap then copies
        only rids and tombstones (copying a 20,000-vector HNSW graph there took ~3 ms)."""
        if self.kind != "flat":  # a flat part is saved as its rids alone
            self._serialized = (int(self.index.ntotal), self._structure_arrays())

    def drop_serialized(self) -> None:
        self._serialized = None

    def _reserve(self, needed: int) -> None:
        if needed < len(self._rids):
            return
        capacity = max(needed, int(len(self._rids) * 1.5), 1024)
        rids = np.full(capacity + 1, -1, dtype=np.int64)
        rids[: self.size] = self._rids[: self.size]
        deleted = np.zeros(capacity, dtype=bool)
        deleted[: self.size] = self._deleted[: self.size]
        self._rids, self._deleted = rids, deleted

    def positions(self, rids: Rids) -> npt.NDArray[np.int64]:
        """Positions of `rids` (sorted or not); -1 where absent or deleted."""
        if not self.size:
            return np.full(len(rids), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.rids, rids), self.size - 1)
        found = (self.rids[pos] == rids) & ~self.deleted[pos]
        return np.where(found, pos, -1).astype(np.int64)

    def delete(self, rids: Rids) -> int:
        """Tombstone `rids` held here; returns how many were live."""
        pos = self.positions(rids)
        return self.delete_at(pos[pos >= 0])

    def delete_at(self, positions: npt.NDArray[np.int64]) -> int:
        """Tombstone the live `positions` (as `positions` finds them); returns how many."""
        self._deleted[positions] = True
        self.n_deleted += len(positions)
        return len(positions)

    def live_restriction(self) -> Restriction | None:
        """The live positions, or None when nothing is deleted."""
        if not self.n_deleted:
            return None
        return Restriction.of_mask(~self.deleted)

    def restriction_of(self, positions: npt.NDArray[np.int64]) -> Restriction:
        mask = np.zeros(self.size, dtype=bool)
        mask[positions] = True
        return Restriction.of_mask(mask)

    # -- search --------------------------------------------------------------------------

    def search(
        self,
        queries: Vectors,
        k: int,
        allowed: Restriction | None,
        tuning: SearchTuning,
        flat: bool = False,
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        """Top-k scores (FAISS's: inner product or squared L2) and rids; rid -1 pads.
        `flat` scans the stored vectors exactly (flat and HNSW kinds)."""
        n = len(queries)
        if self.size == 0 or k == 0:
            return np.zeros((n, k), dtype=np.float32), np.full((n, k), -1, dtype=np.int64)
        index = self.index
        kind = self.kind
        if flat:
            kind = "flat"
            if self.kind == "hnsw":
                index = faiss.downcast_index(self.index.storage)
        params = self._plain(kind, tuning) if allowed is None else allowed.params(kind, tuning)
        # FAISS's low-level call, which reads raw memory: its Python wrapper's checks
        # (contiguous float32 of the index's width) are cheaper made here.
        if queries.dtype != np.float32 or not queries.flags.c_contiguous:
            queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have {queries.shape[1]} dimensions, the index {self.dim}")
        if kind == "flat" and params is None and n == 1 and self.size >= SPLIT_SCAN_ROWS:
            found = _split_scan(self._flat_vectors(index), queries, k, self.metric)
            if found is not None:
                return found[0], self._rids[found[1]]
        scores = np.empty((n, k), dtype=np.float32)
        labels = np.empty((n, k), dtype=np.int64)
        index.search_c(
            n, faiss.swig_ptr(queries), k, faiss.swig_ptr(scores), faiss.swig_ptr(labels), params
        )
        # Label -1 (a short answer) picks the sentinel -1 kept after the last rid.
        return scores, self._rids[labels]

    def _flat_vectors(self, flat: Any) -> Vectors:
        return np.asarray(faiss.rev_swig_ptr(flat.get_xb(), self.size * self.dim)).reshape(
            self.size, self.dim
        )

    def _plain(self, kind: str, tuning: SearchTuning) -> Any:
        """Unrestricted parameters, the same every time: built once per tuning."""
        if kind in ("flat", "sq8"):
            return None  # FAISS's plain path; passing empty params is measurably slower
        key = (kind, tuning.ef_search, tuning.nprobe)
        params = self._plain_params.get(key)
        if params is None:
            params = self._plain_params[key] = new_search_params(kind, tuning)
        return params

    def stored_vectors(self, positions: npt.NDArray[np.int64]) -> Vectors | None:
        """The exact stored (prepared) vectors at `positions`, if this kind keeps them."""
        matrix = self.all_stored_vectors()
        return None if matrix is None else matrix[positions]

    def all_stored_vectors(self) -> Vectors | None:
        """A view of every stored vector (flat and HNSW only); valid until the next add."""
        if not self.exact or self.size == 0:
            return None
        flat = self.index if self.kind == "flat" else faiss.downcast_index(self.index.storage)
        return self._flat_vectors(flat)

    # -- serialisation -------------------------------------------------------------------

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The index as named arrays, without the vectors SQLite already keeps (they are
        read back from it on load, see `from_snapshot`): a flat part is its live rids; an
        HNSW part its graph, plus the vectors of its tombstoned positions (deleted from
        SQLite, still needed to walk the graph). IVF and PQ kinds keep codes, not the
        vectors, and are saved as FAISS serialises them. The arrays are the caller's:
        fresh, or cached ones nothing mutates, so they can be written without the lock."""
        if self.kind == "flat":
            return {"live_rids": self.rids[~self.deleted]}
        cached = self._serialized
        if cached is not None and cached[0] == self.index.ntotal:
            payload = dict(cached[1])
        else:
            payload = self._structure_arrays()
        if self.kind == "hnsw":
            dead = np.flatnonzero(self.deleted)
            stored = self.all_stored_vectors()
            payload["dead_positions"] = dead
            payload["dead_vectors"] = (
                stored[dead] if stored is not None else np.zeros((0, self.dim), np.float32)
            )
        payload["rids"] = self.rids.copy()
        payload["deleted"] = self.deleted.copy()
        return payload

    def _structure_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """FAISS's structure as fresh arrays: an HNSW graph, or another kind's whole
        serialisation."""
        if self.kind != "hnsw":
            return {"faiss": faiss.serialize_index(self.index)}
        graph = self.index.hnsw
        payload = {
            f"hnsw.{name}": faiss.vector_to_array(getattr(graph, name)) for name in _HNSW_ARRAYS
        }
        payload["hnsw.params"] = np.array(
            [graph.entry_point, graph.max_level, graph.efConstruction, graph.efSearch],
            dtype=np.int64,
        )
        return payload

    @classmethod
    def from_snapshot(
        cls,
        kind: str,
        metric: Metric,
        cfg: IndexConfig,
        snapshot: Snapshot,
        prefix: str,
        fill: VectorFiller | None = None,
    ) -> VectorIndex:
        """The part a snapshot holds; `fill` writes (prepared) vectors from SQLite for
        snapshots that leave them out (format 2); older snapshots hold them."""
        if prefix + "live_rids" in snapshot or prefix + "hnsw.levels" in snapshot:
            if fill is None:
                raise ValueError("this snapshot needs the store's vectors to load")
            return cls._from_graph(kind, metric, cfg, snapshot, prefix, fill)
        rids = snapshot.array(prefix + "rids").astype(np.int64, copy=False)
        deleted = snapshot.array(prefix + "deleted").astype(bool, copy=False)
        if prefix + "vectors" in snapshot:
            count, dim = snapshot.shape(prefix + "vectors")
            index = build_faiss_index(kind, dim, metric, cfg, count)
            # Read straight into FAISS's storage: one pass over the memory, no copies.
            storage = _storage_view(index, count, dim)
            if count:
                snapshot.read_into(prefix + "vectors", storage)
        else:
            # Streamed into FAISS's structures: no intermediate copy of the index.
            reader = faiss.PyCallbackIOReader(snapshot.reader(prefix + "faiss"), 1 << 20)
            index = faiss.read_index(reader)
        if len(rids) != index.ntotal or len(deleted) != len(rids):
            raise ValueError("index snapshot is inconsistent: rid count differs from FAISS's")
        return cls._with_positions(kind, index, metric, rids, deleted)

    @classmethod
    def _from_graph(
        cls,
        kind: str,
        metric: Metric,
        cfg: IndexConfig,
        snapshot: Snapshot,
        prefix: str,
        fill: VectorFiller,
    ) -> VectorIndex:
        """A flat part from its live rids, or an HNSW part from its graph, with the
        vectors read from SQLite (and the tombstoned positions' from the snapshot)."""
        dim = int(snapshot.fields["dim"])
        if prefix + "live_rids" in snapshot:
            rids = snapshot.array(prefix + "live_rids").astype(np.int64, copy=False)
            index = build_faiss_index(kind, dim, metric, cfg, len(rids))
            if len(rids):
                fill(rids, _storage_view(index, len(rids), dim))
            return cls._with_positions(kind, index, metric, rids, np.zeros(len(rids), bool))
        rids = snapshot.array(prefix + "rids").astype(np.int64, copy=False)
        deleted = snapshot.array(prefix + "deleted").astype(bool, copy=False)
        index = build_faiss_index(kind, dim, metric, cfg, len(rids))
        # The vectors go straight into FAISS's storage (not through an array and `add`,
        # two more passes over them: a restarted store's first query waited for those).
        vectors = _storage_view(faiss.downcast_index(index.storage), len(rids), dim)
        live = np.flatnonzero(~deleted)
        if len(live) == len(rids):
            fill(rids, vectors)
        elif len(live):
            found = np.empty((len(live), dim), np.float32)
            fill(rids[live], found)
            vectors[live] = found
        dead = snapshot.array(prefix + "dead_positions").astype(np.int64, copy=False)
        if len(dead):
            vectors[dead] = snapshot.array(prefix + "dead_vectors").reshape(len(dead), dim)
        graph = index.hnsw
        for name in _HNSW_ARRAYS:
            faiss.copy_array_to_vector(snapshot.array(f"{prefix}hnsw.{name}"), getattr(graph, name))
        entry, top, construction, search = (int(v) for v in snapshot.array(prefix + "hnsw.params"))
        graph.entry_point, graph.max_level = entry, top
        graph.efConstruction, graph.efSearch = construction, search
        if int(graph.levels.size()) != len(rids):
            raise ValueError("index snapshot is inconsistent: graph size differs from rids")
        index.ntotal = len(rids)
        return cls._with_positions(kind, index, metric, rids, deleted)

    @classmethod
    def _with_positions(
        cls, kind: str, index: Any, metric: Metric, rids: Rids, deleted: npt.NDArray[np.bool_]
    ) -> VectorIndex:
        """A part over a loaded FAISS index whose positions hold `rids` (tombstones marked)."""
        out = cls(kind, index, metric)
        out._reserve(len(rids))
        out._rids[: len(rids)] = rids
        out._deleted[: len(rids)] = deleted
        out.size = len(rids)
        out.n_deleted = int(deleted.sum())
        return out


#: The HNSW graph's arrays a snapshot keeps (format 2).
_HNSW_ARRAYS = ("levels", "offsets", "neighbors", "assign_probas", "cum_nneighbor_per_level")


def new_search_params(kind: str, tuning: SearchTuning) -> Any:
    """FAISS search parameters of `kind` (SearchParameters for exact scans)."""
    if kind == "hnsw":
        params = faiss.SearchParametersHNSW()
        params.efSearch = tuning.ef_search
    elif kind in ("ivf", "ivf_pq"):
        params = faiss.SearchParametersIVF()
        params.nprobe = tuning.nprobe
    else:
        params = faiss.SearchParameters()
    return params


class Restriction:
    """The positions a search may return, as a bitmap, with the FAISS parameters that
    carry it, built once per (kind, tuning): a cached filter plan is searched many times
    and building SWIG objects per query cost as much as a tenth of the search."""

    def __init__(self, bitmap: Bitmap, size: int) -> None:
        self.bitmap = bitmap
        self.size = size
        self._params: dict[tuple[str, int, int], Any] = {}

    @classmethod
    def of_mask(cls, mask: npt.NDArray[np.bool_]) -> Restriction:
        return cls(np.packbits(mask, bitorder="little"), len(mask))

    @property
    def nbytes(self) -> int:
        return int(self.bitmap.nbytes)

    def positions(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(np.unpackbits(self.bitmap, bitorder="little")[: self.size])

    def params(self, kind: str, tuning: SearchTuning) -> Any:
        key = (kind, tuning.ef_search, tuning.nprobe)
        params = self._params.get(key)
        if params is None:
            params = new_search_params(kind, tuning)
            selector = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(self.bitmap))
            params.sel = selector
            # SWIG does not keep the selector alive through `params`; the bitmap lives
            # as long as this object.
            params._haima_selector = selector
            self._params[key] = params
        return params


def _storage_view(flat: Any, count: int, dim: int) -> Vectors:
    """A flat FAISS index (or an HNSW's storage) sized to `count` vectors, as a writable
    (count, dim) view of its memory for the caller to fill."""
    flat.codes.resize(count * dim * 4)
    flat.ntotal = count
    if count == 0:
        return np.zeros((0, dim), np.float32)
    memory = faiss.rev_swig_ptr(flat.codes.data(), count * dim * 4)
    return np.asarray(memory).view(np.float32).reshape(count, dim)


def search_threads(configured: int | None, n_queries: int) -> int | None:
    """FAISS threads for a search of `n_queries`: the collection's `num_threads` if set;
    else one for a single query, FAISS's default for more. FAISS 1.15 splits a single
    query's flat scan over its threads, and on 2 cores that ran 2-3x slower than one
    thread (20,000 x 384: 3.9 ms against 1.1 ms; 200,000: 31 ms against 14 ms); several
    queries are split between threads, which does pay."""
    if configured is not None:
        return configured
    return 1 if n_queries == 1 else None


#: A single query's exact scan of at least this many vectors is split between the
#: calling thread and a helper (see `_split_scan`).
SPLIT_SCAN_ROWS = 8_192


class _ScanHelper:
    """One thread that scans half of a single query's exact scan while the caller scans
    the other half: 20,000 x 384 took 0.52 ms instead of 0.87. FAISS's own threads do
    not pay for one query (see `search_threads`), and a Python thread is woken more
    cheaply than its OpenMP team. Used only when idle: under concurrent queries both
    cores are busy anyway, and a query never waits for another's half. Off in server
    processes (see `split_single_scans`)."""

    def __init__(self) -> None:
        self._busy = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.enabled = True

    def try_claim(self) -> ThreadPoolExecutor | None:
        """The helper, claimed until `release`; None when another query holds it or the
        helper is off."""
        if not self.enabled or not self._busy.acquire(blocking=False):
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                1, thread_name_prefix="haima-scan", initializer=faiss.omp_set_num_threads,
                initargs=(1,),
            )  # fmt: skip
        return self._pool

    def forget(self) -> None:
        """In a forked child: the parent's thread is not there, and a query of the parent
        may have held the helper at the fork."""
        self._busy = threading.Lock()
        self._pool = None

    def release(self) -> None:
        self._busy.release()


_scan_helper = _ScanHelper()
os.register_at_fork(after_in_child=_scan_helper.forget)


def split_single_scans(enabled: bool) -> None:
    """Whether a single query's exact scan of SPLIT_SCAN_ROWS+ vectors may take a second
    core (on by default). A server turns it off (`_process.tune_for_serving`): there the
    query's latency depends on two threads being run promptly, and the other core serves
    other requests, the indexer, or clients on the same machine. Through Chroma's client
    on 2 cores, the first 500 queries after an ingest (exact scans of 20,000 x 384) had
    the same p50 without the split and a better tail (p99 1.12-1.31x Chroma's against
    1.01-1.18x, max 1.09-1.45x against 1.00-1.19x; six runs each); in process the split
    cuts such a scan from 0.87 to 0.52 ms."""
    _scan_helper.enabled = enabled


def _split_scan(
    vectors: Vectors, query: Vectors, k: int, metric: Metric
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
    """FAISS's top-k scores and positions for one query over `vectors`, its two halves
    scanned at once; None when the helper is busy (the caller scans alone)."""
    pool = _scan_helper.try_claim()
    if pool is None:
        return None
    try:
        half = len(vectors) // 2
        kind = faiss_metric(metric)
        second = pool.submit(faiss.knn, query, vectors[half:], k, kind)
        first_scores, first_rows = faiss.knn(query, vectors[:half], k, kind)
        second_scores, second_rows = second.result()
    finally:
        _scan_helper.release()
    second_rows = np.where(second_rows >= 0, second_rows + half, -1)
    scores = np.concatenate([first_scores, second_scores], axis=1)
    rows = np.concatenate([first_rows, second_rows], axis=1)
    # FAISS's scores: the larger the better, except for l2 (the first half wins a tie,
    # as in one scan).
    return best_k(scores, rows, k, larger_first=metric != "l2")


def best_k(
    scores: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], k: int, larger_first: bool
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Per row, the k best of several answers side by side, best first (stable: an
    earlier column wins a tie), labels -1 (padding) last."""
    key = -scores if larger_first else scores
    order = np.argsort(np.where(labels >= 0, key, np.inf), axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(labels, order, axis=1)


class faiss_threads:
    """Run FAISS with `count` OpenMP threads (None: leave FAISS's setting alone).
    A class, not a generator: it wraps every query, and this costs a tenth as much."""

    __slots__ = ("_count", "_previous")

    def __init__(self, count: int | None) -> None:
        self._count = count
        self._previous = 0

    def __enter__(self) -> None:
        if self._count is not None:
            self._previous = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(self._count)

    def __exit__(self, *exc: object) -> None:
        if self._count is not None:
            faiss.omp_set_num_threads(self._previous)


def exact_search(
    queries: Vectors, vectors: Vectors, k: int, metric: Metric
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Exact top-k by brute force: Haima distances (ascending) and row numbers of `vectors`
    (both `prepare`d). NumPy's matrix product, not FAISS: for one query over 10k × 384 it
    took 0.35 ms where `faiss.knn` took 2 ms (its OpenMP threads cost more than they gain
    on 2 busy cores)."""
    count = len(vectors)
    k = min(k, count)
    distances = np.empty((len(queries), k), dtype=np.float32)
    rows = np.empty((len(queries), k), dtype=np.int64)
    if k == 0:
        return distances, rows
    sq_norms = np.einsum("ij,ij->i", vectors, vectors) if metric == "l2" else None
    for start in range(0, len(queries), 256):
        block = queries[start : start + 256]
        products = block @ vectors.T
        if sq_norms is not None:
            block_dist = np.einsum("ij,ij->i", block, block)[:, None] - 2 * products + sq_norms
            np.maximum(block_dist, 0, out=block_dist)
        else:
            block_dist = 1 - products
        top = np.argpartition(block_dist, k - 1, axis=1)[:, :k] if k < count else None
        if top is None:
            top = np.broadcast_to(np.arange(count), block_dist.shape)
        picked = np.take_along_axis(block_dist, top, axis=1)
        order = np.argsort(picked, axis=1, kind="stable")
        distances[start : start + len(block)] = np.take_along_axis(picked, order, axis=1)
        rows[start : start + len(block)] = np.take_along_axis(top, order, axis=1)
    return distances, rows
