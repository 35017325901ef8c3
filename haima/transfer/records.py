"""What moves: batches of records, their canonical checksum, and the export files'
encodings (JSONL lines and Parquet rows)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: The checksum combines per-record digests by addition modulo 2**128: order does not
#: matter, so both sides can be read in whatever order they keep.
_MODULUS = 1 << 128


@dataclass
class Batch:
    ids: list[str]
    embeddings: npt.NDArray[np.float32]
    documents: list[str | None]
    metadatas: list[dict[str, Any] | None]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, dim: int = 0) -> Batch:
        return cls([], np.zeros((0, dim), np.float32), [], [])

    def rows(self, start: int, stop: int | None = None) -> Batch:
        """The records from `start` to `stop` (a slice)."""
        return Batch(
            self.ids[start:stop],
            self.embeddings[start:stop],
            self.documents[start:stop],
            self.metadatas[start:stop],
        )

    def records(self) -> Iterator[dict[str, Any]]:
        """One JSON-ready mapping per record (the JSONL line's fields, in order)."""
        for i, record_id in enumerate(self.ids):
            yield {
                "id": record_id,
                "document": self.documents[i],
                "metadata": self.metadatas[i],
                "embedding": self.embeddings[i].tolist(),
            }

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> Batch:
        rows = list(records)
        dim = len(rows[0]["embedding"]) if rows else 0
        return cls(
            ids=[str(r["id"]) for r in rows],
            embeddings=np.array([r["embedding"] for r in rows], np.float32).reshape(len(rows), dim),
            documents=[r.get("document") for r in rows],
            metadatas=[r.get("metadata") or None for r in rows],
        )


@dataclass
class Checksum:
    """Count and two order-independent digests of records. `records`: id, document and
    metadata (JSON with sorted keys; floats to 12 significant digits, because Chroma's
    server gives some back changed in their last digits: 90.33333333333333 as
    ...31). `vectors`: id and the embedding's float32 bytes (little-endian). Servers may
    also change an embedding's last bits, so equal `records` with different `vectors`
    calls for a comparison by id within a tolerance (see transfer.run)."""

    count: int = 0
    records: int = 0
    vectors: int = 0

    def add(self, batch: Batch) -> None:
        vectors = np.ascontiguousarray(batch.embeddings, dtype="<f4")
        for i, record_id in enumerate(batch.ids):
            key = record_id.encode("utf-8") + b"\0"
            digest = hashlib.sha256(key)
            document = batch.documents[i]
            digest.update(b"\1" if document is None else document.encode("utf-8") + b"\0")
            metadata = _rounded(batch.metadatas[i] or None)
            digest.update(canonical_json(metadata).encode("utf-8"))
            self.records = (self.records + _number(digest)) % _MODULUS
            self.vectors = (
                self.vectors + _number(hashlib.sha256(key + vectors[i].tobytes()))
            ) % _MODULUS
            self.count += 1

    @property
    def hex(self) -> str:
        return f"{self.records:032x}{self.vectors:032x}"


def _number(digest: Any) -> int:
    return int.from_bytes(digest.digest()[:16], "big")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def jsonl_line(record: Mapping[str, Any]) -> bytes:
    """One export line: fields in the documented order, compact, UTF-8, floats as the
    shortest text that reads back to the same float32 value."""
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def parquet_table(batch: Batch) -> Any:
    """A pyarrow table of the batch: id, document, metadata (JSON text: keeps ints,
    floats, booleans and lists apart in every reader), embedding (list<float32>)."""
    import pyarrow as pa  # type: ignore[import-untyped]

    return pa.table(
        {
            "id": pa.array(batch.ids, pa.string()),
            "document": pa.array(batch.documents, pa.string()),
            "metadata": pa.array(
                [None if m is None else canonical_json(m) for m in batch.metadatas], pa.string()
            ),
            "embedding": pa.array(list(batch.embeddings), pa.list_(pa.float32())),
        }
    )


def batch_of_table(table: Any) -> Batch:
    columns = table.to_pydict()
    n = len(columns["id"])
    embeddings = np.array(columns["embedding"], np.float32)
    return Batch(
        ids=list(columns["id"]),
        embeddings=embeddings.reshape(n, -1) if n else np.zeros((0, 0), np.float32),
        documents=list(columns["document"]),
        metadatas=[None if m is None else json.loads(m) for m in columns["metadata"]],
    )
