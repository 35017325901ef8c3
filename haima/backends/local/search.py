"""Search: vector (through the planner's cached plans), keyword (BM25 in FTS5) and hybrid
(both fused, see index/fusion.py), answered as Chroma's query results."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from haima.backends.base import QueryMode
from haima.backends.local.indexes import IndexCache, IndexSlot
from haima.backends.local.results import RECORD_FIELDS, ids_result, padded, query_result
from haima.backends.parsed_filters import names_ids
from haima.config import CollectionConfiguration, keyword_index_missing
from haima.errors import DimensionMismatchError, InvalidArgumentError
from haima.filters import Filter
from haima.index.collection_index import CollectionIndex
from haima.index.faiss_index import (
    Rids,
    SearchTuning,
    Vectors,
    faiss_threads,
    prepare,
    search_threads,
)
from haima.index.fusion import convex_fusion, reciprocal_rank_fusion
from haima.index.plan_cache import PlanCache
from haima.index.planner import PartPlan
from haima.settings import Settings
from haima.storage.rows import CollectionRow
from haima.storage.sqlite import Store
from haima.types import IncludeField, QueryResult

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
HYBRID_CANDIDATE_CEILING = 1 << 31

Distances = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Search:
    """What one `query` call asks for (see `Backend.query`)."""

    mode: QueryMode
    embeddings: Vectors | None
    texts: list[str] | None
    n_results: int
    filt: Filter | None


class Searcher:
    def __init__(
        self,
        lock: threading.RLock,
        store: Store,
        settings: Settings,
        indexes: IndexCache,
        plans: PlanCache,
        wake_indexer: Callable[[], None],
    ) -> None:
        self.lock = lock
        self.store = store
        self.settings = settings
        self.indexes = indexes
        self.plans = plans
        self._wake_indexer = wake_indexer
        #: Collections whose keyword index this process has seen built by its segmenter.
        self._keyword_checked: set[str] = set()

    def query(
        self, collection_id: str, search: Search, include: Sequence[IncludeField]
    ) -> QueryResult:
        # A record found by the search may be deleted by another process before its row
        # is read: search again (twice), then answer with what could be read.
        for attempt in range(3):
            answer = self._query_once(collection_id, search, include, partial=attempt == 2)
            if answer is not None:
                return answer
        raise AssertionError("a partial query always answers")

    def forget(self, collection_id: str) -> None:
        """A deleted collection: its keyword index is gone with it."""
        self._keyword_checked.discard(collection_id)

    def _query_once(
        self,
        collection_id: str,
        search: Search,
        include: Sequence[IncludeField],
        partial: bool = False,
    ) -> QueryResult | None:
        """One search. Each SQL read is a single statement (its own snapshot); if a record
        found by the search was deleted by another process before its row was read, the
        index is marked stale and None is returned, so the caller searches again."""
        if collection_id not in self.indexes.slots:  # a first query: load off the lock
            self.indexes.load_unlocked(collection_id, self.lock)
        with self.lock:
            row, config, slot = self.indexes.for_query(collection_id)
            if search.mode == "vector":
                assert search.embeddings is not None
                if slot is not None:
                    slot.last_query = time.monotonic()  # the indexer waits for a pause
                distances, rids = self._vector_search(
                    row, config, slot, search.embeddings, search.n_results, search.filt
                )
            else:
                distances, rids = self._text_search(row, config, slot, search)
            if (
                slot is not None
                and search.mode == "vector"  # the index and the search saw one state
                and RECORD_FIELDS.isdisjoint(include)
            ):
                return ids_result(rids, distances, slot.index.ids, include)
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
        return query_result(rids, distances, records, include, row.dimension)

    # -- vector --------------------------------------------------------------------------

    def _vector_search(
        self,
        row: CollectionRow,
        config: CollectionConfiguration,
        slot: IndexSlot | None,
        query_embeddings: Vectors,
        n_results: int,
        filt: Filter | None,
    ) -> tuple[Distances, Rids]:
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
        plans = None if filt is None else self._plans_for(row, index, filt)
        queries = prepare(query_embeddings, index.metric)
        cfg = config.index
        tuning = SearchTuning(ef_search=cfg.ef_search, nprobe=cfg.nprobe)
        with faiss_threads(search_threads(cfg.num_threads, len(queries))):
            loader = self.indexes.loader(row)
            return index.search(queries, min(n_results, live), plans, tuning, loader)

    def _plans_for(
        self, row: CollectionRow, index: CollectionIndex, filt: Filter
    ) -> list[PartPlan]:
        key = (row.id, filt)
        plans = self.plans.get(key, index.version)
        if plans is None:
            matches = self._matching_rids(row.id, index, filt)
            plans = index.plan(matches, self.indexes.loader(row))
            if names_ids(filt):
                return plans  # `query(ids=...)` names records for one query: not cached
            self.plans.resize(self._plan_budget())
            self.plans.put(key, index.version, plans)
        if self.plans.has_requests:  # a view is wanted: the indexer hands it to the builder
            self._wake_indexer()
        return plans

    def _plan_budget(self) -> int:
        """Bytes the plan cache may hold: the setting, or twice the open collections'
        vectors within the floor and the ceiling (a cache much larger than the data it
        serves buys little)."""
        if self.settings.plan_cache_mb is not None:
            return int(self.settings.plan_cache_mb * 1024 * 1024)
        data = self.indexes.vector_bytes()
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

    # -- keyword and hybrid --------------------------------------------------------------

    def _text_search(
        self,
        row: CollectionRow,
        config: CollectionConfiguration,
        slot: IndexSlot | None,
        search: Search,
    ) -> tuple[Distances, Rids]:
        """Keyword or hybrid search, as (distances, rids) like `_vector_search`.

        keyword: distance = FTS5's bm25(), the negated BM25 score (≤ 0, lower is better).
        hybrid: each side ranks max(4 × n_results, 50) candidates under the same filter;
        the collection's fusion orders them; distance = 1 − fused score (0 … 1)."""
        assert search.texts is not None
        if not config.keyword.enabled or not self._keyword_ready(row.id):
            raise keyword_index_missing(search.mode, row.name)
        if search.mode == "keyword":
            return padded(self._keyword_ranks(row, search.texts, search.n_results, search.filt))
        return padded(self._hybrid_ranks(row, config, slot, search))

    def _hybrid_ranks(
        self,
        row: CollectionRow,
        config: CollectionConfiguration,
        slot: IndexSlot | None,
        search: Search,
    ) -> list[list[tuple[int, float]]]:
        """Per query, (rid, fused distance) of the best records of both rankings."""
        assert search.embeddings is not None and search.texts is not None
        candidates = min(
            max(HYBRID_CANDIDATE_FACTOR * search.n_results, HYBRID_CANDIDATE_FLOOR),
            HYBRID_CANDIDATE_CEILING,  # 4 × a huge n_results would not fit SQLite's LIMIT
        )
        vector_distances, vector_rids = self._vector_search(
            row, config, slot, search.embeddings, candidates, search.filt
        )
        keyword_hits = self._keyword_ranks(row, search.texts, candidates, search.filt)
        keyword = config.keyword
        fused = []
        for distances, rids, by_words in zip(
            vector_distances.tolist(), vector_rids.tolist(), keyword_hits, strict=True
        ):
            by_vector = [(r, d) for r, d in zip(rids, distances, strict=True) if r >= 0]
            if keyword.fusion == "rrf":
                rankings = [[r for r, _ in by_vector], [r for r, _ in by_words]]
                fused.append(reciprocal_rank_fusion(rankings, keyword.rrf_k, search.n_results))
            else:
                fused.append(convex_fusion(by_words, by_vector, keyword.weight, search.n_results))
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
