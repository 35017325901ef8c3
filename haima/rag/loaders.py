"""Loaders: files and folders to `Document`s.

    from haima.rag import load
    result = load("docs", glob=["**/*.md", "**/*.pdf"])
    result.documents      # [Document(text, metadata={"source": "guide/intro.md", ...}), ...]
    result.failures       # [LoadFailure("broken.pdf", "..."), ...]: reported, skipped

Formats by extension: .txt .text .md .markdown .rst .html .htm .pdf (pypdf, one document
per page) .docx (python-docx, one per section, with the heading path) .csv .tsv .jsonl
.ndjson (one per row: a text column, the others as metadata). `register_loader` adds more.
Text encodings are detected: BOMs, UTF-8, GBK/GB18030 and others (charset-normalizer).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from haima.errors import MissingDependencyError
from haima.rag import _formats
from haima.rag._formats import Loaded, LoadOptions
from haima.rag._types import Document, LoadError, LoadFailure, Scalar

LoaderFunction = Callable[[bytes, LoadOptions], Loaded]

_LOADERS: dict[str, LoaderFunction] = {
    ".txt": _formats.load_text,
    ".text": _formats.load_text,
    ".md": _formats.load_markdown,
    ".markdown": _formats.load_markdown,
    ".rst": _formats.load_rst,
    ".html": _formats.load_html,
    ".htm": _formats.load_html,
    ".pdf": _formats.load_pdf,
    ".docx": _formats.load_docx,
    ".csv": _formats.load_csv,
    ".tsv": _formats.load_tsv,
    ".jsonl": _formats.load_jsonl,
    ".ndjson": _formats.load_jsonl,
}

#: Extensions read as Markdown (ingest splits them by headings).
MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown"})


def register_loader(extension: str, loader: LoaderFunction) -> None:
    """Load files ending in `extension` (".epub") with `loader(data, options) -> Loaded`."""
    ext = extension.lower() if extension.startswith(".") else f".{extension.lower()}"
    _LOADERS[ext] = loader


def supported_extensions() -> list[str]:
    return sorted(_LOADERS)


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    #: Problems inside files that still loaded (a bad CSV row, a JSONL line...).
    warnings: list[str] = field(default_factory=list)
    #: Sources that loaded.
    sources: list[str] = field(default_factory=list)


def find_files(
    folder: str | Path, glob: str | Sequence[str] | None = None
) -> list[tuple[str, Path]]:
    """(source, path) for the files under `folder` that match any of the `glob` patterns
    (default: every file of a supported type), sorted by source. Hidden files and folders
    (names starting with ".") are skipped. `source` is the POSIX path relative to `folder`."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    patterns = [glob] if isinstance(glob, str) else list(glob or ())
    found: dict[str, Path] = {}
    for pattern in patterns or ["**/*"]:
        for path in root.glob(pattern):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts) or not path.is_file():
                continue
            if not patterns and path.suffix.lower() not in _LOADERS:
                continue  # the default takes what it can read; explicit patterns report it
            found[relative.as_posix()] = path
    return sorted(found.items())


def load_bytes(
    data: bytes,
    source: str,
    *,
    text_field: str | None = None,
    encoding: str | None = None,
) -> Loaded:
    """Parse one file's content; the type comes from `source`'s extension. Every document
    gets `source` and, where known, `title`. Raises `LoadError` when the file is unusable
    (and `MissingDependencyError` when its format needs a package that is missing)."""
    ext = os.path.splitext(source)[1].lower()
    loader = _LOADERS.get(ext)
    if loader is None:
        raise LoadError(
            f"unsupported file type {ext or '(no extension)'!r} "
            f"(supported: {' '.join(supported_extensions())})"
        )
    try:
        loaded = loader(data, LoadOptions(text_field=text_field, encoding=encoding))
    except (LoadError, MissingDependencyError):
        raise
    except Exception as exc:  # parsers raise anything on a broken file; never fatal
        raise LoadError(f"cannot read it as {ext[1:]}: {type(exc).__name__}: {exc}") from exc
    for document in loaded.documents:
        base: dict[str, Scalar] = {"source": source}
        if loaded.title:
            base["title"] = loaded.title
        document.metadata = {**base, **document.metadata}
    return loaded


def load_file(
    path: str | Path,
    *,
    source: str | None = None,
    text_field: str | None = None,
    encoding: str | None = None,
) -> list[Document]:
    """The documents of one file (`source` defaults to its name). Raises `LoadError`."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read {file}: {exc.strerror or exc}") from exc
    name = source if source is not None else file.name
    return load_bytes(data, name, text_field=text_field, encoding=encoding).documents


def load(
    path: str | Path,
    *,
    glob: str | Sequence[str] | None = None,
    text_field: str | None = None,
    encoding: str | None = None,
) -> LoadResult:
    """Load a file or every matching file of a folder. A file that cannot be read is
    listed in `failures` (with the reason) and skipped; nothing else is affected."""
    root = Path(path)
    if root.is_file():
        files = [(root.name, root)]
    elif root.is_dir():
        files = find_files(root, glob)
    else:
        raise FileNotFoundError(f"no such file or folder: {root}")
    result = LoadResult()
    for source, file in files:
        try:
            loaded = load_bytes(file.read_bytes(), source, text_field=text_field, encoding=encoding)
        except (LoadError, MissingDependencyError, OSError) as exc:
            result.failures.append(LoadFailure(source, _reason(exc)))
            continue
        result.documents.extend(loaded.documents)
        result.warnings.extend(f"{source}: {w}" for w in loaded.warnings)
        result.sources.append(source)
    return result


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return str(exc)
