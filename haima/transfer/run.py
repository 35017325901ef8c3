"""Export, import and migrate: streaming in batches, resumable, verified.

* `migrate(source, dest)`: copies each collection batch by batch. A destination
  collection that an interrupted run left part-filled is continued where it stopped
  (its count says how far); `restart=True` empties it first.
* `export(source, folder)`: one JSONL file, or Parquet parts, per collection, and
  `manifest.json` saying what is complete. An interrupted export resumes from the
  manifest, producing the same bytes as an uninterrupted one.
* `import_(folder, dest)`: the reverse, resumable like `migrate`.

Every run ends with a verification per collection: the count and an order-independent
checksum over ids, documents, metadata and embeddings (`records.Checksum`), computed by
reading both ends again. A source changed during the transfer fails it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haima._deps import import_optional
from haima._progress import progress_bar
from haima.errors import HaimaError, InvalidArgumentError
from haima.transfer.endpoints import CollectionInfo, Side, open_side
from haima.transfer.records import (
    Batch,
    Checksum,
    batch_of_table,
    jsonl_line,
    parquet_table,
)

DEFAULT_BATCH = 1_000
DEFAULT_ROWS_PER_PART = 100_000
MANIFEST = "manifest.json"
FORMAT = "haima-export"
FORMAT_VERSION = 1

#: Called after each batch written, with the collection and the rows done (tests use it
#: to interrupt a run at a known point).
AfterBatch = Callable[[str, int], None]


class VerificationError(HaimaError):
    """The two ends disagree after a transfer (a count or the checksum)."""

    status_code = 409


@dataclass
class CollectionReport:
    name: str
    count: int
    checksum: str
    resumed_at: int = 0


@dataclass
class TransferReport:
    source: str
    destination: str
    collections: list[CollectionReport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "collections": [vars(c) for c in self.collections],
        }


# -- migrate ---------------------------------------------------------------------------------


def migrate(
    source: str,
    destination: str,
    *,
    collections: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH,
    restart: bool = False,
    progress: bool | None = None,
    after_batch: AfterBatch | None = None,
) -> TransferReport:
    """Copy collections from `source` to `destination` (each a folder, a Haima or Chroma
    server URL); see the module docstring."""
    _positive(batch_size, "batch_size")
    src = open_side(source, create=False)
    try:
        dst = open_side(destination, create=True)
        try:
            report = TransferReport(source, destination)
            for name in _chosen(src, collections):
                info = src.describe(name)
                done = _prepare_destination(dst, info, restart)
                batches = _batches(src, name, done, batch_size)
                _copy(batches, dst, name, info.count, done, progress, after_batch)
                report.collections.append(_verified(src, dst, name, done))
            return report
        finally:
            dst.close()
    finally:
        src.close()


def _prepare_destination(dst: Side, info: CollectionInfo, restart: bool) -> int:
    """Rows already in the destination collection (0 when created now)."""
    existing = dst.count(info.name)
    if existing is not None and restart:
        dst.delete(info.name)
        existing = None
    if existing is None:
        dst.create(info)
        return 0
    if existing > info.count:
        raise InvalidArgumentError(
            f"collection {info.name!r}: the destination already holds {existing} records, "
            f"more than the source's {info.count}; it is not an interrupted copy of it "
            "(restart=True / --restart replaces it)"
        )
    return existing


def _copy(
    batches: Iterable[Batch],
    dst: Side,
    name: str,
    total: int,
    done: int,
    progress: bool | None,
    after_batch: AfterBatch | None,
) -> None:
    """Write `batches` (the records after the `done` already there) to `dst`'s `name`."""
    with progress_bar(total, name, progress) as advance:
        advance(done)
        for batch in batches:
            dst.write(name, batch)
            done += len(batch)
            advance(len(batch))
            if after_batch is not None:
                after_batch(name, done)


def _batches(side: Side, name: str, start: int, size: int) -> Iterator[Batch]:
    offset = start
    while True:
        batch = side.read(name, offset, size)
        if not len(batch):
            return
        yield batch
        offset += len(batch)


def _checksum(side: Side, name: str, batch_size: int = DEFAULT_BATCH) -> Checksum:
    return _sum(_batches(side, name, 0, batch_size))


def _sum(batches: Iterable[Batch]) -> Checksum:
    total = Checksum()
    for batch in batches:
        total.add(batch)
    return total


def _after(batches: Iterable[Batch], skip: int) -> Iterator[Batch]:
    """`batches` without their first `skip` records."""
    for batch in batches:
        if skip >= len(batch):
            skip -= len(batch)
            continue
        yield batch.rows(skip)
        skip = 0


def _verified(src: Side, dst: Side, name: str, resumed_at: int) -> CollectionReport:
    expected = _checksum(src, name)
    found = _checksum(dst, name)
    if not _compare(name, expected, found, src.label, dst.label):
        _embeddings_close(_batches(src, name, 0, DEFAULT_BATCH), dst, name)
    return CollectionReport(name, found.count, expected.hex, resumed_at)


#: Largest difference allowed between an embedding value at both ends.
EMBEDDING_TOLERANCE = 1e-6


def _compare(name: str, expected: Checksum, found: Checksum, src: str, dst: str) -> bool:
    """Raise on a different count or different ids, documents or metadata; return
    whether the embeddings are bit-identical too."""
    if expected.count != found.count:
        raise VerificationError(
            f"collection {name!r}: {src} holds {expected.count} records, {dst} "
            f"{found.count} (did the source change during the transfer?)"
        )
    if expected.records != found.records:
        raise VerificationError(
            f"collection {name!r}: checksums differ ({expected.hex} at {src}, {found.hex} "
            f"at {dst}): records changed during the transfer, or were altered"
        )
    return expected.vectors == found.vectors


def _embeddings_close(source: Iterator[Batch], dst: Side, name: str) -> None:
    """Compare embeddings by id within EMBEDDING_TOLERANCE (for ends that store them
    with other rounding)."""
    for batch in source:
        there = dst.read_ids(name, batch.ids)
        position = {record_id: i for i, record_id in enumerate(there.ids)}
        for i, record_id in enumerate(batch.ids):
            j = position.get(record_id)
            if j is None:
                raise VerificationError(f"collection {name!r}: record {record_id!r} is missing")
            gap = float(abs(batch.embeddings[i] - there.embeddings[j]).max(initial=0.0))
            if gap > EMBEDDING_TOLERANCE:
                raise VerificationError(
                    f"collection {name!r}: the embedding of {record_id!r} differs by {gap:.3g} "
                    f"(more than {EMBEDDING_TOLERANCE})"
                )


def _chosen(side: Side, collections: Sequence[str] | None) -> list[str]:
    names = side.collection_names()
    if not collections:
        return names
    missing = [c for c in collections if c not in names]
    if missing:
        raise InvalidArgumentError(
            f"collections: {', '.join(map(repr, missing))} not found at {side.label} "
            f"(it has: {', '.join(names) or 'none'})"
        )
    return list(collections)


def _positive(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name}: expected a positive integer, got {value!r}")


# -- export ----------------------------------------------------------------------------------


def export(
    source: str,
    folder: str | Path,
    *,
    format: str = "jsonl",
    collections: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH,
    rows_per_part: int = DEFAULT_ROWS_PER_PART,
    restart: bool = False,
    progress: bool | None = None,
    after_batch: AfterBatch | None = None,
) -> TransferReport:
    """Write collections of `source` to `folder` (see docs/moving-data.md for the files)."""
    if format not in ("jsonl", "parquet"):
        raise InvalidArgumentError(f"format: expected jsonl or parquet, got {format!r}")
    _positive(batch_size, "batch_size")
    _positive(rows_per_part, "rows_per_part")
    out = Path(folder)
    src = open_side(source, create=False)
    try:
        manifest = _open_manifest(out, source, format, restart)
        report = TransferReport(source, str(out))
        for name in _chosen(src, collections):
            info = src.describe(name)
            entry = _manifest_entry(manifest, info)
            if not entry["complete"]:
                writer = (
                    _JsonlWriter(out, entry)
                    if format == "jsonl"
                    else _ParquetWriter(out, entry, rows_per_part)
                )
                with progress_bar(info.count, name, progress) as advance:
                    advance(entry["rows"])
                    for batch in _batches(src, name, entry["rows"], batch_size):
                        writer.write(batch)
                        _save_manifest(out, manifest)
                        advance(len(batch))
                        if after_batch is not None:
                            after_batch(name, entry["rows"])
                writer.close()
                _save_manifest(out, manifest)
            expected = _checksum(src, name)
            found = _sum(read_export(out, name))
            if not _compare(name, expected, found, src.label, str(out)):
                raise VerificationError(
                    f"collection {name!r}: the exported embeddings differ from the source's"
                )
            entry.update(complete=True, count=found.count, checksum=found.hex)
            _save_manifest(out, manifest)
            report.collections.append(CollectionReport(name, found.count, found.hex))
        return report
    finally:
        src.close()


def _open_manifest(out: Path, source: str, format: str, restart: bool) -> dict[str, Any]:
    path = out / MANIFEST
    if path.exists() and not restart:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or manifest.get("file_format") != format:
            raise InvalidArgumentError(
                f"{out}: holds an export in another format; choose another folder, or "
                "restart=True / --restart to replace it"
            )
        if manifest.get("source") != source:
            raise InvalidArgumentError(
                f"{out}: holds an export of {manifest.get('source')!r}, not of {source!r}; "
                "choose another folder, or --restart to replace it"
            )
        return manifest
    if out.exists() and any(out.iterdir()) and not restart:
        raise InvalidArgumentError(
            f"{out}: not empty and not a Haima export; choose another folder"
        )
    if restart and out.exists():
        for item in out.iterdir():
            if item.is_dir():
                for part in item.iterdir():
                    part.unlink()
                item.rmdir()
            else:
                item.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "file_format": format,
        "source": source,
        "collections": [],
    }


def _manifest_entry(manifest: dict[str, Any], info: CollectionInfo) -> dict[str, Any]:
    known: list[dict[str, Any]] = manifest["collections"]
    for entry in known:
        if entry["name"] == info.name:
            return entry
    entry = {
        "name": info.name,
        "metadata": info.metadata,
        "configuration": info.configuration,
        "rows": 0,
        "bytes": 0,
        "parts": [],
        "complete": False,
        "count": None,
        "checksum": None,
    }
    manifest["collections"].append(entry)
    return entry


def _save_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Atomically: a crash leaves the old manifest or the new one, never half of one."""
    tmp = out / (MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as file:
        json.dump(manifest, file, ensure_ascii=False, indent=1)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, out / MANIFEST)


class _JsonlWriter:
    """Appends lines to NAME.jsonl; the manifest records the bytes and rows that are
    complete, and a resumed run first cuts the file back to them."""

    def __init__(self, out: Path, entry: dict[str, Any]) -> None:
        self.entry = entry
        self.path = out / f"{entry['name']}.jsonl"
        entry["parts"] = [self.path.name]
        self.file = open(self.path, "ab")  # noqa: SIM115 (closed in close())
        self.file.truncate(entry["bytes"])
        self.file.seek(entry["bytes"])

    def write(self, batch: Batch) -> None:
        data = b"".join(jsonl_line(r) for r in batch.records())
        self.file.write(data)
        self.file.flush()
        os.fsync(self.file.fileno())
        self.entry["bytes"] += len(data)
        self.entry["rows"] += len(batch)

    def close(self) -> None:
        self.file.close()


class _ParquetWriter:
    """NAME/part-NNNNN.parquet files of up to `rows_per_part` rows; a part is listed in
    the manifest once closed, and a resumed run rewrites the part it was in."""

    def __init__(self, out: Path, entry: dict[str, Any], rows_per_part: int) -> None:
        self.pq = _parquet()
        self.folder = out / entry["name"]
        self.folder.mkdir(exist_ok=True)
        self.entry = entry
        self.rows_per_part = rows_per_part
        self.entry["rows"] = rows_per_part * len(entry["parts"])  # whole parts only
        self.writer: Any = None
        self.in_part = 0

    def write(self, batch: Batch) -> None:
        start = 0
        while start < len(batch):
            if self.writer is None:
                name = f"part-{len(self.entry['parts']):05d}.parquet"
                self.path = self.folder / name
                table = parquet_table(batch)
                self.writer = self.pq.ParquetWriter(self.path, table.schema)
            room = self.rows_per_part - self.in_part
            piece = batch.rows(start, start + room)
            self.writer.write_table(parquet_table(piece))
            self.in_part += len(piece)
            start += len(piece)
            if self.in_part == self.rows_per_part:
                self._close_part()

    def _close_part(self) -> None:
        self.writer.close()
        self.writer = None
        self.entry["parts"].append(self.path.name)
        self.entry["rows"] += self.in_part
        self.in_part = 0

    def close(self) -> None:
        if self.writer is not None:
            self._close_part()


def read_export(folder: str | Path, name: str, batch_size: int = DEFAULT_BATCH) -> Iterator[Batch]:
    """The records of collection `name` in an export folder, in batches."""
    out = Path(folder)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    entry = next((e for e in manifest["collections"] if e["name"] == name), None)
    if entry is None:
        raise InvalidArgumentError(f"{out}: no collection {name!r} in this export")
    if manifest["file_format"] == "jsonl":
        with open(out / f"{name}.jsonl", "rb") as file:
            rows: list[dict[str, Any]] = []
            for line in file:
                rows.append(json.loads(line))
                if len(rows) == batch_size:
                    yield Batch.from_records(rows)
                    rows = []
            if rows:
                yield Batch.from_records(rows)
        return
    pq = _parquet()
    for part in entry["parts"]:
        table = pq.read_table(out / name / part)
        for lo in range(0, table.num_rows, batch_size):
            yield batch_of_table(table.slice(lo, batch_size))


def _parquet() -> Any:
    return import_optional(
        "pyarrow.parquet", package="pyarrow", extra="parquet", purpose="Parquet export and import"
    )


# -- import ----------------------------------------------------------------------------------


def import_(
    folder: str | Path,
    destination: str,
    *,
    collections: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH,
    restart: bool = False,
    progress: bool | None = None,
    after_batch: AfterBatch | None = None,
) -> TransferReport:
    """Load an export folder into `destination`; resumable like `migrate`."""
    _positive(batch_size, "batch_size")
    out = Path(folder)
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidArgumentError(f"{out}: no {MANIFEST} here (not a Haima export)") from exc
    entries = {e["name"]: e for e in manifest["collections"]}
    names = list(collections or entries)
    for name in names:
        if name not in entries:
            raise InvalidArgumentError(f"{out}: no collection {name!r} in this export")
        if not entries[name]["complete"]:
            raise InvalidArgumentError(
                f"{out}: the export of {name!r} is incomplete; run the export again to finish it"
            )
    dst = open_side(destination, create=True)
    try:
        report = TransferReport(str(out), destination)
        for name in names:
            entry = entries[name]
            info = CollectionInfo(name, entry["metadata"], entry["configuration"], entry["count"])
            done = _prepare_destination(dst, info, restart)
            batches = _after(read_export(out, name, batch_size), done)
            _copy(batches, dst, name, info.count, done, progress, after_batch)
            expected = _sum(read_export(out, name, batch_size))
            found = _checksum(dst, name)
            if not _compare(name, expected, found, str(out), destination):
                _embeddings_close(read_export(out, name, batch_size), dst, name)
            report.collections.append(CollectionReport(name, found.count, found.hex, done))
        return report
    finally:
        dst.close()
