"""Client settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from haima.errors import InvalidArgumentError


@dataclass(frozen=True)
class Settings:
    #: `reset()` deletes everything; it raises unless this is set.
    allow_reset: bool = False
    #: Build ANN indexes in a background thread (queries stay exact meanwhile). Off,
    #: indexes are built when `Collection.build_index()` is called.
    background_indexing: bool = True
    #: SQLite's `synchronous`: FULL survives power loss; NORMAL survives process crashes.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    #: Seconds without writes to a collection before background indexing starts, so
    #: that bulk loads run at full speed. While the vectors awaiting indexing are few
    #: (up to 64 MiB of them), it also waits this long after the last query, for at
    #: most ten times this long after the last write: a build slows queries beside it.
    index_delay: float = 1.0
    #: Vectors awaiting indexing (searched exactly meanwhile) beyond which indexing
    #: starts even while writes continue.
    max_unindexed: int = 200_000
    #: Seconds between index snapshots while a collection keeps changing.
    snapshot_interval: float = 30.0
    #: Queries with one filter, while the collection is unchanged, after which a filter
    #: matching 2,000+ vectors and at most half of an HNSW index gets its own graph of
    #: those vectors (a *filtered view*, built in the background; see
    #: docs/architecture.md §6). 0: never.
    filter_view_after: int = 3
    #: MiB the cache of filter plans and filtered views may hold. None: twice what the
    #: vectors of the open collections take, between 32 and 256 MiB.
    plan_cache_mb: float | None = None

    def __post_init__(self) -> None:
        for name, integer in _NUMBERS.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or (integer and not isinstance(value, int)) or value < 0:
                expected = "an integer" if integer else "a number"
                raise InvalidArgumentError(
                    f"Settings.{name}: expected {expected} >= 0, got {value!r}"
                )
        cache = self.plan_cache_mb
        if cache is not None and (
            not isinstance(cache, int | float) or isinstance(cache, bool) or not cache > 0
        ):
            raise InvalidArgumentError(
                f"Settings.plan_cache_mb: expected None or a number > 0, got {cache!r}"
            )
        if self.snapshot_interval == 0:
            raise InvalidArgumentError("Settings.snapshot_interval: must be > 0, got 0")
        if self.sqlite_synchronous not in ("FULL", "NORMAL"):
            raise InvalidArgumentError(
                "Settings.sqlite_synchronous: expected 'FULL' or 'NORMAL', "
                f"got {self.sqlite_synchronous!r}"
            )


#: The numeric settings, each ≥ 0; True: integers only.
_NUMBERS = {
    "index_delay": False,
    "max_unindexed": True,
    "snapshot_interval": False,
    "filter_view_after": True,
}
