"""Index snapshot files: named arrays behind a JSON header, checksummed, written atomically.

Format: ``HAIMAIDX`` magic, a little-endian u64 header length, the JSON header (format
version, the caller's fields, and for each array its name, dtype, shape, offset, size and
CRC-32), then the arrays' raw bytes. No pickle anywhere: a file is only data.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MAGIC = b"HAIMAIDX"
FORMAT_VERSION = 1


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
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + struct.pack("<Q", len(head)) + head)
            for array in arrays.values():
                out.write(_bytes_view(np.ascontiguousarray(array)))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def read_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as src:
        return _header(src.read(len(MAGIC) + 8), src, path)["fields"]  # type: ignore[no-any-return]


def read_snapshot(path: Path) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: {exc}") from exc
    with open(path, "rb") as src:
        meta = _header(src.read(len(MAGIC) + 8), src, path)
    start = len(MAGIC) + 8 + meta["_head_len"]
    arrays: dict[str, npt.NDArray[Any]] = {}
    for entry in meta["arrays"]:
        begin = start + entry["offset"]
        chunk = raw[begin : begin + entry["nbytes"]]
        if len(chunk) != entry["nbytes"] or zlib.crc32(chunk) != entry["crc32"]:
            raise SnapshotError(f"{path}: array {entry['name']!r} is truncated or corrupt")
        arrays[entry["name"]] = np.frombuffer(chunk, dtype=np.dtype(entry["dtype"])).reshape(
            entry["shape"]
        )
    return meta["fields"], arrays


def _header(prefix: bytes, src: Any, path: Path) -> dict[str, Any]:
    if len(prefix) != len(MAGIC) + 8 or not prefix.startswith(MAGIC):
        raise SnapshotError(f"{path}: not a Haima index snapshot")
    (head_len,) = struct.unpack("<Q", prefix[len(MAGIC) :])
    if head_len > os.fstat(src.fileno()).st_size - len(prefix):
        # A corrupt length must not make us read (or allocate) more than the file holds.
        raise SnapshotError(f"{path}: header length {head_len} exceeds the file")
    try:
        meta: dict[str, Any] = json.loads(src.read(head_len))
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
