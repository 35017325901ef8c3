"""What the web console shows beyond Chroma's API: collection statistics, server
statistics, a projected sample of vectors and a record's neighbours.

Every function here runs in a worker thread (`http_io.blocking`) and reads the engine
through `ServerState`; the routes in `routes_console.py` turn the results into JSON.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

import haima
from haima import validation
from haima.backends.base import CollectionModel
from haima.backends.wire import decode_embeddings
from haima.collection import Collection
from haima.config import CollectionConfiguration
from haima.embeddings import embed_queries
from haima.errors import InvalidArgumentError, NotFoundError
from haima.server.metrics import Metrics, RequestTotals, RequestWindow
from haima.server.projection import Projection, fit_pca
from haima.server.state import ServedBackend, ServerState
from haima.types import IncludeField, Vectors

#: Largest sample the map may ask for: 20,000 points are still drawn at once by a
#: canvas, and the answer stays under ~6 MB of JSON.
MAX_MAP_SAMPLE = 20_000
#: Characters of each document sent with the map (shown on hover).
MAP_DOCUMENT_CHARS = 200
#: Collections up to this many records have their text bytes summed exactly; larger ones
#: are estimated from this many.
EXACT_TEXT_ROWS = 20_000
#: Server statistics are computed over at most this many recent seconds.
STATS_WINDOW_S = 60.0

# -- collections ---------------------------------------------------------------------------


def collection_stats(
    state: ServerState, model: CollectionModel, sizes: SizeCache
) -> dict[str, Any]:
    """One collection as the console's overview shows it."""
    backend = state.backend
    config = CollectionConfiguration.from_json(model.configuration)
    count = backend.count(model.id)
    spec = config.embedding_function
    return {
        "id": model.id,
        "name": model.name,
        "tenant": model.tenant,
        "database": model.database,
        "metadata": model.metadata,
        "count": count,
        "dimension": model.dimension,
        "metric": config.metric,
        "index": index_status(backend, model.id, config)
        if count
        else {"type": config.index.type, "state": "empty", "ann": None},
        "embedding": None
        if not spec
        else {"provider": spec.get("provider"), "model": spec.get("model")},
        "keyword": config.keyword.enabled,
        "bytes": disk_bytes(backend, model, count, sizes),
    }


def all_collections(state: ServerState, sizes: SizeCache) -> list[dict[str, Any]]:
    """Every tenant and database of the store with its collections' statistics."""
    out = []
    for tenant, database in sorted(state.backend.all_databases()):
        models = state.backend.list_collections(tenant, database, None, None)
        out.append(
            {
                "tenant": tenant,
                "database": database,
                "collections": [collection_stats(state, m, sizes) for m in models],
            }
        )
    return out


def index_status(
    backend: ServedBackend, collection_id: str, config: CollectionConfiguration
) -> dict[str, Any]:
    """The index's type as configured and its state (see `LocalBackend.index_status`)."""
    return {"type": config.index.type, **backend.index_status(collection_id)}


class SizeCache:
    """The bytes of each collection's ids, documents and metadata, once per collection
    version: summed exactly up to `EXACT_TEXT_ROWS` records, beyond that estimated from
    as many (the scan holds the store's lock, and a million documents took seconds)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, int, bool]] = {}
        self._lock = threading.Lock()

    def text_bytes(
        self, backend: ServedBackend, collection_id: str, count: int
    ) -> tuple[int, bool]:
        """(bytes, estimated)"""
        seq = backend.version(collection_id)
        with self._lock:
            known = self._known.get(collection_id)
        if known is not None and known[0] == seq:
            return known[1], known[2]
        estimated = count > EXACT_TEXT_ROWS
        summed, rows = backend.text_bytes(collection_id, EXACT_TEXT_ROWS)
        nbytes = round(summed * count / rows) if estimated and rows else summed
        with self._lock:
            self._known[collection_id] = (seq, nbytes, estimated)
        return nbytes, estimated


def disk_bytes(
    backend: ServedBackend, model: CollectionModel, count: int, sizes: SizeCache
) -> dict[str, Any]:
    """The collection's share of the store folder: its index snapshot, its vectors and
    the bytes of its ids, documents and metadata in SQLite (data, without SQLite's page
    and index overhead)."""
    index = int(backend.index_status(model.id)["snapshot_bytes"])
    vectors = count * (model.dimension or 0) * 4
    text, estimated = sizes.text_bytes(backend, model.id, count)
    return {
        "index": index,
        "vectors": vectors,
        "text": text,
        "total": index + vectors + text,
        "text_estimated": estimated,
    }


# -- the server ------------------------------------------------------------------------------


class RecentRequests:
    """Snapshots of the request totals, so that the rate and latency percentiles cover
    the last minute rather than the process's whole life."""

    def __init__(self, metrics: Metrics, exclude_prefix: str) -> None:
        self.metrics = metrics
        self.exclude_prefix = exclude_prefix
        self._snapshots: collections.deque[RequestTotals] = collections.deque()
        self._lock = threading.Lock()

    def window(self) -> RequestWindow:
        """The requests of the recent window (since start while it is younger)."""
        now = self.metrics.totals(self.exclude_prefix)
        with self._lock:
            while self._snapshots and now.at - self._snapshots[0].at > STATS_WINDOW_S:
                self._snapshots.popleft()
            oldest = self._snapshots[0] if self._snapshots else None
            self._snapshots.append(now)
        if oldest is None or now.at - oldest.at < 1.0:
            oldest = RequestTotals(self.metrics.started, 0, (0,) * len(now.buckets))
        return now.since(oldest)


def server_stats(state: ServerState, recent: RequestWindow, metrics: Metrics) -> dict[str, Any]:
    sizes = state.collection_sizes()
    p50, p99 = recent.quantile(0.5), recent.quantile(0.99)
    plans = state.backend.plan_cache_stats()
    return {
        "version": haima.__version__,
        "pid": os.getpid(),
        "started_at": metrics.started_at,
        "uptime_s": time.monotonic() - metrics.started,
        "window_s": recent.seconds,
        "requests": recent.count,
        "requests_per_s": recent.per_second,
        "latency_ms": {
            "p50": None if p50 is None else p50 * 1000,
            "p99": None if p99 is None else p99 * 1000,
        },
        "collections": len(sizes),
        "records": sum(count for *_, count in sizes),
        "filter_cache": {"plans": plans.plans, "views": plans.views, "bytes": plans.nbytes},
    }


# -- the map ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapSample:
    """A seeded uniform sample of a collection and its 2-D projection."""

    total: int
    ids: list[str]
    documents: list[str | None]
    metadatas: list[dict[str, Any] | None]
    points: npt.NDArray[np.float64]
    projection: Projection


class MapCache:
    """The last few samples, by collection version, so that dropping queries on a map
    does not sample and project again."""

    def __init__(self, entries: int = 4) -> None:
        self._entries = entries
        self._samples: collections.OrderedDict[tuple[str, int, int, int], MapSample] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def sample(self, state: ServerState, collection: Collection, size: int, seed: int) -> MapSample:
        seq = state.backend.version(collection.id)
        key = (collection.id, seq, size, seed)
        with self._lock:
            found = self._samples.get(key)
            if found is not None:
                self._samples.move_to_end(key)
                return found
        made = _sample(collection, size, seed)
        with self._lock:
            self._samples[key] = made
            while len(self._samples) > self._entries:
                self._samples.popitem(last=False)
        return made


def _sample(collection: Collection, size: int, seed: int) -> MapSample:
    include: list[IncludeField] = ["embeddings", "documents", "metadatas"]
    total = collection.count()
    if total <= size:
        got = collection.get(include=include)
    else:
        every = collection.get(include=[])["ids"]
        total = len(every)
        chosen = np.sort(np.random.default_rng(seed).choice(total, size, replace=False))
        got = collection.get(ids=[every[i] for i in chosen], include=include)
    vectors = got["embeddings"]
    dimension = collection.dimension or 0
    matrix = np.zeros((0, dimension)) if vectors is None or not len(vectors) else vectors
    metric = CollectionConfiguration.from_json(collection.configuration).metric
    projection = fit_pca(matrix, normalise=metric == "cosine", seed=seed)
    documents = [None if d is None else d[:MAP_DOCUMENT_CHARS] for d in (got["documents"] or [])]
    return MapSample(
        total=total,
        ids=list(got["ids"]),
        documents=documents,
        metadatas=list(got["metadatas"] or []),
        points=projection.apply(matrix) if len(matrix) else np.zeros((0, 2)),
        projection=projection,
    )


def map_json(sample: MapSample) -> dict[str, Any]:
    return {
        "total": sample.total,
        "ids": sample.ids,
        "points": _rounded(sample.points),
        "documents": sample.documents,
        "metadatas": sample.metadatas,
        "explained_variance": list(sample.projection.explained),
        "normalised": sample.projection.normalise,
    }


def query_vectors(
    state: ServerState, collection: Collection, body: dict[str, Any]
) -> tuple[Vectors, str | None]:
    """The one query vector of a body with `query_texts` (embedded by the collection's
    function) or `query_embeddings`, and the text if one was given."""
    texts, embeddings = body.get("query_texts"), body.get("query_embeddings")
    if (texts is None) == (embeddings is None):
        raise InvalidArgumentError("query: give exactly one of query_embeddings or query_texts")
    if embeddings is not None:
        vectors = validation.query_embeddings(
            decode_embeddings(embeddings, "query_embeddings"), collection.dimension
        )
        text = None
    else:
        given = [texts] if isinstance(texts, str) else texts
        if not isinstance(given, list) or len(given) != 1 or not isinstance(given[0], str):
            raise InvalidArgumentError("query_texts: give one text")
        fn = state.function_for(collection.configuration)
        if fn is None:
            raise InvalidArgumentError(
                f"query_texts: collection {collection.name!r} has no embedding function this "
                "server can run, so give query_embeddings"
            )
        vectors = embed_queries(fn, given, field="query_texts")
        text = given[0]
    if len(vectors) != 1:
        raise InvalidArgumentError(f"query: give one query, got {len(vectors)}")
    return vectors, text


def dropped_query(
    sample: MapSample, collection: Collection, vectors: Vectors, n_results: int
) -> dict[str, Any]:
    """Where a query lands on the map, and its nearest records (wherever they lie)."""
    found = collection.query(
        query_embeddings=vectors,
        n_results=n_results,
        include=["documents", "distances", "embeddings"],
    )
    hits = found["embeddings"][0] if found["embeddings"] else np.zeros((0, vectors.shape[1]))
    neighbour_points = sample.projection.apply(hits) if len(hits) else np.zeros((0, 2))
    documents = (found["documents"] or [[]])[0]
    distances = (found["distances"] or [[]])[0]
    return {
        "point": _rounded(sample.projection.apply(vectors))[0],
        "neighbors": [
            {
                "id": record_id,
                "distance": float(distance),
                "document": None if doc is None else doc[:MAP_DOCUMENT_CHARS],
                "point": point,
            }
            for record_id, distance, doc, point in zip(
                found["ids"][0], distances, documents, _rounded(neighbour_points), strict=True
            )
        ],
    }


def _rounded(points: npt.NDArray[np.float64]) -> list[list[float]]:
    return [[round(float(x), 5), round(float(y), 5)] for x, y in points]


# -- a record --------------------------------------------------------------------------------


def record_neighbours(collection: Collection, record_id: str, n_results: int) -> dict[str, Any]:
    """A record with its vector's norm and its nearest records (itself left out)."""
    got = collection.get(ids=[record_id], include=["embeddings", "documents", "metadatas"])
    if not got["ids"]:
        raise NotFoundError(f"id: no record {record_id!r} in collection {collection.name!r}")
    assert got["embeddings"] is not None
    vector = np.asarray(got["embeddings"][0], dtype=np.float32)
    found = collection.query(
        query_embeddings=vector[None, :],
        n_results=n_results + 1,
        include=["documents", "metadatas", "distances"],
    )
    neighbours = [
        {"id": i, "distance": float(d), "document": doc, "metadata": md}
        for i, d, doc, md in zip(
            found["ids"][0],
            (found["distances"] or [[]])[0],
            (found["documents"] or [[]])[0],
            (found["metadatas"] or [[]])[0],
            strict=True,
        )
        if i != record_id
    ][:n_results]
    return {
        "id": record_id,
        "document": (got["documents"] or [None])[0],
        "metadata": (got["metadatas"] or [None])[0],
        "dimension": int(vector.shape[0]),
        "norm": float(np.linalg.norm(vector.astype(np.float64))),
        "head": [float(v) for v in vector[:8]],
        "neighbors": neighbours,
    }
