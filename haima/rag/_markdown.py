"""Just enough Markdown structure for RAG: front matter and headings (ATX and setext),
ignoring anything inside fenced code blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_ATX_CLOSING = re.compile(r"(?:^|[ \t]+)#+$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# Lines that cannot be a setext heading's text: list items, quotes, tables, code.
_NOT_SETEXT_TEXT = re.compile(r"^(?: {4}|\t| {0,3}(?:[-*+>|]|\d+[.)])(?:\s|$))")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|`|~~)")


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    start: int  # offset of the heading's first line
    end: int  # offset just after its last line (and newline)


def clean_title(raw: str) -> str:
    """Heading text without link syntax, emphasis markers or backticks."""
    text = _LINK.sub(r"\1", raw)
    return _EMPHASIS.sub("", text).strip()


def front_matter(text: str) -> tuple[dict[str, str], int]:
    """YAML-style front matter (`---` ... `---` at the very top): its simple `key: value`
    pairs and the offset where the document body starts (0 without front matter)."""
    if not text.startswith("---"):
        return {}, 0
    first = text.find("\n")
    if first < 0 or text[:first].strip() != "---":
        return {}, 0
    fields: dict[str, str] = {}
    offset = first + 1
    while offset < len(text):
        newline = text.find("\n", offset)
        end = len(text) if newline < 0 else newline + 1
        line = text[offset:end].strip()
        if line in {"---", "..."}:
            return fields, end
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            fields[key.strip()] = value.strip().strip("\"'")
        offset = end
    return {}, 0  # never closed: not front matter


def _lines(text: str, start: int) -> list[tuple[int, int, str]]:
    """(start, end including the newline, content without it) for each line."""
    out = []
    offset = start
    while offset < len(text):
        newline = text.find("\n", offset)
        end = len(text) if newline < 0 else newline + 1
        out.append((offset, end, text[offset:end].rstrip("\r\n")))
        offset = end
    return out


def headings(text: str, start: int = 0, max_level: int = 6) -> list[Heading]:
    """The headings of `text[start:]` up to `max_level`, in order."""
    lines = _lines(text, start)
    found: list[Heading] = []
    fence: str | None = None
    previous_blank = True
    skip_next = False
    for i, (line_start, line_end, line) in enumerate(lines):
        if skip_next:  # a setext underline already consumed
            skip_next = False
            previous_blank = False
            continue
        opener = _FENCE.match(line)
        if fence is not None:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = None
            continue
        if opener:
            fence = opener.group(1)
            continue
        atx = _ATX.match(line)
        if atx:
            title = clean_title(_ATX_CLOSING.sub("", atx.group(2) or ""))
            level = len(atx.group(1))
            if title and level <= max_level:
                found.append(Heading(level, title, line_start, line_end))
            previous_blank = False
            continue
        if (
            previous_blank
            and line.strip()
            and i + 1 < len(lines)
            and not _NOT_SETEXT_TEXT.match(line)
            and (underline := _SETEXT.match(lines[i + 1][2])) is not None
        ):
            level = 1 if underline.group(1)[0] == "=" else 2
            title = clean_title(line)
            if title and level <= max_level:
                found.append(Heading(level, title, line_start, lines[i + 1][1]))
                skip_next = True
                continue
        previous_blank = not line.strip()
    return found
