"""cProfile around one measured block, on request; shared by the benchmark scripts."""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def profiled(name: str, wanted: set[str], out_dir: Path | None = None) -> Iterator[None]:
    """cProfile the block when `name` was asked for with --profile; prints the top
    functions by cumulative time (and writes a .prof file when `out_dir` is given)."""
    if name not in wanted:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer).sort_stats("cumulative")
        stats.print_stats(30)
        print(f"\n-- profile: {name} " + "-" * 80 + "\n" + buffer.getvalue(), flush=True)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            stats.dump_stats(str(out_dir / f"{name}.prof"))
