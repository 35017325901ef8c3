"""Collection configuration: the index type, its parameters, the distance metric and the
keyword (BM25) index.

Two input forms are accepted and normalised to one `CollectionConfiguration`:

* Haima's: ``{"index": {"type": "hnsw", "max_neighbors": 32}, "metric": "cosine"}``
* Chroma's: ``{"hnsw": {"space": "cosine", "ef_search": 100, ...}}``. Chroma always builds
  HNSW; Haima maps this form to ``auto`` with those HNSW parameters, which is exact while
  the collection is small and the same HNSW beyond the threshold.

Chroma's older ``metadata={"hnsw:space": "cosine"}`` also sets the metric.

Haima's form also takes ``{"keyword": {"enabled": True, "fusion": "convex", "weight": 0.8}}``:
a keyword index for ``query(mode="keyword" | "hybrid")`` and how hybrid fuses the two
rankings (see docs/hybrid-search.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from haima import validation
from haima.errors import InvalidArgumentError

Metric = Literal["cosine", "l2", "ip"]
IndexType = Literal["auto", "flat", "hnsw", "ivf", "ivf_pq", "sq8"]

#: Collections in `auto` mode switch from exact search to HNSW above this many vectors.
#: Measured on 2 cores at 384 dims: exact search takes 3.6 ms at 20k vectors and 16 ms
#: at 100k, HNSW (M=16, ef=100) 0.7 ms at 100k; building HNSW costs ~0.4 ms a vector,
#: done in the background while exact search keeps answering.
AUTO_HNSW_THRESHOLD = 20_000

_METRICS: tuple[str, ...] = get_args(Metric)
_INDEX_TYPES: tuple[str, ...] = get_args(IndexType)
_CHROMA_SPACES = {"cosine": "cosine", "l2": "l2", "ip": "ip"}


@dataclass(frozen=True)
class IndexConfig:
    type: IndexType = "auto"
    #: HNSW graph degree (FAISS `M`; Chroma's `max_neighbors`).
    max_neighbors: int = 16
    ef_construction: int = 100
    ef_search: int = 100
    #: IVF lists; None picks about 4·√n when the index is trained.
    nlist: int | None = None
    nprobe: int = 16
    #: PQ sub-quantizers for ivf_pq; None picks dim/4 (rounded to a divisor of dim).
    pq_m: int | None = None
    pq_nbits: int = 8
    #: Vectors in `auto` mode before HNSW is built.
    auto_threshold: int = AUTO_HNSW_THRESHOLD
    #: FAISS threads per search; None lets FAISS use every core.
    num_threads: int | None = None


#: Parameters that only affect searching, so `modify` may change them in place.
SEARCH_TIME_FIELDS = frozenset({"ef_search", "nprobe", "num_threads"})

#: Reciprocal rank fusion's constant (Cormack et al. 2009): a record ranked r-th on one
#: side adds 1 / (rrf_k + r) to its fused score.
DEFAULT_RRF_K = 60

Fusion = Literal["convex", "rrf"]

#: The keyword side's share in convex fusion. Chosen on Cranfield and CMRC 2018 with the
#: default embedding model (docs/hybrid-search.md): BM25 was the stronger half on both, and
#: 0.8 kept hybrid at or above it while still letting the vectors reorder close calls.
DEFAULT_KEYWORD_WEIGHT = 0.8


@dataclass(frozen=True)
class KeywordConfig:
    """The keyword (BM25) index. Off by default: ingestion of short English documents
    took 15% longer with it, of 100-character Chinese chunks 3.6 times as long
    (docs/hybrid-search.md), and it needs rjieba (the `rag` extra); users of vector
    search alone should pay neither."""

    enabled: bool = False
    #: How `mode="hybrid"` fuses the two rankings: "convex" (normalised scores, weighted)
    #: or "rrf" (reciprocal rank fusion, equal weights).
    fusion: Fusion = "convex"
    #: The keyword side's share in convex fusion, in [0, 1] (0: vectors only).
    weight: float = DEFAULT_KEYWORD_WEIGHT
    #: RRF's constant; larger values flatten the rank weights.
    rrf_k: int = DEFAULT_RRF_K


def keyword_index_missing(mode: str, collection: str) -> InvalidArgumentError:
    """The error of a keyword or hybrid query on a collection without the keyword index,
    naming both ways to turn it on (every backend raises this one)."""
    return InvalidArgumentError(
        f"mode={mode!r}: collection {collection!r} has no keyword index; enable "
        f"it with `haima collections modify {collection} --keyword` or, in Python, "
        "collection.modify(configuration={'keyword': {'enabled': True}}) (either "
        "indexes the stored documents), or create the collection with that "
        "configuration"
    )


@dataclass(frozen=True)
class CollectionConfiguration:
    metric: Metric = "cosine"
    index: IndexConfig = field(default_factory=IndexConfig)
    #: Spec of the collection's embedding function (provider, model, options), if known.
    embedding_function: dict[str, Any] | None = None
    keyword: KeywordConfig = field(default_factory=KeywordConfig)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "index": dataclasses.asdict(self.index),
            "embedding_function": self.embedding_function,
            "keyword": dataclasses.asdict(self.keyword),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectionConfiguration:
        return cls(
            metric=cast(Metric, data["metric"]),
            index=IndexConfig(**data["index"]),
            embedding_function=data.get("embedding_function"),
            # Stores written before the keyword index existed have no such section.
            keyword=KeywordConfig(**data.get("keyword", {})),
        )


def parse_configuration(
    configuration: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None = None,
) -> CollectionConfiguration:
    """Normalise either configuration form (and Chroma's `hnsw:space` metadata)."""
    if configuration is not None and not isinstance(configuration, Mapping):
        raise InvalidArgumentError(
            f"configuration: expected a dict, got {type(configuration).__name__}"
        )
    config = dict(configuration or {})
    metric: str = "cosine"
    index_fields: dict[str, Any] = {}
    if metadata and "hnsw:space" in metadata:
        metric = _chroma_space(metadata["hnsw:space"], "metadata.hnsw:space")

    chroma_hnsw = config.pop("hnsw", None)
    if chroma_hnsw is not None:
        if not isinstance(chroma_hnsw, Mapping):
            raise InvalidArgumentError("configuration.hnsw: expected a dict")
        for key, value in chroma_hnsw.items():
            if key == "space":
                metric = _chroma_space(value, "configuration.hnsw.space")
            elif key in ("ef_search", "ef_construction", "max_neighbors", "num_threads"):
                low = 2 if key == "max_neighbors" else 1
                index_fields[key] = _positive_int(value, f"configuration.hnsw.{key}", low)
            elif key in ("batch_size", "sync_threshold", "resize_factor"):
                continue  # Chroma's write-buffer tuning; Haima's buffering differs.
            else:
                raise InvalidArgumentError(f"configuration.hnsw: unknown setting {key!r}")
    # Chroma's other sections: accepted so that Chroma clients' payloads work.
    config.pop("spann", None)
    embedding_spec = config.pop("embedding_function", None)
    if embedding_spec is not None and not isinstance(embedding_spec, Mapping):
        raise InvalidArgumentError("configuration.embedding_function: expected a dict")

    if "metric" in config:
        metric = _choice(config.pop("metric"), _METRICS, "configuration.metric")
    index_section = config.pop("index", None)
    if index_section is not None:
        if not isinstance(index_section, Mapping):
            raise InvalidArgumentError("configuration.index: expected a dict")
        index_fields.update(_index_fields(index_section))
    keyword_fields = _keyword_fields(config.pop("keyword", None))
    if config:
        raise InvalidArgumentError(
            f"configuration: unknown setting(s) {sorted(config)} "
            "(expected 'index', 'metric', 'keyword', 'hnsw', 'embedding_function')"
        )
    return CollectionConfiguration(
        metric=cast(Metric, metric),
        index=IndexConfig(**index_fields),
        embedding_function=dict(embedding_spec) if embedding_spec else None,
        keyword=KeywordConfig(**keyword_fields),
    )


def updated_configuration(
    current: CollectionConfiguration, change: Mapping[str, Any]
) -> CollectionConfiguration:
    """Apply `modify(configuration=...)`: index settings may change, the metric may not."""
    requested = parse_configuration(change)
    if (
        "metric" in change
        or (isinstance(change.get("hnsw"), Mapping) and "space" in change["hnsw"])
    ) and requested.metric != current.metric:
        raise InvalidArgumentError(
            "configuration.metric: the metric of an existing collection cannot change "
            f"({current.metric} → {requested.metric}); create a new collection"
        )
    given: dict[str, Any] = {}
    if isinstance(change.get("index"), Mapping):
        given.update(change["index"])
    if isinstance(change.get("hnsw"), Mapping):
        given.update({k: v for k, v in change["hnsw"].items() if k != "space"})
    new_index = dataclasses.replace(
        current.index,
        **{name: getattr(requested.index, name) for name in given if hasattr(current.index, name)},
    )
    # Only the keyword settings named in the change move; the others keep their values.
    keyword_given = change.get("keyword") or {}
    new_keyword = dataclasses.replace(
        current.keyword, **{name: getattr(requested.keyword, name) for name in keyword_given}
    )
    return dataclasses.replace(current, index=new_index, keyword=new_keyword)


def _index_fields(section: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(IndexConfig)}
    out: dict[str, Any] = {}
    for key, value in section.items():
        path = f"configuration.index.{key}"
        if key == "type":
            out[key] = _choice(value, _INDEX_TYPES, path)
        elif key in ("M", "max_neighbors"):
            out["max_neighbors"] = _positive_int(value, path, low=2)
        elif key == "num_threads" or key in ("nlist", "pq_m"):
            out[key] = None if value is None else _positive_int(value, path)
        elif key in known:
            out[key] = _positive_int(value, path)
        else:
            raise InvalidArgumentError(
                f"configuration.index: unknown setting {key!r} (expected one of {sorted(known)})"
            )
    if "pq_nbits" in out and not 1 <= out["pq_nbits"] <= 16:
        raise InvalidArgumentError("configuration.index.pq_nbits: must be between 1 and 16")
    return out


def _keyword_fields(section: Any) -> dict[str, Any]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise InvalidArgumentError(
            "configuration.keyword: expected a dict such as {'enabled': True, 'weight': 0.8}, "
            f"got {type(section).__name__}"
        )
    known = {f.name for f in dataclasses.fields(KeywordConfig)}
    out: dict[str, Any] = {}
    for key, value in section.items():
        path = f"configuration.keyword.{key}"
        if key == "enabled":
            if not isinstance(value, bool):
                raise InvalidArgumentError(f"{path}: expected True or False, got {value!r}")
            out[key] = value
        elif key == "rrf_k":
            out[key] = _positive_int(value, path)
        elif key == "fusion":
            out[key] = _choice(value, get_args(Fusion), path)
        elif key == "weight":
            out[key] = _unit_interval(value, path)
        else:
            raise InvalidArgumentError(
                f"configuration.keyword: unknown setting {key!r} (expected one of {sorted(known)})"
            )
    return out


def _chroma_space(value: Any, path: str) -> str:
    return _CHROMA_SPACES[_choice(value, tuple(_CHROMA_SPACES), path)]


def _choice(value: Any, allowed: tuple[str, ...], path: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidArgumentError(f"{path}: expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _positive_int(value: Any, path: str, low: int = 1) -> int:
    """An int in [low, 2**31 - 1]: FAISS takes its settings as C ints. (An HNSW graph of
    degree 1 crashed FAISS outright, hence `low=2` for `max_neighbors`.)"""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        wanted = "a positive integer" if low == 1 else f"an integer of at least {low}"
        raise InvalidArgumentError(f"{path}: expected {wanted}, got {value!r}")
    if value > _C_INT_MAX:
        raise InvalidArgumentError(f"{path}: at most {_C_INT_MAX}, got {value}")
    return value


_C_INT_MAX = 2**31 - 1


def _unit_interval(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidArgumentError(f"{path}: expected a number in [0, 1], got {value!r}")
    return float(value)


def new_collection_settings(
    name: str,
    configuration: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    embedding_spec: dict[str, Any] | None,
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Validated metadata and the normalised configuration of a collection to create, with
    the embedding function's spec recorded unless the configuration names one already.
    Every client and the server create collections through this one rule."""
    validation.collection_name(name)
    md = validation.collection_metadata(metadata)
    config = parse_configuration(configuration, md)
    if embedding_spec is not None and config.embedding_function is None:
        config = dataclasses.replace(config, embedding_function=embedding_spec)
    return md, config.to_json()
