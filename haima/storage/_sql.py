"""Small SQL helpers shared by the store's modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

#: Variables per statement kept well under SQLite's limit (32766).
CHUNK = 10_000


def in_chunks(values: Sequence[Any]) -> Iterator[tuple[list[Any], str]]:
    """`values` in slices that fit one statement, each with its `?,?,…` placeholders."""
    for start in range(0, len(values), CHUNK):
        part = list(values[start : start + CHUNK])
        yield part, ",".join("?" * len(part))
