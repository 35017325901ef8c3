"""Filter plans cached per (collection, filter), and the filtered views asked for them.

A plan is valid for one `CollectionIndex.version`: any change to the collection makes it
stale, and the next query plans again. The cache is bounded by bytes (exact-scan plans
hold vectors, views hold a graph and vectors; every entry also counts a fixed
`ENTRY_OVERHEAD`, so that plans of filters matching nothing, which hold no arrays, are
bounded too) and by `MAX_ENTRIES`, and evicts the least recently used plan.

A plan used `view_after` times at one version asks for a *filtered view* of each part it
qualifies for (see `PartPlan.wants_view`): an HNSW graph over just the matching vectors.
The backend takes each request (`next_request`), builds the view off the lock and hands
it back (`finish`), which hangs it on the plan if the plan is still current.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from haima.index.faiss_index import VectorIndex
from haima.index.planner import PartPlan

#: Plans of a collection are keyed (collection id, filter).
PlanKey = tuple[str, Hashable]

#: What an entry costs beyond its arrays: its key (a filter's AST), the plan objects and
#: the dict slot; measured at 1-2 KB for filters of a few conditions.
ENTRY_OVERHEAD = 2048
#: Plans kept at most, whatever their size: a chat-memory app filtering by session id
#: asks for a new filter with nearly every query.
MAX_ENTRIES = 4096


@dataclass
class _Entry:
    version: int
    plans: list[PartPlan]
    uses: int = 0
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.nbytes = ENTRY_OVERHEAD + sum(p.nbytes for p in self.plans)


@dataclass(frozen=True)
class PlanCacheStats:
    """What the cache holds, for monitoring (`/metrics`)."""

    plans: int  # cached (collection, filter) plans
    views: int  # filtered views attached to them
    building: int  # views being built
    nbytes: int  # memory the plans and views hold, as the budget counts it


@dataclass(frozen=True)
class ViewRequest:
    """A view to build: `plan` (one part of the plan cached under `key`, at `version`)."""

    key: PlanKey
    version: int
    plan: PartPlan


class PlanCache:
    """Not thread-safe by itself: every caller holds the backend's lock."""

    def __init__(self, budget: int, view_after: int) -> None:
        self.budget = budget
        self.view_after = view_after
        self._entries: OrderedDict[PlanKey, _Entry] = OrderedDict()
        self._bytes = 0
        self._requests: list[ViewRequest] = []
        self._building: list[ViewRequest] = []

    def resize(self, budget: int) -> None:
        """Set the byte budget, evicting what no longer fits."""
        self.budget = budget
        self._evict()

    @property
    def has_requests(self) -> bool:
        return bool(self._requests)

    def get(self, key: PlanKey, version: int) -> list[PartPlan] | None:
        """The plans cached for `key` at `version` (None: absent or stale); counts a use,
        and the `view_after`-th asks for the views they qualify for."""
        entry = self._entries.get(key)
        if entry is None or entry.version != version:
            return None
        self._entries.move_to_end(key)
        entry.uses += 1
        if entry.uses == self.view_after:
            for plan in entry.plans:
                if plan.wants_view and plan.view_nbytes <= self.budget // 2:
                    self._requests.append(ViewRequest(key, version, plan))
        return entry.plans

    def put(self, key: PlanKey, version: int, plans: list[PartPlan]) -> None:
        """Cache `plans` (counted as one use); plans larger than a quarter of the budget
        are not kept."""
        self._drop(key)
        entry = _Entry(version, plans)
        if entry.nbytes > self.budget // 4:
            return
        self._entries[key] = entry
        self._bytes += entry.nbytes
        self._evict()
        self.get(key, version)

    def forget(self, collection_id: str) -> None:
        """Drop every plan (and view) of a collection."""
        for key in [k for k in self._entries if k[0] == collection_id]:
            self._drop(key)
        self._requests = [r for r in self._requests if r.key[0] != collection_id]

    def stats(self) -> PlanCacheStats:
        views = sum(p.view is not None for e in self._entries.values() for p in e.plans)
        return PlanCacheStats(len(self._entries), views, len(self._building), self._bytes)

    def plans_of(self, collection_id: str) -> list[PartPlan]:
        return [p for k, e in self._entries.items() if k[0] == collection_id for p in e.plans]

    # -- views ---------------------------------------------------------------------------

    def next_request(self, collection_id: str | None = None) -> ViewRequest | None:
        """The oldest view still wanted (of `collection_id`, or of any collection), now
        counted as being built until `finish`; requests whose plan went stale or was
        evicted are dropped on the way."""
        keep: list[ViewRequest] = []
        found = None
        for request in self._requests:
            if not self._current(request):
                continue
            if found is None and (collection_id is None or request.key[0] == collection_id):
                found = request
            else:
                keep.append(request)
        self._requests = keep
        if found is not None:
            self._building.append(found)
        return found

    def building(self, collection_id: str) -> bool:
        """Whether a view of the collection is being built."""
        return any(r.key[0] == collection_id for r in self._building)

    def finish(self, request: ViewRequest, view: VectorIndex | None) -> bool:
        """End a build: hang the view on its plan if the plan is still cached and current
        (None: the build failed). Returns whether it was attached."""
        self._building.remove(request)
        if view is None or not self._current(request):
            return False
        entry = self._entries[request.key]
        before = request.plan.nbytes
        request.plan.attach_view(view)
        grown = request.plan.nbytes - before
        entry.nbytes += grown
        self._bytes += grown
        self._evict()
        return True

    def _current(self, request: ViewRequest) -> bool:
        entry = self._entries.get(request.key)
        return (
            entry is not None
            and entry.version == request.version
            and any(p is request.plan for p in entry.plans)
        )

    # -- bookkeeping ---------------------------------------------------------------------

    def _drop(self, key: PlanKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.nbytes

    def _evict(self) -> None:
        while (self._bytes > self.budget or len(self._entries) > MAX_ENTRIES) and self._entries:
            _, entry = self._entries.popitem(last=False)
            self._bytes -= entry.nbytes
