"""The small records the RAG toolkit passes around: loaded text, and what went wrong."""

from __future__ import annotations

from dataclasses import dataclass, field

from haima.errors import HaimaError

#: Haima metadata values are flat: str, int, float or bool.
Scalar = str | int | float | bool


@dataclass
class Document:
    """A unit of loaded text (a file, a page, a row, a section) or a chunk of one.

    `metadata` holds flat scalars only, because that is what a Haima record can store:
    `source` (the path, relative to the ingested folder), `title` where known, and position
    keys such as `page`, `headings` ("Intro > Install"), `row`, `line` or `chunk`.
    """

    text: str
    metadata: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadFailure:
    """A file that could not be read; it was skipped."""

    source: str
    error: str

    def __str__(self) -> str:
        return f"{self.source}: {self.error}"


class LoadError(HaimaError):
    """One file could not be loaded (unreadable, wrong format, missing text field...)."""

    status_code = 400
