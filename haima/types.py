"""Public data types: records, metadata and the Chroma-shaped results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

Scalar = str | int | float | bool
MetadataValue = Scalar | list[str] | list[int] | list[float] | list[bool]
Metadata = dict[str, MetadataValue]
#: What callers may pass: values may be None (absent; in `update`, "remove this key").
MetadataInput = Mapping[str, MetadataValue | None]
Where = Mapping[str, Any]
WhereDocument = Mapping[str, Any]
Embedding = Sequence[float] | npt.NDArray[Any]
Embeddings = Sequence[Embedding] | npt.NDArray[Any]
#: Float32 vectors, one per row; and the engine's record ids (rids), int64.
Vectors = npt.NDArray[np.float32]
Rids = npt.NDArray[np.int64]

IncludeField = Literal["documents", "metadatas", "embeddings", "distances", "uris", "data"]
Include = Sequence[IncludeField]

DEFAULT_GET_INCLUDE: tuple[IncludeField, ...] = ("documents", "metadatas")
DEFAULT_QUERY_INCLUDE: tuple[IncludeField, ...] = ("documents", "metadatas", "distances")


class GetResult(TypedDict):
    ids: list[str]
    embeddings: Vectors | None
    documents: list[str | None] | None
    metadatas: list[Metadata | None] | None
    uris: None
    data: None
    included: list[str]


class QueryResult(TypedDict):
    ids: list[list[str]]
    embeddings: list[Vectors] | None
    documents: list[list[str | None]] | None
    metadatas: list[list[Metadata | None]] | None
    distances: list[list[float]] | None
    uris: None
    data: None
    included: list[str]


@dataclass(frozen=True)
class CollectionModel:
    """What a backend says about a collection."""

    id: str
    name: str
    tenant: str
    database: str
    metadata: dict[str, Any] | None
    #: Normalised configuration (`CollectionConfiguration.to_json()`).
    configuration: dict[str, Any]
    dimension: int | None
