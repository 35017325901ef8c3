"""Splitters: long text into chunks that fit an embedding model, cut where meaning breaks.

    from haima.rag import RecursiveSplitter, MarkdownSplitter
    RecursiveSplitter(chunk_size=500, chunk_overlap=50).split_text(text)
    RecursiveSplitter(300, 30, length=tokenizer)      # sizes in tokens (anything with .encode)
    MarkdownSplitter(500, 50).split_documents(docs)   # adds metadata["headings"] = "Intro > Install"

`RecursiveSplitter` cuts the text into *atoms*: paragraphs, or for a paragraph over the
limit its sentences (Chinese 。！？；… and English .!?, with closing quotes), then lines,
clauses (，、： and ", "), words, and characters as the last resort. Atoms are merged
greedily into chunks; when a chunk is full it ends at the strongest boundary in its second
half (a paragraph break rather than a sentence end, a sentence end rather than a word).
Consecutive chunks share up to `chunk_overlap` of whole atoms.

Guarantees: every chunk measures at most `chunk_size` (by `length`); consecutive chunks
overlap by at most `chunk_overlap`; chunks cover all non-whitespace text, in order; a
sentence that fits within `chunk_size` is never cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from haima.errors import InvalidArgumentError
from haima.rag._markdown import front_matter, headings
from haima.rag._types import Document

LengthFunction = Callable[[str], int]

_CLOSERS = "」』”’\"'）)】》〉\\]"
#: Boundary patterns, strongest first; a text is cut just after each match.
PARAGRAPH = r"\n[^\S\n]*\n\s*"
SENTENCE = (
    rf"(?:[。！？；]+|…+|\.{{3,}}|[!?]+(?![A-Za-z0-9_=&/]))[{_CLOSERS}]*[^\S\n]*"
    rf"|\.+[{_CLOSERS}]*(?=\s|$)[^\S\n]*"
)
LINE = r"\n"
CLAUSE = r"[，、：]+[^\S\n]*|[,;:](?=\s)[^\S\n]*"
WORD = r"\s+"
DEFAULT_SEPARATORS: tuple[str, ...] = (PARAGRAPH, SENTENCE, LINE, CLAUSE, WORD)

#: A full chunk ends at the strongest boundary that leaves it at least this full.
MIN_FILL = 0.5


@runtime_checkable
class Tokenizer(Protocol):
    """Anything with `encode(text)` returning token ids (tiktoken, Hugging Face...)."""

    def encode(self, text: str, /) -> Any: ...


@runtime_checkable
class Splitter(Protocol):
    def split_documents(self, documents: Iterable[Document]) -> list[Document]: ...


def length_function(length: LengthFunction | Tokenizer | None) -> tuple[LengthFunction, str]:
    """(a `str -> int` measure, a short name for it): characters when None, tokens for an
    object with `encode`, else the callable itself."""
    if length is None:
        return len, "chars"
    encode = getattr(length, "encode", None)
    if callable(encode):
        name = getattr(length, "name_or_path", None) or getattr(length, "name", None)

        def count(text: str) -> int:
            encoded = encode(text)
            return len(getattr(encoded, "ids", encoded))  # HF `tokenizers` return Encoding

        return count, f"tokens:{name or type(length).__name__}"
    if callable(length):
        return length, f"length:{getattr(length, '__qualname__', type(length).__name__)}"
    raise InvalidArgumentError(
        f"length: expected a callable str -> int or a tokenizer with encode(), got {length!r}"
    )


class RecursiveSplitter:
    """Chunks of at most `chunk_size` (characters, or `length(text)` units) that overlap
    by at most `chunk_overlap`, cut at paragraphs, then sentences, lines, clauses, words,
    characters. `separators` replaces the boundary regexes (strongest first)."""

    def __init__(
        self,
        chunk_size: int = 500,
        chunk_overlap: int = 50,
        *,
        length: LengthFunction | Tokenizer | None = None,
        separators: Sequence[str] | None = None,
    ) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidArgumentError(f"chunk_size: expected an int >= 1, got {chunk_size!r}")
        if (
            isinstance(chunk_overlap, bool)
            or not isinstance(chunk_overlap, int)
            or not 0 <= chunk_overlap < chunk_size
        ):
            raise InvalidArgumentError(
                f"chunk_overlap: expected an int from 0 to chunk_size - 1 ({chunk_size - 1}), "
                f"got {chunk_overlap!r}"
            )
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._length, self.unit = length_function(length)
        self._custom_separators = separators is not None
        self._patterns = [
            re.compile(p) for p in (DEFAULT_SEPARATORS if separators is None else separators)
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.chunk_size}, {self.chunk_overlap}, {self.unit})"

    @property
    def fingerprint(self) -> str:
        """Identifies the chunks this splitter makes (ingest re-splits when it changes)."""
        custom = ",custom" if self._custom_separators else ""
        return f"recursive({self.chunk_size},{self.chunk_overlap},{self.unit}{custom})"

    # -- public -------------------------------------------------------------------------

    def split_text(self, text: str) -> list[str]:
        return [text[a:b] for a, b in self.spans(text)]

    def split_documents(self, documents: Iterable[Document]) -> list[Document]:
        """Each document's chunks, with a copy of its metadata."""
        return [
            Document(document.text[a:b], dict(document.metadata))
            for document in documents
            for a, b in self.spans(document.text)
        ]

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) offsets of the chunks in `text`, whitespace trimmed."""
        atoms: list[tuple[int, int, int]] = []
        self._atomize(text, 0, len(text), 0, -1, atoms)
        return self._merge(text, atoms)

    # -- atoms --------------------------------------------------------------------------

    def _fits(self, text: str, start: int, end: int) -> bool:
        return self._length(text[start:end]) <= self.chunk_size

    def _atomize(
        self,
        text: str,
        start: int,
        end: int,
        level: int,
        before: int,
        out: list[tuple[int, int, int]],
    ) -> None:
        """Append (start, end, strength of the boundary before it) for pieces of
        `text[start:end]` that fit; a lower strength is a stronger boundary."""
        if start >= end:
            return
        if self._fits(text, start, end):
            out.append((start, end, before))
            return
        if level == len(self._patterns):  # characters, the last resort
            for i in range(start, end):
                if not self._fits(text, i, i + 1):
                    raise InvalidArgumentError(
                        f"chunk_size={self.chunk_size} is smaller than one character: "
                        f"{text[i]!r} measures {self._length(text[i])}"
                    )
                out.append((i, i + 1, before if i == start else level))
            return
        cuts = [m.end() for m in self._patterns[level].finditer(text, start, end)]
        bounds = [start, *(c for c in cuts if start < c < end), end]
        for i in range(len(bounds) - 1):
            self._atomize(
                text, bounds[i], bounds[i + 1], level + 1, before if i == 0 else level, out
            )

    # -- merging ------------------------------------------------------------------------

    def _merge(self, text: str, atoms: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
        n = len(atoms)

        def measure(first: int, stop: int) -> int:  # atoms first .. stop-1
            return self._length(text[atoms[first][0] : atoms[stop - 1][1]])

        limit = self.chunk_size

        def fits_from(first: int) -> Callable[[int], bool]:
            return lambda stop: measure(first, stop) <= limit

        out: list[tuple[int, int]] = []
        start = 0
        fresh = 0  # the first atom with text that no earlier chunk holds
        while start < n:
            end = _last_true(start + 1, n, fits_from(start))
            if end < n:
                end = self._best_break(atoms, start, end, min(fresh + 1, end), measure)
            span = _strip(text, atoms[start][0], atoms[end - 1][1])
            if span is not None:
                out.append(span)
            fresh = end
            while fresh < n and text[atoms[fresh][0] : atoms[fresh][1]].isspace():
                fresh += 1
            if fresh >= n:
                break
            # The next chunk repeats the last atoms that fit in the overlap...
            following = end
            while following - 1 > start and measure(following - 1, end) <= self.chunk_overlap:
                following -= 1
            # ...as long as the first new text still fits after them (else the chunk would
            # be nothing but overlap), and the next chunk starts later than this one.
            while following < end and (
                measure(following, fresh + 1) > limit
                or (span is not None and atoms[following][0] <= span[0])
            ):
                following += 1
            start = following
        return out

    def _best_break(
        self,
        atoms: list[tuple[int, int, int]],
        start: int,
        end: int,
        minimum: int,
        measure: Callable[[int, int], int],
    ) -> int:
        """Where a full chunk of atoms start..end-1 should stop: the strongest boundary
        (the latest among equals) that leaves it at least MIN_FILL full, and not before
        `minimum` (the chunk must hold new text, not only overlap)."""
        floor = MIN_FILL * self.chunk_size
        if measure(start, end) < floor:
            return end
        # the smallest stop that is full enough (measure grows with stop)
        lowest = _first_true(start + 1, end, lambda stop: measure(start, stop) >= floor)
        lowest = max(lowest, minimum)
        best = end
        for stop in range(end - 1, lowest - 1, -1):
            if atoms[stop][2] < atoms[best][2]:
                best = stop
        return best


def _last_true(low: int, high: int, ok: Callable[[int], bool]) -> int:
    """The largest x in [low, high] with ok(x), given ok(low) and ok monotone (true, then
    false). Gallops from `low` so that its cost follows the answer, not the text size."""
    step = 1
    good = low
    while True:
        probe = min(good + step, high)
        if probe == good:
            return good
        if not ok(probe):
            bad = probe
            break
        good = probe
        step *= 2
    while bad - good > 1:
        middle = (good + bad) // 2
        if ok(middle):
            good = middle
        else:
            bad = middle
    return good


def _first_true(low: int, high: int, ok: Callable[[int], bool]) -> int:
    """The smallest x in [low, high] with ok(x), given ok(high) and ok monotone."""
    while low < high:
        middle = (low + high) // 2
        if ok(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


class MarkdownSplitter:
    """Splits Markdown at its headings, then each section with a `RecursiveSplitter`.

    Every chunk gets `metadata["headings"]`, the path of headings above it
    ("Intro > Install"); a chunk never spans two sections. A heading with no text under
    it joins the next section. Front matter is skipped; headings in code blocks are
    ignored. Headings deeper than `max_level` do not start sections."""

    def __init__(
        self,
        chunk_size: int = 500,
        chunk_overlap: int = 50,
        *,
        length: LengthFunction | Tokenizer | None = None,
        max_level: int = 6,
    ) -> None:
        self.inner = RecursiveSplitter(chunk_size, chunk_overlap, length=length)
        self.max_level = max_level

    def __repr__(self) -> str:
        inner = self.inner
        return f"{type(self).__name__}({inner.chunk_size}, {inner.chunk_overlap}, {inner.unit})"

    @property
    def fingerprint(self) -> str:
        return f"markdown{self.inner.fingerprint[len('recursive') :]},h{self.max_level}"

    def sections(self, text: str) -> list[tuple[str, int, int]]:
        """(heading path, start, end) of each section with text."""
        _, body = front_matter(text)
        out: list[tuple[str, int, int]] = []
        stack: list[tuple[int, str]] = []
        section_start, content_start = body, body
        for heading in headings(text, body, self.max_level):
            if text[content_start : heading.start].strip():
                path = " > ".join(title for _, title in stack)
                out.append((path, section_start, heading.start))
                section_start = heading.start
            # else: nothing under the previous heading; its section continues here
            stack = [(lv, t) for lv, t in stack if lv < heading.level]
            stack.append((heading.level, heading.title))
            content_start = heading.end
        if text[content_start:].strip():
            out.append((" > ".join(title for _, title in stack), section_start, len(text)))
        return out

    def split_with_headings(self, text: str) -> list[tuple[str, str]]:
        """(heading path, chunk) pairs."""
        return [
            (path, text[start + a : start + b])
            for path, start, end in self.sections(text)
            for a, b in self.inner.spans(text[start:end])
        ]

    def split_text(self, text: str) -> list[str]:
        return [chunk for _, chunk in self.split_with_headings(text)]

    def split_documents(self, documents: Iterable[Document]) -> list[Document]:
        out = []
        for document in documents:
            for path, chunk in self.split_with_headings(document.text):
                metadata = dict(document.metadata)
                if path:
                    metadata["headings"] = path
                out.append(Document(chunk, metadata))
        return out
