"""Index snapshot files: named arrays behind a JSON header, checksummed, written atomically.

Format: ``HAIMAIDX`` magic, the header's length (u64) and CRC-32 (u32), the JSON header (format
version, the caller's fields, and for each array its name, dtype, shape, offset, size and
CRC-32), then the arrays' raw bytes. No pickle anywhere: a file is only data.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MAGIC = b"HAIMAIDX"
FORMAT_VERSION = 2
#: Magic, then the header's length (u64) and CRC-32 (u32), little-endian.
_PREFIX = struct.Struct("<QI")


class SnapshotError(Exception):
    """The file is missing, truncated, corrupt or of another format."""


def write_snapshot(path: Path, header: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> None:
    """Write atomically: temp file in the same folder, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = []
    offset = 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array)
        entries.append(
            {
                "name": name,
                "dtype": data.dtype.str,
                "shape": list(data.shape),
                "offset": offset,
                "nbytes": data.nbytes,
                "crc32": zlib.crc32(_bytes_view(data)),
            }
        )
        offset += data.nbytes
    head = json.dumps({"format": FORMAT_VERSION, "fields": header, "arrays": entries}).encode()
    for stale in path.parent.glob(".tmp-*"):  # left by a crash during an earlier write
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + _PREFIX.pack(len(head), zlib.crc32(head)) + head)
            for array in arrays.values():
                out.write(_bytes_view(np.ascontiguousarray(array)))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class Snapshot:
    """An open snapshot file: header fields now, arrays on demand, each CRC-checked.

    `read_into` fills a caller's buffer (e.g. FAISS's own storage) straight from the
    file, so a large index is touched in memory once (first touches of fresh memory cost
    ~0.4 s per 150 MB on this machine: each copy counts)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise SnapshotError(f"{path}: {exc}") from exc
        try:
            meta = _header(self._file.read(len(MAGIC) + _PREFIX.size), self._file, path)
        except BaseException:
            self._file.close()
            raise
        self._start = len(MAGIC) + _PREFIX.size + meta["_head_len"]
        self.fields: dict[str, Any] = meta["fields"]
        self._entries: dict[str, dict[str, Any]] = {e["name"]: e for e in meta["arrays"]}

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._entry(name)["shape"])

    def array(self, name: str) -> npt.NDArray[Any]:
        entry = self._entry(name)
        out = np.empty(entry["shape"], dtype=np.dtype(entry["dtype"]))
        self.read_into(name, out)
        return out

    def read_into(self, name: str, out: npt.NDArray[Any]) -> None:
        """Fill `out` (C-contiguous, exactly the array's size in bytes) from the file."""
        entry = self._entry(name)
        target = _bytes_view(out)
        if len(target) != entry["nbytes"]:
            raise SnapshotError(
                f"{self.path}: array {name!r} has {entry['nbytes']} bytes, the buffer {len(target)}"
            )
        self._file.seek(self._start + entry["offset"])
        got = self._file.readinto(target)
        if got != entry["nbytes"] or zlib.crc32(target) != entry["crc32"]:
            raise SnapshotError(f"{self.path}: array {name!r} is truncated or corrupt")

    def reader(self, name: str) -> Callable[[int], bytes]:
        """A `read(size)` function over one array's bytes, after checking its CRC in a
        first streaming pass (so a parser never sees corrupt bytes)."""
        entry = self._entry(name)
        crc, remaining = 0, entry["nbytes"]
        self._file.seek(self._start + entry["offset"])
        while remaining:
            chunk = self._file.read(min(remaining, 8 << 20))
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
            remaining -= len(chunk)
        if remaining or crc != entry["crc32"]:
            raise SnapshotError(f"{self.path}: array {name!r} is truncated or corrupt")
        self._file.seek(self._start + entry["offset"])
        left = entry["nbytes"]

        def read(size: int) -> bytes:
            nonlocal left
            data = self._file.read(min(size, left))
            left -= len(data)
            return data

        return read

    def _entry(self, name: str) -> dict[str, Any]:
        entry = self._entries.get(name)
        if entry is None:
            raise SnapshotError(f"{self.path}: no array {name!r}")
        return entry


def _header(prefix: bytes, src: Any, path: Path) -> dict[str, Any]:
    if len(prefix) != len(MAGIC) + _PREFIX.size or not prefix.startswith(MAGIC):
        raise SnapshotError(f"{path}: not a Haima index snapshot")
    head_len, head_crc = _PREFIX.unpack(prefix[len(MAGIC) :])
    if head_len > os.fstat(src.fileno()).st_size - len(prefix):
        # A corrupt length must not make us read (or allocate) more than the file holds.
        raise SnapshotError(f"{path}: header length {head_len} exceeds the file")
    head = src.read(head_len)
    # The header holds the seq the snapshot covers: a wrong one would skip deletions.
    if zlib.crc32(head) != head_crc:
        raise SnapshotError(f"{path}: the header is corrupt (checksum mismatch)")
    try:
        meta: dict[str, Any] = json.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: unreadable header ({exc})") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise SnapshotError(f"{path}: snapshot format {meta.get('format')!r} is not supported")
    meta["_head_len"] = head_len
    return meta


def _bytes_view(array: npt.NDArray[Any]) -> memoryview:
    """The array's bytes without a copy."""
    return memoryview(array.reshape(-1).view(np.uint8))  # type: ignore[arg-type]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
