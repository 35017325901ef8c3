"""The query planner: how to search each part of a collection's index for one filter,
with what effort, and which filters earn a view of their own.

Thresholds measured at 100k × 384 on 2 cores (docs/architecture.md §6). A plan is made
once per (filter, index version) and cached (index/plan_cache.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from haima.config import IndexConfig, Metric
from haima.index.faiss_index import (
    Restriction,
    Rids,
    SearchTuning,
    VectorIndex,
    Vectors,
    build_faiss_index,
    faiss_threads,
    prepare,
)

#: Planner thresholds, measured at 100k × 384 on 2 cores. A filter's matching vectors
#: are gathered (once, cached with the plan) and scanned exactly when there are at most
#: EXACT_SCAN_LIMIT of them and, in an ANN part, they are also few (SMALL_EXACT) or at most
#: GATHER_SHARE of it. A scan reads every matching vector: 1,000 take 0.05 ms and 10,000
#: (15 MB) 0.3 ms, as fast as HNSW restricted to a 10% filter, which on real sentence
#: embeddings found only 0.945 of the true top 10 (0.86 at 5%).
EXACT_SCAN_LIMIT = 20_000
SMALL_EXACT = 2_000
GATHER_SHARE = 0.1
#: Below this selectivity ANN search needs ef ∝ 1/selectivity (at 1%, ef 1000 still gave
#: recall 0.92): a large part's filter is scanned exactly, through a bitmap.
SCAN_SELECTIVITY = 0.05
#: Quantized kinds search this many times k candidates, then re-rank them exactly.
RERANK_FACTOR = {"ivf_pq": 10, "sq8": 4}
#: Below this share of an HNSW part, a restricted search raises ef_search by share/s.
EF_BOOST_SHARE = 0.15
#: Upper bound for the raised HNSW ef_search of a selective filter.
MAX_EF_SEARCH = 4_096
#: A filter that repeats and matches SMALL_EXACT or more vectors of an HNSW part, at
#: most VIEW_MAX_SHARE of it, gets a *filtered view*: an HNSW graph of its matching
#: vectors alone. At 10% of 100k × 384 the view answers in 0.12-0.17 ms at recall 0.99+
#: (0.3-0.4 ms for the shared graph restricted by a bitmap, or for an exact scan) and
#: takes ~1 s to build, in the background. Fewer matches are scanned exactly as fast;
#: above half of the part the restricted shared graph loses little (recall 0.98).
VIEW_MIN_MATCHES = SMALL_EXACT
VIEW_MAX_SHARE = 0.5


VectorLoader = Callable[[Rids], Vectors]


@dataclass
class PartPlan:
    """How to search one part (main or tail) for one filter."""

    part: str  # "main" or "tail"
    exact_rids: Rids | None = None  # exact scan: the rids and their prepared vectors
    exact_vectors: Vectors | None = None
    restriction: Restriction | None = None  # ANN or flat scan over these positions only
    matches: int = 0
    #: With a restriction: scan the part's stored vectors exactly instead of walking the ANN
    #: index (a selective filter over a large part).
    scan: bool = False
    #: Bytes a filtered view of this part would take; 0 when the part does not qualify.
    view_nbytes: int = 0
    #: The filtered view, once built: an HNSW graph of the matching vectors alone.
    view: VectorIndex | None = None

    @property
    def nbytes(self) -> int:
        total = self.view_nbytes if self.view is not None else 0
        for array in (self.exact_rids, self.exact_vectors, self.restriction):
            if array is not None:
                total += array.nbytes
        return total

    @property
    def wants_view(self) -> bool:
        return self.view is None and self.view_nbytes > 0

    def attach_view(self, view: VectorIndex) -> None:
        """Search `view` from now on; the gathered vectors it replaces are let go."""
        self.view = view
        self.exact_rids = self.exact_vectors = None


def view_nbytes(count: int, dim: int, cfg: IndexConfig) -> int:
    """Memory of an HNSW view of `count` vectors: the vectors, 2·M level-0 links of 4 bytes
    and FAISS's per-node bookkeeping (upper levels add ~1/M more links)."""
    return count * (4 * dim + 10 * cfg.max_neighbors + 16)


def build_view(rids: Rids, vectors: Vectors, metric: Metric, cfg: IndexConfig) -> VectorIndex:
    """An HNSW graph of `vectors` (prepared, rids ascending) with the collection's
    settings, built on one thread: it runs in the background beside queries."""
    index = build_faiss_index("hnsw", vectors.shape[1], metric, cfg, len(rids))
    view = VectorIndex("hnsw", index, metric)
    with faiss_threads(1):
        view.add(rids, vectors)
    return view


def plan_part(
    name: str,
    part: VectorIndex,
    matches: Rids,
    metric: Metric,
    cfg: IndexConfig,
    loader: VectorLoader,
) -> PartPlan | None:
    """An exact scan over the part's matching vectors, or a restriction to them (None:
    the part holds none)."""
    positions = part.positions(matches)
    positions = positions[positions >= 0]
    if not len(positions):
        return None
    count = len(positions)
    share = count / part.size
    ann_part = name == "main"
    viewable = (
        ann_part and part.kind == "hnsw" and count >= VIEW_MIN_MATCHES and share <= VIEW_MAX_SHARE
    )
    cost = view_nbytes(count, part.dim, cfg) if viewable else 0
    if count <= EXACT_SCAN_LIMIT and (
        not ann_part or share <= GATHER_SHARE or count <= SMALL_EXACT
    ):
        rids = part.rids[positions].copy()
        vectors = part.stored_vectors(positions)
        if vectors is None:
            vectors = prepare(loader(rids), metric)
        return PartPlan(name, rids, np.ascontiguousarray(vectors), matches=count, view_nbytes=cost)
    return PartPlan(
        name,
        restriction=part.restriction_of(positions),
        matches=count,
        scan=share <= SCAN_SELECTIVITY and part.exact,
        view_nbytes=cost,
    )


@functools.lru_cache(maxsize=4096)
def effective_tuning(
    tuning: SearchTuning, k: int, matches: int, size: int, nlist: int
) -> SearchTuning:
    """The search effort for `k` results among `matches` of a part's `size` vectors (an
    IVF part has `nlist` lists; 0 otherwise). Cached: it is asked on every query."""
    # FAISS visits filtered-out nodes but keeps only allowed ones, so a graph search
    # holds fewer matches the more selective the filter. On real sentence embeddings
    # (42k, ef 100 unfiltered: recall 0.994) ef 100 found 0.97 at 20%, 0.945 at 10%,
    # 0.86 at 5%; ef 150 at 10% and 300 at 5% found 0.97: below 15%, ef grows by
    # 0.15/s (the planner scans filters under 5% of a part exactly). Never below 2·k.
    # IVF loses matches with every list it skips: nprobe grows by √(1/s), up to 8×.
    selectivity = max(matches, 1) / max(size, 1)
    boost = max(EF_BOOST_SHARE / selectivity, 1.0)
    probe_boost = min(math.sqrt(1 / selectivity), 8.0) if selectivity < 0.95 else 1.0
    nprobe = math.ceil(tuning.nprobe * probe_boost)
    if nlist:
        nprobe = min(nprobe, nlist)
    return SearchTuning(
        ef_search=min(max(math.ceil(tuning.ef_search * boost), 2 * k), MAX_EF_SEARCH),
        nprobe=nprobe,
    )
