"""Records as Milvus rows and back: size checks, write batches, metadata, vector
matrices and the exact ranking of small filtered sets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from haima.backends.milvus.expressions import (
    DOCUMENT_FIELD,
    ID_FIELD,
    TAGGED_FIELD,
    untagged_metadata,
)
from haima.backends.milvus.schema import VARCHAR_MAX, VECTOR_FIELD
from haima.errors import InvalidArgumentError
from haima.types import IncludeField, Metadata, Vectors

#: Bytes per insert call: well under Milvus's 64 MiB message limit.
WRITE_BATCH_BYTES = 16 << 20


def fields_for(include: Sequence[IncludeField]) -> list[str]:
    """The record fields an answer with `include` needs."""
    fields = [ID_FIELD]
    if "documents" in include:
        fields.append(DOCUMENT_FIELD)
    if "metadatas" in include:
        fields.append(TAGGED_FIELD)
    if "embeddings" in include:
        fields.append(VECTOR_FIELD)
    return fields


def check_fits(value: str | None, field: str, position: int) -> None:
    if value is not None and len(value) * 4 > VARCHAR_MAX and len(value.encode()) > VARCHAR_MAX:
        raise InvalidArgumentError(
            f"{field}[{position}]: {len(value.encode())} bytes, more than the {VARCHAR_MAX} "
            "a Milvus VARCHAR field holds (the Milvus backend's limit; split long documents)"
        )


def write_batches(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        row_size = 64 + 4 * len(row[VECTOR_FIELD]) + len(row[DOCUMENT_FIELD] or "") * 3
        row_size += 3 * len(repr(row[TAGGED_FIELD]))
        if batch and size + row_size > WRITE_BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch


def metadata_of(row: dict[str, Any]) -> Metadata | None:
    return untagged_metadata(row[TAGGED_FIELD] or {})


def vector_matrix(rows: list[Any], dimension: int) -> Vectors:
    if not rows:
        return np.zeros((0, dimension), np.float32)
    return np.asarray(rows, np.float32).reshape(len(rows), dimension)


def exact_nearest(
    metric: str, ids: list[str], vectors: Vectors, query: Vectors, n: int
) -> list[tuple[str, float]]:
    """The `n` nearest of `vectors` to `query`, by Haima's distance for `metric`."""
    if not ids:
        return []
    if metric == "l2":
        distances = ((vectors - query) ** 2).sum(axis=1)
    elif metric == "ip":
        distances = 1.0 - vectors @ query
    else:
        norms = np.linalg.norm(vectors, axis=1) * float(np.linalg.norm(query))
        distances = 1.0 - (vectors @ query) / np.where(norms > 0, norms, 1.0)
    order = np.argsort(distances, kind="stable")[:n]
    return [(ids[j], float(distances[j])) for j in order]
