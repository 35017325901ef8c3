"""Incremental ingestion: make a collection hold exactly the chunks of a folder.

    import haima
    from haima.rag import ingest
    docs = haima.PersistentClient("./haima_data").get_or_create_collection("docs")
    report = ingest(docs, "./notes", glob=["**/*.md", "**/*.pdf"])
    print(report.summary())      # 3 added, 1 updated, 0 removed, 40 unchanged, 0 failed; ...

Every chunk's metadata records its file: `source` (the path relative to the folder),
`source_hash` (sha256 of the file's bytes), `chunk` (its index in the file), `chunks` (how
many the file has) and `ingest_settings` (the splitter that made it). Chunk ids are
f"{source}#{chunk}". A later run reads those back and
- skips a file whose hash and settings are unchanged and whose chunks are all there
  (nothing is re-embedded),
- replaces the chunks of a changed file (its old ids are deleted, then the new chunks added),
- deletes the chunks of files no longer in the folder (`delete_missing=False` keeps them),
- keeps the previous chunks of a file that fails to load, so that a transient error never
  empties the collection; the failure is in the report.
New chunks are embedded and added in batches of `batch_size`, across files.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from haima._progress import AUTO_THRESHOLD
from haima.collection import Collection
from haima.errors import InvalidArgumentError, MissingDependencyError
from haima.rag._progress import IngestProgress, ingest_progress
from haima.rag._types import Document, LoadError, LoadFailure, Scalar
from haima.rag.loaders import MARKDOWN_EXTENSIONS, find_files, load_bytes
from haima.rag.splitters import MarkdownSplitter, RecursiveSplitter, Splitter

#: The metadata key that marks a record as made by `ingest`.
HASH_KEY = "source_hash"


@dataclass
class IngestReport:
    """What one `ingest` run did. File lists hold sources (paths relative to the folder)."""

    collection: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: Unchanged files: nothing read beyond their hash, nothing embedded.
    skipped: list[str] = field(default_factory=list)
    #: Files that loaded but hold no text (a new empty file adds nothing).
    empty: list[str] = field(default_factory=list)
    failed: list[LoadFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
            f"{len(self.skipped)} unchanged, {len(self.failed)} failed; "
            f"{self.chunks_added} chunks added, {self.chunks_removed} removed "
            f"in {self.seconds:.1f}s"
        )
        return text + (f" ({len(self.empty)} empty)" if self.empty else "")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [{"source": f.source, "error": f.error} for f in self.failed]
        return data


@dataclass
class _Stored:
    ids: list[str] = field(default_factory=list)
    hashes: set[str] = field(default_factory=set)
    settings: set[str] = field(default_factory=set)
    totals: set[int] = field(default_factory=set)

    def unchanged(self, digest: str, settings: str) -> bool:
        """Same file, same splitter, and every chunk present (a run that stopped halfway
        through a file leaves fewer chunks than `chunks` says, and is redone)."""
        return (
            self.hashes == {digest}
            and self.settings == {settings}
            and self.totals == {len(self.ids)}
        )


def _stored_sources(collection: Collection) -> dict[str, _Stored]:
    result = collection.get(where={HASH_KEY: {"$exists": True}}, include=["metadatas"])
    stored: dict[str, _Stored] = {}
    for record_id, metadata in zip(result["ids"], result["metadatas"] or [], strict=False):
        if metadata is None or not isinstance(metadata.get("source"), str):
            continue
        entry = stored.setdefault(str(metadata["source"]), _Stored())
        entry.ids.append(record_id)
        entry.hashes.add(str(metadata.get(HASH_KEY)))
        entry.settings.add(str(metadata.get("ingest_settings")))
        total = metadata.get("chunks")
        entry.totals.add(total if isinstance(total, int) else -1)
    return stored


class _Batcher:
    """Collects deletions and new chunks; writes them so that a file's old chunks are gone
    before any new chunk with the same id is added."""

    def __init__(self, collection: Collection, size: int, progress: IngestProgress) -> None:
        self.collection = collection
        self.size = size
        self.progress = progress
        self.deletes: list[str] = []
        self.ids: list[str] = []
        self.documents: list[str] = []
        self.metadatas: list[dict[str, Scalar]] = []

    def replace(self, old_ids: list[str], chunks: list[tuple[str, str, dict[str, Scalar]]]) -> None:
        self.deletes.extend(old_ids)
        for record_id, text, metadata in chunks:
            self.ids.append(record_id)
            self.documents.append(text)
            self.metadatas.append(metadata)
            if len(self.ids) >= self.size:
                self.flush()

    def flush(self) -> None:
        if self.deletes:
            self.collection.delete(ids=self.deletes)
            self.deletes = []
        if self.ids:
            self.collection.add(ids=self.ids, documents=self.documents, metadatas=self.metadatas)
            self.progress.chunks_done(len(self.ids))
            self.ids, self.documents, self.metadatas = [], [], []


def ingest(
    collection: Collection,
    path: str | Path,
    *,
    glob: str | Sequence[str] | None = None,
    splitter: Splitter | None = None,
    chunk_size: int = 500,
    chunk_overlap: int = 50,
    text_field: str | None = None,
    encoding: str | None = None,
    batch_size: int = 256,
    delete_missing: bool = True,
    progress: bool | None = None,
) -> IngestReport:
    """Bring `collection` up to date with the files under `path` (a folder, or one file).

    glob: patterns relative to the folder ("**/*.md"); default every supported file.
    splitter: any object with `split_documents`; default a `MarkdownSplitter` for Markdown
        files and a `RecursiveSplitter` for the rest, both of `chunk_size`/`chunk_overlap`
        characters.
    text_field: the CSV column / JSONL field holding the text.
    progress: False hides the bar; by default it shows on a terminal.
    """
    started = time.perf_counter()
    if collection.embedding_function is None:
        raise InvalidArgumentError(
            f"ingest: collection {collection.name!r} has no embedding function to embed the "
            "chunks with; get it with embedding_function=... "
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    root = Path(path)
    if root.is_file():
        files = [(root.name, root)]
        delete_missing = False  # one file says nothing about the others
    else:
        files = find_files(root, glob)
    splitters = _splitters(splitter, chunk_size, chunk_overlap)
    options = "".join(
        f";{name}={value}"
        for name, value in (("text_field", text_field), ("encoding", encoding))
        if value is not None
    )
    report = IngestReport(collection.name)
    stored = _stored_sources(collection)

    with ingest_progress(len(files), progress) as bar:
        # While our bar is live, an embedding function's own bar (shown for batches of
        # AUTO_THRESHOLD texts or more) would draw over it: keep batches under that.
        size = min(batch_size, AUTO_THRESHOLD - 1) if bar.shown else batch_size
        batch = _Batcher(collection, size, bar)
        for source, file in files:
            old = stored.get(source)
            chosen = splitters[1] if file.suffix.lower() in MARKDOWN_EXTENSIONS else splitters[0]
            settings = _fingerprint(chosen) + options
            try:
                data = file.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
                if old is not None and old.unchanged(digest, settings):
                    report.skipped.append(source)
                    continue
                loaded = load_bytes(data, source, text_field=text_field, encoding=encoding)
            except (LoadError, MissingDependencyError, OSError) as exc:
                message = (
                    f"cannot read: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
                )
                report.failed.append(LoadFailure(source, message))
                continue
            finally:
                bar.file_done()
            report.warnings.extend(f"{source}: {w}" for w in loaded.warnings)
            chunks = _records(chosen.split_documents(loaded.documents), source, digest, settings)
            batch.replace(old.ids if old is not None else [], chunks)
            report.chunks_added += len(chunks)
            if old is not None:
                report.updated.append(source)
                report.chunks_removed += len(old.ids)
            elif chunks:
                report.added.append(source)
            else:
                report.empty.append(source)
        if delete_missing:
            present = {source for source, _ in files}
            for source, old in sorted(stored.items()):
                if source not in present:
                    batch.deletes.extend(old.ids)
                    report.removed.append(source)
                    report.chunks_removed += len(old.ids)
        batch.flush()
    report.seconds = time.perf_counter() - started
    return report


def _splitters(
    splitter: Splitter | None, chunk_size: int, chunk_overlap: int
) -> tuple[Splitter, Splitter]:
    """(for most files, for Markdown files)."""
    if splitter is not None:
        if not callable(getattr(splitter, "split_documents", None)):
            raise InvalidArgumentError(
                f"splitter: expected an object with split_documents(documents), got {splitter!r}"
            )
        return splitter, splitter
    return RecursiveSplitter(chunk_size, chunk_overlap), MarkdownSplitter(chunk_size, chunk_overlap)


def _fingerprint(splitter: Splitter) -> str:
    """A string that changes when the splitter would cut differently. Splitters without a
    `fingerprint` are named by class: changing their options needs a fresh collection."""
    value = getattr(splitter, "fingerprint", None)
    return value if isinstance(value, str) else type(splitter).__qualname__


def _records(
    chunks: list[Document], source: str, digest: str, settings: str
) -> list[tuple[str, str, dict[str, Scalar]]]:
    records = []
    kept = [c for c in chunks if c.text.strip()]
    for index, chunk in enumerate(kept):
        metadata: dict[str, Scalar] = {
            **chunk.metadata,
            "source": source,
            HASH_KEY: digest,
            "chunk": index,
            "chunks": len(kept),
            "ingest_settings": settings,
        }
        records.append((f"{source}#{index}", chunk.text, metadata))
    return records
