"""Per-thread deadlines: a request's time budget, checked where long work can stop.

The server runs each engine call under `within(seconds)` (in a worker thread, or inline
when it is quick, see server/http_io.py); SQLite's
progress handler (see `storage/sqlite.py`) calls `expired()` every few thousand virtual
machine steps and aborts the statement once the deadline has passed, so a runaway scan
ends and its transaction rolls back whole. Embedded callers set no deadline: nothing stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Run the block with a deadline `seconds` from now (None: no deadline)."""
    previous = getattr(_local, "at", None)
    _local.at = None if seconds is None else time.monotonic() + seconds
    try:
        yield
    finally:
        _local.at = previous


def expired() -> bool:
    """Whether this thread's deadline has passed (never, without one)."""
    at: float | None = getattr(_local, "at", None)
    return at is not None and time.monotonic() > at
