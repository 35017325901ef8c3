"""Retrieval shared by `ask`, `ChatMemory` and `haima search`: a query by text, with
`mode` passed to `Collection.query` for keyword and hybrid search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from haima.collection import Collection
from haima.errors import InvalidArgumentError
from haima.types import QueryResult, Where, WhereDocument

Mode = Literal["vector", "keyword", "hybrid"]
MODES: tuple[str, ...] = ("vector", "keyword", "hybrid")


@dataclass
class Source:
    """A retrieved chunk. `number` is its [n] in a prompt (1-based rank)."""

    number: int
    id: str
    document: str
    metadata: dict[str, Any]
    distance: float | None = None

    @property
    def source(self) -> str | None:
        value = self.metadata.get("source")
        return value if isinstance(value, str) else None

    def label(self) -> str:
        """ "guide.pdf, page 3, Intro > Install", or the id when nothing is known."""
        parts = [self.source or self.id]
        if "page" in self.metadata:
            parts.append(f"page {self.metadata['page']}")
        for key in ("headings", "title"):
            value = self.metadata.get(key)
            if isinstance(value, str) and value and value not in parts:
                parts.append(value)
                break  # headings when known, else the title
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "id": self.id,
            "source": self.source,
            "document": self.document,
            "metadata": self.metadata,
            "distance": self.distance,
        }


def query(
    collection: Collection,
    texts: Sequence[str],
    n_results: int,
    *,
    where: Where | None = None,
    where_document: WhereDocument | None = None,
    mode: str = "vector",
) -> QueryResult:
    """`collection.query(query_texts=...)`, adding `mode=` only for keyword or hybrid
    search, so that this works with a core that has no such argument."""
    if mode not in MODES:
        raise InvalidArgumentError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    extra: dict[str, Any] = {} if mode == "vector" else {"mode": mode}
    try:
        return collection.query(
            query_texts=list(texts),
            n_results=n_results,
            where=where,
            where_document=where_document,
            **extra,
        )
    except TypeError as exc:
        if extra and "mode" in str(exc):
            raise InvalidArgumentError(
                f"mode={mode!r}: this version of Haima has no keyword search "
                "(Collection.query takes no mode); use mode='vector'"
            ) from exc
        raise


def retrieve(
    collection: Collection,
    text: str,
    k: int = 5,
    *,
    where: Where | None = None,
    where_document: WhereDocument | None = None,
    mode: str = "vector",
) -> list[Source]:
    """The `k` chunks that best match `text`, best first, numbered from 1."""
    result = query(collection, [text], k, where=where, where_document=where_document, mode=mode)
    return sources_of(result)


def sources_of(result: QueryResult, row: int = 0) -> list[Source]:
    ids = result["ids"][row]
    documents = (result.get("documents") or [[]])[row] if result.get("documents") else []
    metadatas = (result.get("metadatas") or [[]])[row] if result.get("metadatas") else []
    distances = (result.get("distances") or [[]])[row] if result.get("distances") else []
    out = []
    for i, record_id in enumerate(ids):
        metadata: Mapping[str, Any] | None = metadatas[i] if i < len(metadatas) else None
        distance = distances[i] if i < len(distances) else None
        out.append(
            Source(
                number=i + 1,
                id=record_id,
                document=(documents[i] if i < len(documents) else None) or "",
                metadata=dict(metadata or {}),
                distance=float(distance) if distance is not None else None,
            )
        )
    return out
