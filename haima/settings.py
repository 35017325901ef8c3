"""Client settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
    #: that bulk loads run at full speed.
    index_delay: float = 1.0
    #: Vectors awaiting indexing (searched exactly meanwhile) beyond which indexing
    #: starts even while writes continue.
    max_unindexed: int = 200_000
    #: Seconds between index snapshots while a collection keeps changing.
    snapshot_interval: float = 30.0
