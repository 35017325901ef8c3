"""Progress bars with throughput for long runs (embedding, ingestion; rich, on stderr,
TTY only). Shared by every feature that shows progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Auto mode shows a bar only for at least this many texts.
AUTO_THRESHOLD = 256

Advance = Callable[[int], None]


def _noop(_: int) -> None:
    return None


def should_show(total: int, enabled: bool | None) -> bool:
    """`enabled`: False never, True whenever stderr is a terminal, None (auto) also needs
    `total >= AUTO_THRESHOLD`. `HAIMA_PROGRESS=0` turns every bar off."""
    if enabled is False or total <= 0:
        return False
    if os.environ.get("HAIMA_PROGRESS", "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    try:
        tty = sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        return False
    return enabled is True or total >= AUTO_THRESHOLD


@contextmanager
def progress_bar(total: int, description: str, enabled: bool | None) -> Iterator[Advance]:
    """Yield `advance(n)`; draws a transient bar with texts/s when `should_show`."""
    if not should_show(total, enabled):
        yield _noop
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

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        speed_column("texts"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)

        yield advance


def speed_column(unit: str = "") -> Any:
    """A rich progress column showing the task's rate: "1,234 texts/s", or "1,234/s"
    when the task's description names the unit."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class _Speed(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed: Any = task.finished_speed or task.speed
            if not speed:  # no rate measured yet
                return Text("")
            rate = f"{speed:,.0f} {unit}/s" if unit else f"{speed:,.0f}/s"
            return Text(rate, style="progress.data.speed")

    return _Speed()
