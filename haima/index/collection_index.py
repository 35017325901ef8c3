"""A collection's in-memory vector index: an ANN part and an exact tail.

``main`` is the ANN index (HNSW, IVF, IVF-PQ or SQ8), absent for flat collections and for
`auto` collections below the HNSW threshold. ``tail`` is an exact flat index of every
vector not yet in ``main``. Writes land in the tail at once; the background indexer moves
them into ``main`` in small steps. A search covers both parts and merges them, so results
are complete at every moment, whatever the indexer has reached.

The index is a cache of SQLite: it records the collection `seq` it has applied and the
largest rid it holds, and catches up from the store before reads (see LocalBackend).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from haima.config import IndexConfig, Metric
from haima.index import planner
from haima.index.faiss_index import (
    Restriction,
    Rids,
    SearchTuning,
    VectorFiller,
    VectorIndex,
    Vectors,
    best_k,
    build_faiss_index,
    exact_search,
    prepare,
    to_distances,
    training_size,
)
from haima.index.planner import (
    RERANK_FACTOR,
    PartPlan,
    VectorLoader,
    build_view,
    effective_tuning,
)
from haima.index.snapshot import Snapshot

#: Tombstones in the ANN part above this fraction trigger a rebuild.
COMPACT_FRACTION = 0.2
#: Vectors the indexer moves per step; the index is locked during a step (~0.2 s for
#: HNSW at 384 dims on 2 cores).
INDEX_STEP = 500
#: Exact scans take no tuning; one shared value spares an object per search.
EXACT_TUNING = SearchTuning()
#: An extension built off the lock takes at least this many vectors, and at least half
#: the ANN part's size: each build clones the part, so growing it geometrically keeps the
#: copying linear in the collection's size.
EXTEND_MIN_BATCH = 5_000
#: ANN parts larger than this are extended in place under the lock, in INDEX_STEP steps,
#: as before: a clone would double their memory.
EXTEND_MAX_PART = 1_000_000


@dataclass
class ExtendJob:
    """Vectors to add to a copy of the ANN part without the lock (see
    `CollectionIndex.start_extend`); `build` runs off the lock, `finish_extend` swaps the
    result in. Everything here is a copy or is never mutated while the job runs."""

    epoch: int
    kind: str
    base: VectorIndex | None
    base_size: int
    rids: Rids
    vectors: Vectors
    dim: int
    metric: Metric
    cfg: IndexConfig
    #: The tail positions of `rids` while `vectors` is still being filled (see
    #: `CollectionIndex.copy_for_extend`); None when it was filled at the start.
    positions: npt.NDArray[np.int64] | None = None
    #: The parts `finish_extend` replaced, kept until the caller drops the job, so that
    #: their memory is freed after the lock is released.
    replaced: list[VectorIndex | None] = field(default_factory=list)

    def build(self) -> VectorIndex:
        """The ANN part with the job's vectors added (a clone of `base`, or new)."""
        if self.base is None:
            index = build_faiss_index(self.kind, self.dim, self.metric, self.cfg, len(self.rids))
            if not index.is_trained:
                sample = self.vectors
                if len(sample) > 100_000:
                    picked = np.random.default_rng(0).choice(len(sample), 100_000, replace=False)
                    sample = sample[np.sort(picked)]
                index.train(np.ascontiguousarray(sample))
            part = VectorIndex(self.kind, index, self.metric)
        else:
            part = self.base.clone(self.base_size)
        part.add(self.rids, self.vectors)
        part.cache_serialized()  # the snapshot's bytes, made here rather than under the lock
        return part


def ids_arrays(ids: dict[int, str]) -> dict[str, npt.NDArray[Any]]:
    """Record ids by rid as a snapshot's arrays."""
    encoded = [record_id.encode("utf-8") for record_id in ids.values()]
    return {
        "ids.rids": np.fromiter(ids.keys(), dtype=np.int64, count=len(ids)),
        "ids.ends": np.cumsum([len(e) for e in encoded], dtype=np.int64),
        "ids.utf8": np.frombuffer(b"".join(encoded), dtype=np.uint8),
    }


class CollectionIndex:
    def __init__(self, dim: int, metric: Metric, cfg: IndexConfig) -> None:
        self.dim = dim
        self.metric = metric
        self.cfg = cfg
        self.tail = self._new_tail()
        self.main: VectorIndex | None = None
        #: The collection seq whose deletions have been applied.
        self.seq = 0
        #: Bumped on every change; cached plans of an older version are stale.
        self.version = 0
        #: Set when the in-memory state differs from the last snapshot written.
        self.dirty = False
        #: Bumped whenever `main` is replaced or dropped: an extension started before
        #: that is discarded instead of swapped in.
        self.epoch = 0
        self._live_restrictions: dict[str, tuple[int, Restriction | None]] = {}
        #: rid → record id of every live vector: an answer that needs only ids and
        #: distances is served without touching SQLite (a rid never changes its id).
        self.ids: dict[int, str] = {}

    def _new_tail(self) -> VectorIndex:
        return VectorIndex(
            "flat", build_faiss_index("flat", self.dim, self.metric, self.cfg, 0), self.metric
        )

    # -- state ---------------------------------------------------------------------------

    @property
    def live_count(self) -> int:
        return self.tail.live_count + (self.main.live_count if self.main else 0)

    @property
    def max_rid(self) -> int:
        if self.tail.size:
            return self.tail.max_rid
        return self.main.max_rid if self.main else 0

    @property
    def min_rid(self) -> int:
        for _, part in self.parts():
            if part.size:
                return int(part.rids[0])
        return 0

    def parts(self) -> list[tuple[str, VectorIndex]]:
        found = [("tail", self.tail)]
        if self.main is not None:
            found.insert(0, ("main", self.main))
        return found

    def target_kind(self) -> str | None:
        """The ANN kind this collection should have now (None: exact only)."""
        kind = self.cfg.type
        if kind == "flat":
            return None
        if kind == "auto":
            if self.main is not None or self.live_count >= self.cfg.auto_threshold:
                return "hnsw"
            return None
        return kind

    def pending(self) -> int:
        """Vectors the indexer could move into the ANN part now."""
        kind = self.target_kind()
        if kind is None or not self.tail.live_count:
            return 0
        if self.main is None and self.tail.live_count < training_size(kind, self.cfg):
            return 0
        return self.tail.live_count

    def needs_compaction(self) -> bool:
        main = self.main
        return (
            main is not None
            and main.size >= 1_000
            and main.n_deleted > COMPACT_FRACTION * main.size
        )

    def _changed(self) -> None:
        self.version += 1
        self.dirty = True

    # -- writes --------------------------------------------------------------------------

    def apply(
        self, rids: Rids, vectors: Vectors, ids: Sequence[str], deleted: Rids, seq: int
    ) -> None:
        """Apply one committed batch: delete first (a replaced vector's old rid), then add
        the new vectors with their record ids."""
        if len(deleted):
            self.delete(deleted)
        if len(rids):
            fresh = rids > self.max_rid
            if not fresh.all():
                rids, vectors = rids[fresh], vectors[fresh]
                ids = [i for i, keep in zip(ids, fresh, strict=True) if keep]
            self.tail.add(rids, prepare(vectors, self.metric))
            self.ids.update(zip(rids.tolist(), ids, strict=True))
        self.seq = max(self.seq, seq)
        self._changed()

    def delete(self, rids: Rids) -> None:
        for _, part in self.parts():
            part.delete(rids)
        for rid in rids.tolist():
            self.ids.pop(rid, None)
        self._changed()

    def index_step(self, loader: VectorLoader, batch: int = INDEX_STEP) -> int:
        """Move up to `batch` tail vectors into the ANN part; returns how many moved."""
        kind = self.target_kind()
        if kind is None or not self.pending():
            return 0
        live = np.flatnonzero(~self.tail.deleted)
        if self.main is None:
            self.main = self._new_main(kind, live)
        take = live[:batch]
        vectors = self.tail.stored_vectors(take)
        assert vectors is not None
        rids = self.tail.rids[take].copy()
        self.main.add(rids, np.ascontiguousarray(vectors))
        self.tail.delete(rids)
        if self.tail.n_deleted > max(self.tail.size // 2, 10_000) or not self.tail.live_count:
            self.tail = self._rebuilt_tail()
            self.epoch += 1  # tail positions moved: a job copying from the tail stops
        self._changed()
        return len(take)

    def extend_batch(self) -> int:
        """How many tail vectors the next off-lock build would take (caller holds the
        lock); 0 when there is nothing to move or the part is too large to clone (then
        `index_step` moves vectors in place)."""
        if self.target_kind() is None or not self.pending():
            return 0
        main = self.main
        if main is not None and main.size > EXTEND_MAX_PART:
            return 0
        live = self.tail.live_count
        if main is None:
            return live  # a new part starts with every pending vector
        return min(live, max(EXTEND_MIN_BATCH, main.size // 2))

    def start_extend(self, into: Vectors | None = None) -> ExtendJob | None:
        """The next off-lock build of the ANN part (caller holds the lock); None when
        `extend_batch` is 0. Without `into`, the tail vectors are copied now. With `into`
        (a buffer allocated and touched beforehand without the lock; at most its length
        are taken), the job's vectors are its rows, filled by `copy_for_extend` in chunks,
        each under the lock: copying 20,000 x 384 vectors at once held the lock for up to
        70 ms into fresh memory, 6 ms into touched memory, and a query arriving then
        waited for it."""
        batch = self.extend_batch()
        if batch == 0:
            return None
        kind = self.target_kind()
        assert kind is not None
        if into is not None:
            batch = min(batch, len(into))
        take = np.flatnonzero(~self.tail.deleted)[:batch]
        if into is None:
            stored = self.tail.all_stored_vectors()
            assert stored is not None
            vectors = stored[take]
        else:
            vectors = into[: len(take)]
        main = self.main
        return ExtendJob(
            epoch=self.epoch,
            kind=kind,
            base=main,
            base_size=main.size if main is not None else 0,
            rids=self.tail.rids[take].copy(),
            vectors=vectors,
            dim=self.dim,
            metric=self.metric,
            cfg=self.cfg,
            positions=None if into is None else take,
        )

    def copy_for_extend(self, job: ExtendJob, start: int, stop: int) -> bool:
        """Copy the job's tail vectors `start:stop` into its buffer (caller holds the
        lock); False when the tail's positions moved since the job started (a compaction
        or reconfiguration: the job is dropped). Tail positions only grow otherwise, and
        the storage may move with an add, so the vectors are found again each time."""
        if job.epoch != self.epoch or job.positions is None:
            return False
        stored = self.tail.all_stored_vectors()
        assert stored is not None
        np.take(
            stored, job.positions[start:stop], axis=0, out=job.vectors[start:stop], mode="clip"
        )  # mode "raise" would copy through a temporary buffer
        return True

    def finish_extend(self, job: ExtendJob, built: VectorIndex) -> bool:
        """Swap in a built extension (caller holds the lock), replaying what happened
        meanwhile: tombstones of the old part and deletions of the moved tail vectors.
        False (and nothing changes) when the part was replaced or dropped meanwhile."""
        if job.epoch != self.epoch or self.main is not job.base or self.target_kind() != job.kind:
            return False
        if job.base is not None:
            built.copy_tombstones(job.base, job.base_size)
        positions = self.tail.positions(job.rids)
        still_live = positions >= 0
        if not still_live.all():
            built.delete(job.rids[~still_live])
        self.tail.delete_at(positions[still_live])
        if self.tail.n_deleted > max(self.tail.size // 2, 10_000) or not self.tail.live_count:
            job.replaced.append(self.tail)  # freed by the caller after the lock (~3 ms)
            self.tail = self._rebuilt_tail()
        job.replaced.append(self.main)
        self.main = built
        self.epoch += 1
        self._changed()
        return True

    def _new_main(self, kind: str, live: npt.NDArray[np.int64]) -> VectorIndex:
        index = build_faiss_index(kind, self.dim, self.metric, self.cfg, len(live))
        if not index.is_trained:
            sample = live
            if len(sample) > 100_000:
                sample = np.sort(np.random.default_rng(0).choice(live, 100_000, replace=False))
            vectors = self.tail.stored_vectors(sample)
            index.train(np.ascontiguousarray(vectors))
        return VectorIndex(kind, index, self.metric)

    def _live(self, part: VectorIndex, loader: VectorLoader) -> tuple[Rids, Vectors]:
        """A part's live rids and prepared vectors (from SQLite for kinds that do not
        keep the originals)."""
        live = np.flatnonzero(~part.deleted)
        rids = part.rids[live].copy()
        stored = part.stored_vectors(live)
        vectors = stored if stored is not None else prepare(loader(rids), self.metric)
        return rids, np.ascontiguousarray(vectors)

    def _rebuilt_tail(self, *parts: VectorIndex, loader: VectorLoader | None = None) -> VectorIndex:
        """A new tail holding the live vectors of `parts` (default: the tail), in order."""
        tail = self._new_tail()
        for part in parts or (self.tail,):
            if part.live_count:
                tail.add(*self._live(part, loader or _no_loader))
        return tail

    def compact(self, loader: VectorLoader) -> None:
        """Drop the ANN part's tombstones: its live vectors return to the tail (exact) and
        the indexer builds the ANN part again."""
        main = self.main
        if main is None:
            return
        self.tail = self._rebuilt_tail(main, self.tail, loader=loader)
        self.main = None
        self.epoch += 1
        self._changed()

    def reconfigure(self, cfg: IndexConfig, loader: VectorLoader) -> None:
        """New settings; a different index type drops the ANN part to be rebuilt (its
        vectors return to the exact tail, from SQLite for kinds that do not keep them)."""
        rebuild = cfg.type != self.cfg.type or any(
            getattr(cfg, f) != getattr(self.cfg, f)
            for f in ("max_neighbors", "ef_construction", "nlist", "pq_m", "pq_nbits")
        )
        self.cfg = cfg
        if rebuild:
            self.epoch += 1  # an extension being built for the old settings is discarded
            if self.main is not None:
                self.compact(loader)
        self._changed()

    # -- search --------------------------------------------------------------------------

    def plan(self, matches: Rids, loader: VectorLoader) -> list[PartPlan]:
        """Per part holding matches, how to search it for them (see index/planner.py)."""
        plans = []
        for name, part in self.parts():
            found = planner.plan_part(name, part, matches, self.metric, self.cfg, loader)
            if found is not None:
                plans.append(found)
        return plans

    def view_job(self, plan: PartPlan) -> Callable[[], VectorIndex]:
        """Gathers a plan's matching vectors now (under the caller's lock, while the plan
        is current); the returned call builds its view from them and needs no lock."""
        if plan.exact_rids is not None and plan.exact_vectors is not None:
            rids, vectors = plan.exact_rids, plan.exact_vectors
        else:
            assert self.main is not None and plan.restriction is not None
            positions = plan.restriction.positions()
            rids = self.main.rids[positions].copy()
            stored = self.main.stored_vectors(positions)
            assert stored is not None, "views are built for HNSW parts, which keep vectors"
            vectors = np.ascontiguousarray(stored)
        metric, cfg = self.metric, self.cfg
        return lambda: build_view(rids, vectors, metric, cfg)

    def search(
        self,
        queries: Vectors,
        k: int,
        plans: list[PartPlan] | None,
        tuning: SearchTuning,
        loader: VectorLoader,
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        """Top-k distances (ascending) and rids over both parts; rid -1 pads short rows.

        `queries` must be `prepare`d. `plans` None searches every live vector. `loader`
        fetches original vectors (re-ranking quantized indexes, completing short answers)."""
        results: list[tuple[npt.NDArray[np.float32], Rids]] = []
        if plans is None:
            for name, part in (("main", self.main), ("tail", self.tail)):
                if part is not None and part.live_count:
                    live = self._live_restriction(name, part)
                    results.append(
                        self._ann(part, queries, k, live, part.live_count, tuning, loader)
                    )
        else:
            for plan in plans:
                if plan.view is not None:
                    results.append(self._in_view(plan.view, queries, k, tuning))
                    continue
                if plan.exact_rids is not None:
                    assert plan.exact_vectors is not None
                    results.append(self._exact(queries, k, plan.exact_rids, plan.exact_vectors))
                    continue
                chosen = self.main if plan.part == "main" else self.tail
                assert chosen is not None and plan.restriction is not None
                if plan.scan:
                    results.append(self._scan(chosen, queries, k, plan.restriction))
                    continue
                found = self._ann(
                    chosen, queries, k, plan.restriction, plan.matches, tuning, loader
                )
                matching = self._restricted_matches(chosen, plan, loader)
                results.append(self._completed(found, plan.matches, queries, k, matching))
        return merge(results, len(queries), k)

    def _exact(
        self, queries: Vectors, k: int, rids: Rids, vectors: Vectors
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        distances, rows = exact_search(queries, vectors, k, self.metric)
        return distances, rids[rows]

    def _scan(
        self, part: VectorIndex, queries: Vectors, k: int, allowed: Restriction
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        """Exact search of the part's stored vectors, restricted to `allowed`."""
        scores, rids = part.search(queries, min(k, part.size), allowed, EXACT_TUNING, flat=True)
        return to_distances(scores, self.metric), rids

    def _ann(
        self,
        part: VectorIndex,
        queries: Vectors,
        k: int,
        allowed: Restriction | None,
        matches: int,
        tuning: SearchTuning,
        loader: VectorLoader,
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        """Search one part through FAISS, restricted to `allowed` (None: everything)."""
        nlist = int(part.index.nlist) if part.kind in ("ivf", "ivf_pq") else 0
        effective = effective_tuning(tuning, k, matches, part.size, nlist)
        rerank = RERANK_FACTOR.get(part.kind)
        wanted = min(k * rerank if rerank else k, part.size)
        scores, rids = part.search(queries, wanted, allowed, effective)
        if rerank:
            return self._reranked(queries, rids, k, loader)
        return to_distances(scores, self.metric), rids

    def _reranked(
        self, queries: Vectors, candidates: Rids, k: int, loader: VectorLoader
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        """Exact distances for a quantized index's candidates, from the original vectors."""
        valid = np.unique(candidates[candidates >= 0])
        vectors = prepare(loader(valid), self.metric) if len(valid) else None
        distances = np.full((len(queries), k), np.inf, dtype=np.float32)
        rids = np.full((len(queries), k), -1, dtype=np.int64)
        for i, row in enumerate(candidates):
            row = row[row >= 0]
            if not len(row) or vectors is None:
                continue
            rows = np.searchsorted(valid, row)
            d, order = exact_search(queries[i : i + 1], vectors[rows], k, self.metric)
            distances[i, : d.shape[1]] = d[0]
            rids[i, : d.shape[1]] = row[order[0]]
        return distances, rids

    def _in_view(
        self, view: VectorIndex, queries: Vectors, k: int, tuning: SearchTuning
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        """Search a filtered view: every vector in it matches, so no restriction."""
        effective = effective_tuning(tuning, k, view.size, view.size, 0)
        scores, rids = view.search(queries, min(k, view.size), None, effective)
        found = to_distances(scores, self.metric), rids

        def matching() -> tuple[Rids, Vectors]:
            vectors = view.all_stored_vectors()
            assert vectors is not None
            return view.rids, vectors

        return self._completed(found, view.size, queries, k, matching)

    def _restricted_matches(
        self, part: VectorIndex, plan: PartPlan, loader: VectorLoader
    ) -> Callable[[], tuple[Rids, Vectors]]:
        """The rids and vectors a restricted plan matches in `part`, when asked."""

        def matching() -> tuple[Rids, Vectors]:
            assert plan.restriction is not None
            positions = plan.restriction.positions()
            part_rids = part.rids[positions]
            vectors = part.stored_vectors(positions)
            if vectors is None:
                vectors = prepare(loader(part_rids), self.metric)
            return part_rids, np.ascontiguousarray(vectors)

        return matching

    def _completed(
        self,
        found: tuple[npt.NDArray[np.float32], Rids],
        matches: int,
        queries: Vectors,
        k: int,
        matching: Callable[[], tuple[Rids, Vectors]],
    ) -> tuple[npt.NDArray[np.float32], Rids]:
        """Never fewer than min(k, matches) results: rows a graph search left short (a
        very selective filter on a graph index) are answered by an exact scan of the
        `matching` rids and vectors."""
        distances, rids = found
        need = min(k, matches)
        # FAISS pads short rows at the end: a row is short iff its need-th rid is -1.
        if need == 0 or (rids.shape[1] >= need and -1 not in rids[:, need - 1].tolist()):
            return found
        short = np.flatnonzero((rids >= 0).sum(axis=1) < need)
        exact_d, exact_r = self._exact(queries[short], k, *matching())
        width = max(distances.shape[1], exact_d.shape[1])
        distances = _pad(distances, width, np.inf)
        rids = _pad(rids, width, -1)
        distances[short] = _pad(exact_d, width, np.inf)
        rids[short] = _pad(exact_r, width, -1)
        return distances, rids

    def _live_restriction(self, name: str, part: VectorIndex) -> Restriction | None:
        cached = self._live_restrictions.get(name)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        live = part.live_restriction()
        self._live_restrictions[name] = (self.version, live)
        return live

    # -- snapshots -----------------------------------------------------------------------

    def to_arrays(
        self, with_ids: bool = True
    ) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """The snapshot's header and arrays (the caller's: see `VectorIndex.to_arrays`). Without
        `with_ids`, the record ids are left to the caller (`ids_arrays` of a copy of
        `ids`): encoding 20,000 of them took ~5 ms, which a snapshot taken under the lock
        can do after releasing it."""
        arrays: dict[str, npt.NDArray[Any]] = {}
        for name, part in self.parts():
            for key, value in part.to_arrays().items():
                arrays[f"{name}.{key}"] = value
        if with_ids:
            arrays.update(ids_arrays(self.ids))
        header = {
            "seq": self.seq,
            "dim": self.dim,
            "metric": self.metric,
            "main_kind": self.main.kind if self.main else None,
        }
        return header, arrays

    @classmethod
    def from_snapshot(
        cls, cfg: IndexConfig, snapshot: Snapshot, fill: VectorFiller | None = None
    ) -> CollectionIndex:
        """The index a snapshot holds; `fill` writes prepared vectors by rid from SQLite
        (snapshots since format 2 leave the vectors to it)."""
        header = snapshot.fields
        out = cls(int(header["dim"]), header["metric"], cfg)
        out.seq = int(header["seq"])
        out.tail = VectorIndex.from_snapshot("flat", out.metric, cfg, snapshot, "tail.", fill)
        if header["main_kind"]:
            out.main = VectorIndex.from_snapshot(
                header["main_kind"], out.metric, cfg, snapshot, "main.", fill
            )
        id_rids = snapshot.array("ids.rids").tolist()
        ends = snapshot.array("ids.ends").tolist()
        blob = snapshot.array("ids.utf8").tobytes()
        starts = [0, *ends[:-1]]
        out.ids = {
            rid: blob[a:b].decode("utf-8") for rid, a, b in zip(id_rids, starts, ends, strict=True)
        }
        return out


def _no_loader(rids: Rids) -> Vectors:
    raise AssertionError("the exact tail keeps its vectors; nothing to load")


def _pad(array: npt.NDArray[Any], width: int, fill: float) -> npt.NDArray[Any]:
    if array.shape[1] >= width:
        return array
    out = np.full((array.shape[0], width), fill, dtype=array.dtype)
    out[:, : array.shape[1]] = array
    return out


def merge(
    results: list[tuple[npt.NDArray[np.float32], Rids]], n_queries: int, k: int
) -> tuple[npt.NDArray[np.float32], Rids]:
    """Merge per-part results into the k smallest distances per query (-1 rids last)."""
    if not results:
        return np.zeros((n_queries, 0), np.float32), np.zeros((n_queries, 0), np.int64)
    if len(results) == 1:
        return results[0]  # one part's answer is already in order
    distances = np.concatenate([d for d, _ in results], axis=1)
    rids = np.concatenate([r for _, r in results], axis=1)
    return best_k(distances, rids, k, larger_first=False)
