"""What the store hands out and takes in: typed rows, and the encodings of metadata
(JSON, and rows of the metadata index) and of vectors (float32 BLOBs)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from haima.filters import kind_of
from haima.types import CollectionModel


@dataclass(frozen=True)
class CollectionRow(CollectionModel):
    """A collection as stored: what backends say about it, and its write counter `seq`
    and the deletion log's floor (what the index cache needs)."""

    seq: int
    log_floor: int

    def model(self) -> CollectionModel:
        """The collection as backends describe it (without the storage counters)."""
        return CollectionModel(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(CollectionModel)}
        )


@dataclass
class StoredRecord:
    rid: int
    id: str
    document: str | None
    metadata: dict[str, Any] | None


class RecordRow(NamedTuple):
    """A record as `Store.select_records` reads it (embedding: a BLOB, when asked for)."""

    rid: int
    id: str
    document: str | None
    metadata: str | None  # JSON, see `decode_metadata`
    embedding: bytes | None = None


class FoundRecord(NamedTuple):
    """A search hit's fields as `Store.records_by_rid` reads them (None: not asked for)."""

    id: str
    document: str | None
    metadata: str | None  # JSON, see `decode_metadata`
    embedding: bytes | None


def metadata_rows(
    rids: Iterable[int], metadatas: Iterable[dict[str, Any] | None]
) -> list[tuple[Any, ...]]:
    """Rows of `metadata_index` for records (see the migration for the encoding), in the
    index's order: inserting them so touches each B-tree page once. Tuples compare
    (key, kind, in_list, value, rid) left to right, so values are only compared within
    one kind. Metadata here is validated: str, bool, int, float or a list of one kind."""
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for rid, metadata in zip(rids, metadatas, strict=True):
        if not metadata:
            continue
        for key, value in metadata.items():
            kind = type(value)
            if kind is str:
                append((key, "s", 0, value, rid))
            elif kind is list:
                for item in dict.fromkeys(value):  # distinct elements: they form the key
                    append((key, kind_of(item), 1, item, rid))
            else:
                append((key, "b" if kind is bool else "n", 0, value, rid))
    rows.sort()
    return rows


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _c_encoder() -> Any:
    """CPython's C encoder built once: `JSONEncoder.encode` builds it again for every
    call, which doubled the cost of encoding small metadata dicts at ingestion."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None

    def unsupported(value: object) -> object:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    # (markers, default, encoder, indent, key sep, item sep, sort_keys, skipkeys, allow_nan)
    return make(
        None, unsupported, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )


_C_ENCODE = _c_encoder()


def encode_metadata(metadata: dict[str, Any] | None) -> str | None:
    if not metadata:
        return None
    if _C_ENCODE is not None:
        return "".join(_C_ENCODE(metadata, 0))
    return _JSON.encode(metadata)


_DECODER = json.JSONDecoder()


def decode_metadata(text: str | None) -> dict[str, Any] | None:
    # raw_decode: the text is ours and has no surrounding whitespace to strip.
    return _DECODER.raw_decode(text)[0] if text else None


def vectors_from_blobs(
    blobs: Sequence[bytes | None],
    dimension: int,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Stored embedding BLOBs (float32 little-endian) as one new, writable (n, dimension)
    matrix, or written into `out` (the rows were read with their embeddings: none is
    None). A few rows at a time through a small buffer: joining them all first cost a
    second full-size buffer and its page faults (30,000 x 384: 35 ms → 7 ms)."""
    if out is None:
        out = np.empty((len(blobs), dimension), np.float32)
    for start in range(0, len(blobs), _BLOB_ROWS):
        part = blobs[start : start + _BLOB_ROWS]
        joined = b"".join(blob or b"" for blob in part)  # a None fails the reshape
        out[start : start + len(part)] = np.frombuffer(joined, "<f4").reshape(len(part), dimension)
    return out


#: Rows per buffer when BLOBs are written into a matrix (1.5 MiB at 384 dimensions).
_BLOB_ROWS = 1_024
