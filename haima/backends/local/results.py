"""Search hits shaped as Chroma's query results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from haima.index.faiss_index import Rids, Vectors
from haima.storage.rows import FoundRecord, decode_metadata, vectors_from_blobs
from haima.types import IncludeField, QueryResult

#: Include fields read from SQLite; without them an answer comes from the index alone.
RECORD_FIELDS = frozenset({"documents", "metadatas", "embeddings"})


def padded(rows: list[list[tuple[int, float]]]) -> tuple[npt.NDArray[np.float32], Rids]:
    """Per-query (rid, distance) lists as the (distances, rids) matrices of a vector
    search: rows padded with rid -1, which `query_result` skips."""
    width = max((len(r) for r in rows), default=0)
    distances = np.zeros((len(rows), width), np.float32)
    rids = np.full((len(rows), width), -1, np.int64)
    for i, hits in enumerate(rows):
        if hits:
            rids[i, : len(hits)] = [rid for rid, _ in hits]
            distances[i, : len(hits)] = [d for _, d in hits]
    return distances, rids


def ids_result(
    rids: Rids, distances: Any, ids_of: dict[int, str], include: Sequence[IncludeField]
) -> QueryResult:
    """An answer of ids (and distances), from the index's rid → id map."""
    ids: list[list[str]] = []
    dists: list[list[float]] = []
    id_of = ids_of.__getitem__
    for row_rids, row_dist in zip(rids.tolist(), distances.tolist(), strict=True):
        if row_rids and row_rids[-1] == -1:  # -1 pads the end of a short row
            found = row_rids.index(-1)
            row_rids, row_dist = row_rids[:found], row_dist[:found]
        ids.append(list(map(id_of, row_rids)))
        dists.append(row_dist)
    return QueryResult(
        ids=ids,
        embeddings=None,
        documents=None,
        metadatas=None,
        distances=dists if "distances" in include else None,
        uris=None,
        data=None,
        included=list(include),
    )


def query_result(
    rids: Rids,
    distances: Any,
    records: dict[int, FoundRecord],
    include: Sequence[IncludeField],
    dimension: int | None,
) -> QueryResult:
    """An answer with the records' fields read from SQLite (`records`: rid → row)."""
    ids: list[list[str]] = []
    docs: list[list[str | None]] = []
    mds: list[list[Any]] = []
    dists: list[list[float]] = []
    embs: list[Vectors] = []
    # Python lists first: iterating NumPy scalars costs more than the rest of this loop.
    for row_rids, row_dist in zip(rids.tolist(), distances.tolist(), strict=True):
        keep = [(r, d) for r, d in zip(row_rids, row_dist, strict=True) if r in records]
        ids.append([records[r].id for r, _ in keep])
        if "documents" in include:
            docs.append([records[r].document for r, _ in keep])
        if "metadatas" in include:
            mds.append([decode_metadata(records[r].metadata) for r, _ in keep])
        dists.append([d for _, d in keep])
        if "embeddings" in include:
            embs.append(vectors_from_blobs([records[r].embedding for r, _ in keep], dimension or 0))
    return QueryResult(
        ids=ids,
        embeddings=embs if "embeddings" in include else None,
        documents=docs if "documents" in include else None,
        metadatas=mds if "metadatas" in include else None,
        distances=dists if "distances" in include else None,
        uris=None,
        data=None,
        included=list(include),
    )
