"""How a process Haima owns is tuned: memory given back to the operating system, short
passes of the cyclic garbage collector, and a GIL handed over sooner.

glibc keeps freed blocks in its heaps for reuse (glibc only; elsewhere nothing happens).
For a database that frees large arrays (request batches, index parts swapped out) that
memory stays resident for good: measured on `haima run` with 20,000 + 10,000 x 384
vectors, 40 MB more after a bulk ingest and ~80 MB more after an index extension than once
the blocks were handed back.

Python's collector, in a full pass, visits every container object: a server holds about
80,000 from its imports, and one pass took 20-40 ms here. Bulk writes set off such passes
(a request's parsed body survives the younger collections), and every reader waited.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: mallopt's parameters: the free space at a heap's top above which free() returns it
#: to the OS, and the size from which a block gets a mapping of its own (unmapped when
#: freed).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD_BYTES = 1 << 20
#: 256 KiB: a request's arrays (1,000 x 384 float32 is 1.5 MiB) and an index's buffers
#: are above it; Python's and SQLite's small blocks far below.
MMAP_THRESHOLD_BYTES = 256 << 10


def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_libc = _glibc()


def return_freed_memory() -> None:
    """Hand the heaps' free memory back to the OS now: a few milliseconds, without the
    GIL (ctypes releases it). Called after an index part is swapped out."""
    if _libc is not None:
        _libc.malloc_trim(0)


def keep_heap_small() -> None:
    """Make free() hand large freed blocks back to the OS for the rest of the process.

    glibc raises its mapping threshold to the largest block freed (up to 32 MiB), so after
    a few large arrays were freed (importing numpy and FAISS frees some) every array of a
    request's size came from a heap, and a worker thread's heap kept them resident once
    freed. Fixed thresholds put large arrays in mappings of their own, which free()
    unmaps, and trim a heap's top past 1 MiB. For processes Haima owns (`haima run`); an
    embedding application keeps its own allocator settings. MALLOC_MMAP_THRESHOLD_ or
    MALLOC_TRIM_THRESHOLD_ in the environment leaves glibc as it is told there."""
    if _libc is None or any(k in os.environ for k in _ENVIRONMENT):
        return
    set_option: Callable[[int, int], int] = _libc.mallopt
    set_option(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    set_option(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


#: Seconds a thread may hold the GIL while another waits for it (Python's default: 5 ms).
GIL_SWITCH_SECONDS = 0.001


def tune_for_serving() -> None:
    """Set up a process that only serves Haima (`haima run` and its workers, once the app
    is made; an application embedding `create_app` keeps its own settings):
    - large freed blocks go back to the OS (`keep_heap_small`);
    - the objects that exist now (modules, classes, the app) are left out of every later
      collection; a collection right after start found no garbage among them to keep;
    - a thread holding the GIL hands it over after 1 ms rather than 5: a query waits for
      the GIL behind a write's decoding and binding (Python code, in another thread)
      several times per request. With a writer adding batches of 500, a reader's slowest
      query took 31 ms instead of 39 (median of five runs, measured by the client);
    - a query's exact scan keeps to one core (`faiss_index.split_single_scans`)."""
    from haima.index.faiss_index import split_single_scans  # faiss: loaded by the app

    keep_heap_small()
    gc.freeze()
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    split_single_scans(False)


@contextmanager
def collector_paused() -> Iterator[None]:
    """No collections inside (a server's imports: many long-lived objects and no
    garbage, ~40 ms of passes over them); the collector is as it was afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
