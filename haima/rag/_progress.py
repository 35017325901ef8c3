"""The ingest progress display: files checked and chunks embedded (rich, stderr, TTY)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from haima._progress import should_show, speed_column


@dataclass
class IngestProgress:
    """Callbacks that draw nothing unless a bar is shown."""

    shown: bool = False
    _bar: Any = None
    _files: Any = None
    _chunks: Any = None

    def file_done(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._files, 1)

    def chunks_done(self, count: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._chunks, count)


@contextmanager
def ingest_progress(files: int, enabled: bool | None) -> Iterator[IngestProgress]:
    """`enabled`: False never; True or None (auto) whenever stderr is a terminal, because
    ingestion is long work however few files there are. `HAIMA_PROGRESS=0` turns it off."""
    if not should_show(files, enabled is not False):
        yield IngestProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # Each row: done/total, its rate (files/s, chunks/s), elapsed and, for files, the ETA.
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        speed_column(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        progress = IngestProgress(
            shown=True,
            _bar=bar,
            _files=bar.add_task("files", total=files),
            _chunks=bar.add_task("chunks embedded", total=None),
        )
        yield progress
