"""One function per file format: bytes in, documents (and warnings) out.

A format function raises `LoadError` when the file cannot be used at all; problems with
single rows or lines become warnings and the rest of the file still loads. `source` and
`title` are added by the caller; these functions set the position keys (`page`,
`headings`, `row`, `line`) and, for tables, the other columns.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from haima.rag._deps import require
from haima.rag._html import html_to_text
from haima.rag._markdown import front_matter, headings
from haima.rag._text import decode
from haima.rag._types import Document, LoadError, Scalar

#: Tried in this order when no text field is named for CSV/JSONL.
DEFAULT_TEXT_FIELDS = ("text", "content", "document", "page_content", "body")

#: Metadata keys the loaders and `ingest` set; a table column with one of these names is
#: kept under "field_<name>" so that it neither overwrites them nor is lost.
RESERVED_KEYS = frozenset(
    {
        "source", "source_hash", "title", "page", "headings", "row", "line",
        "chunk", "chunks", "ingest_settings",
    }
)  # fmt: skip


@dataclass(frozen=True)
class LoadOptions:
    text_field: str | None = None
    encoding: str | None = None


@dataclass
class Loaded:
    documents: list[Document]
    title: str | None = None
    warnings: list[str] = field(default_factory=list)


# -- plain text formats ------------------------------------------------------------------


def load_text(data: bytes, options: LoadOptions) -> Loaded:
    return Loaded([Document(decode(data, options.encoding))])


_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")


def load_rst(data: bytes, options: LoadOptions) -> Loaded:
    text = decode(data, options.encoding)
    lines = text.splitlines()
    title = None
    for i, line in enumerate(lines[:40]):  # the document title comes first, if at all
        underlined = i + 1 < len(lines) and _RST_UNDERLINE.match(lines[i + 1])
        if line.strip() and underlined and not _RST_UNDERLINE.match(line):
            title = line.strip()
            break
    return Loaded([Document(text)], title)


def load_markdown(data: bytes, options: LoadOptions) -> Loaded:
    text = decode(data, options.encoding)
    fields, body_start = front_matter(text)
    body = text[body_start:]
    title = fields.get("title") or None
    if title is None:
        found = headings(body)
        first_h1 = next((h for h in found if h.level == 1), None)
        title = first_h1.title if first_h1 else None
    return Loaded([Document(body)], title)


def load_html(data: bytes, options: LoadOptions) -> Loaded:
    raw = decode(data, options.encoding)
    text, title = html_to_text(raw)
    return Loaded([Document(text)], title)


# -- PDF and Word ------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _pypdf_warnings() -> Iterator[list[str]]:
    """pypdf logs what it repairs in a damaged file; collect it for the report instead
    of letting it reach stderr."""
    logger = logging.getLogger("pypdf")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def load_pdf(data: bytes, options: LoadOptions) -> Loaded:
    pypdf = require("pypdf", package="pypdf", purpose="reading PDF files")
    documents = []
    with _pypdf_warnings() as warnings:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("the PDF is encrypted with a password")
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                documents.append(Document(text, {"page": number}))
    if not documents and len(reader.pages) > 0:
        raise LoadError(
            f"no extractable text on any of its {len(reader.pages)} pages "
            "(a scanned PDF needs OCR first)"
        )
    info = reader.metadata
    title = str(info.title).strip() if info is not None and info.title else None
    return Loaded(documents, title or None, [f"pypdf: {m}" for m in dict.fromkeys(warnings)])


def _heading_level(style_name: str) -> int | None:
    """Word's built-in heading styles: "Title" (0), "Heading 1" ... "Heading 9"."""
    if style_name == "Title":
        return 0
    match = re.fullmatch(r"Heading (\d)", style_name)
    return int(match.group(1)) if match else None


def load_docx(data: bytes, options: LoadOptions) -> Loaded:
    docx = require("docx", package="python-docx", purpose="reading Word (.docx) files")
    document = docx.Document(io.BytesIO(data))
    title: str | None = (document.core_properties.title or "").strip() or None
    sections: list[Document] = []
    path: list[tuple[int, str]] = []  # the open headings: (level, text)
    body: list[str] = []
    has_content = False

    def flush() -> None:
        nonlocal body, has_content
        # A heading with nothing under it joins the next section, as in Markdown.
        if has_content:
            metadata: dict[str, Scalar] = {}
            if path:
                metadata["headings"] = " > ".join(text for _, text in path)
            sections.append(Document("\n\n".join(body), metadata))
            body, has_content = [], False

    for block in document.iter_inner_content():
        if isinstance(block, docx.table.Table):
            rows = [_table_row(row.cells) for row in block.rows]
            text = "\n".join(r for r in rows if r)
            if text:
                body.append(text)
                has_content = True
            continue
        text = block.text.strip()
        if not text:
            continue
        level = _heading_level(block.style.name if block.style is not None else "")
        if level is None:
            body.append(text)
            has_content = True
            continue
        if level == 0:  # the document's title: metadata, not part of heading paths
            title = title or text
            body.append(text)
            continue
        flush()
        if title is None and level == 1 and not path and not sections:
            title = text
        path = [(lv, t) for lv, t in path if lv < level] + [(level, text)]
        body.append(text)
    flush()
    return Loaded(sections, title)


def _table_row(cells: Iterable[Any]) -> str:
    texts: list[str] = []
    for cell in cells:
        text = " ".join(cell.text.split())
        if text and (not texts or texts[-1] != text):  # merged cells repeat their text
            texts.append(text)
    return " | ".join(texts)


# -- tables ------------------------------------------------------------------------------


def _text_field(keys: Iterable[str], chosen: str | None, kind: str) -> str:
    available = list(keys)
    if chosen is not None:
        if chosen not in available:
            raise LoadError(
                f"no {kind} {chosen!r} (it has: {', '.join(map(repr, available)) or 'none'})"
            )
        return chosen
    for candidate in DEFAULT_TEXT_FIELDS:
        if candidate in available:
            return candidate
    raise LoadError(
        f"no text {kind}: name one with text_field= (--text-field); it has "
        f"{', '.join(map(repr, available)) or 'none'}"
    )


_INT = re.compile(r"-?(?:0|[1-9]\d{0,17})")
_FLOAT = re.compile(r"-?(?:0|[1-9]\d*)?\.\d+(?:[eE][-+]?\d+)?|-?(?:0|[1-9]\d*)[eE][-+]?\d+")


def _csv_value(raw: str) -> Scalar:
    """Numbers become numbers (so that range filters work); "007" and the rest stay text."""
    value = raw.strip()
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    return value


def _metadata_key(key: str) -> str | None:
    key = key.strip()
    if not key or key.startswith("$"):
        return None  # not a valid Haima metadata key
    return f"field_{key}" if key in RESERVED_KEYS else key


def load_csv(data: bytes, options: LoadOptions, delimiter: str | None = None) -> Loaded:
    text = decode(data, options.encoding)
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    column = _text_field(reader.fieldnames or [], options.text_field, "column")
    documents = []
    warnings = []
    for number, row in enumerate(reader, start=1):
        body = (row.get(column) or "").strip()
        if not body:
            warnings.append(f"row {number}: empty {column!r}, skipped")
            continue
        metadata: dict[str, Scalar] = {"row": number}
        for key, value in row.items():
            name = _metadata_key(key) if isinstance(key, str) else None  # None: extra cells
            if name is None or key == column or not isinstance(value, str) or not value.strip():
                continue
            metadata[name] = _csv_value(value)
        documents.append(Document(body, metadata))
    return Loaded(documents, warnings=warnings)


def load_tsv(data: bytes, options: LoadOptions) -> Loaded:
    return load_csv(data, options, delimiter="\t")


def _json_scalar(value: Any) -> Scalar | None:
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None  # null, lists, objects, NaN: Haima metadata is flat


def load_jsonl(data: bytes, options: LoadOptions) -> Loaded:
    text = decode(data, options.encoding)
    records: list[tuple[int, Mapping[str, Any]]] = []
    warnings = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            warnings.append(f"line {number}: not JSON ({exc}), skipped")
            continue
        if not isinstance(value, dict):
            warnings.append(f"line {number}: not a JSON object, skipped")
            continue
        records.append((number, value))
    if not records:
        raise LoadError("no JSON objects in the file")
    keys = dict.fromkeys(k for _, record in records for k in record)
    column = _text_field(keys, options.text_field, "field")
    documents = []
    dropped: set[str] = set()
    for number, record in records:
        body = record.get(column)
        if not isinstance(body, str) or not body.strip():
            warnings.append(f"line {number}: no text in {column!r}, skipped")
            continue
        metadata: dict[str, Scalar] = {"line": number}
        for key, value in record.items():
            name = _metadata_key(key)
            if name is None or key == column:
                continue
            scalar = _json_scalar(value)
            if scalar is None:
                if value is not None:
                    dropped.add(key)
                continue
            metadata[name] = scalar
        documents.append(Document(body.strip(), metadata))
    if dropped:
        warnings.append(
            f"fields {', '.join(sorted(map(repr, dropped)))} are not flat str/int/float/bool "
            "values and were not kept as metadata"
        )
    return Loaded(documents, warnings=warnings)
