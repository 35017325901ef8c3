"""Run several configurations over one dataset, side by side, in one process.

For each configuration: embed the corpus and the queries (once per model, through an
on-disk cache, so a second run over the same model is fast), build a collection in a
fresh store (a temporary folder, or a server), time the ingestion, run every query and
time it, score the rankings, and measure the store on disk. Then the best configuration
by mean nDCG@k is compared with each other one by a paired bootstrap test.

What is timed, so that numbers compare across configurations and runs:

* ingestion: `add` of precomputed vectors (with their documents) plus `build_index()` —
  the database's work, not the model's (embedding time is reported apart, as `embed_s`,
  and is near zero when the cache answers);
* query latency: one `collection.query` per query, its vector precomputed (vector mode)
  or its text looked up in memory (keyword and hybrid modes), after one untimed warm-up.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from haima.backends.base import QueryMode
from haima.client import Client, PersistentClient
from haima.collection import Collection
from haima.embeddings import (
    CachedEmbeddingFunction,
    EmbeddingFunction,
    EmbeddingSpec,
    Vectors,
    cached,
    embed_documents,
    embed_queries,
    spec_of,
)
from haima.errors import HaimaError
from haima.eval.configs import RunConfig
from haima.eval.datasets import Dataset, Document
from haima.eval.metrics import directory_size, percentile, score_query, throughput
from haima.eval.significance import paired_bootstrap
from haima.settings import Settings

#: Records per `add` call: small enough for a server's request limit.
ADD_BATCH = 500
DEFAULT_KS = (1, 5, 10)
#: The embedding cache file inside the cache folder.
CACHE_FILENAME = "embeddings.sqlite3"
Log = Callable[[str], None]


def enable_keyword_index(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """The collection configuration for keyword and hybrid modes: the same, with the
    keyword (BM25) index turned on (`{"keyword": {"enabled": True}}`, see haima/config.py).
    The one place the runner sets it; other keyword settings given (e.g. `rrf_k`) stay."""
    keyword = dict(configuration.get("keyword") or {})
    return {**configuration, "keyword": {**keyword, "enabled": True}}


@dataclass
class ConfigResult:
    """One configuration's numbers. `metrics` are means over the evaluated queries;
    `per_query` keeps every query's scores for significance tests."""

    config: RunConfig
    metrics: dict[str, float] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    embed_s: float = math.nan
    cache_hits: int = 0
    cache_misses: int = 0
    ingest_s: float = math.nan
    docs_indexed: int = 0
    index_bytes: int | None = None
    #: p-value of the paired bootstrap against the best configuration (None for the best).
    p_value: float | None = None
    best: bool = False
    #: Why the configuration could not run (its numbers are then empty).
    error: str | None = None

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_ms, 95)

    @property
    def ingest_docs_per_s(self) -> float:
        return throughput(self.docs_indexed, self.ingest_s) if self.docs_indexed else math.nan


@dataclass
class EvalRun:
    """Everything one `haima eval` produced."""

    dataset: Dataset
    ks: tuple[int, ...]
    results: list[ConfigResult]
    #: Judged queries without any relevant document, left out of every average.
    skipped_queries: list[str] = field(default_factory=list)
    #: Documents with no text, not indexed (they can never be retrieved).
    empty_documents: list[str] = field(default_factory=list)

    @property
    def primary_k(self) -> int:
        """The k of the headline metrics (nDCG, MRR, MAP) and of the significance test:
        10 when asked for, else the largest k."""
        return 10 if 10 in self.ks else max(self.ks)

    @property
    def evaluated_queries(self) -> int:
        return len(self.dataset.queries) - len(self.skipped_queries)


# -- targets: where each configuration's collection lives -------------------------------------


class Target(Protocol):
    """Opens a fresh collection for one configuration and cleans up after it."""

    def open(
        self, config: RunConfig, fn: EmbeddingFunction, configuration: dict[str, Any]
    ) -> Collection: ...

    def close(self) -> int | None:
        """Release the store; return its size on disk in bytes when known."""


class EmbeddedTarget:
    """A new `PersistentClient` in its own folder, so the size on disk is real. Indexes
    are built synchronously (`build_index`), never by a background thread that would
    compete with the timed queries."""

    def __init__(self, root: Path | None = None, keep: bool = False) -> None:
        self.root = root
        self.keep = keep
        self._client: Client | None = None
        self._path: Path | None = None

    def open(
        self, config: RunConfig, fn: EmbeddingFunction, configuration: dict[str, Any]
    ) -> Collection:
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
        self._path = Path(tempfile.mkdtemp(prefix=f"{_slug(config.name)}-", dir=self.root))
        self._client = PersistentClient(self._path, Settings(background_indexing=False))
        return self._client.create_collection(
            "eval", configuration=configuration, embedding_function=fn
        )

    def close(self) -> int | None:
        if self._client is None or self._path is None:
            return None
        self._client.close()  # writes the index snapshots, which belong to the size
        size = directory_size(self._path)
        if not self.keep:
            shutil.rmtree(self._path, ignore_errors=True)
        self._client = None
        return size


class ServerTarget:
    """A uniquely named collection on a server, deleted afterwards. Its size on disk is
    not visible from here."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._name: str | None = None

    def open(
        self, config: RunConfig, fn: EmbeddingFunction, configuration: dict[str, Any]
    ) -> Collection:
        self._name = f"haima-eval-{_slug(config.name)}-{uuid.uuid4().hex[:8]}"
        return self.client.create_collection(
            self._name, configuration=configuration, embedding_function=fn
        )

    def close(self) -> int | None:
        if self._name is not None:
            self.client.delete_collection(self._name)
            self._name = None
        return None


# -- embeddings ------------------------------------------------------------------------------


@dataclass
class _Embedded:
    """One model's vectors for the corpus and the queries, and what they cost."""

    fn: EmbeddingFunction
    documents: Vectors
    queries: Vectors
    seconds: float
    hits: int
    misses: int


class _Precomputed:
    """The collection's embedding function: answers the dataset's texts from memory, and
    any other text with the real model. Keeps the model's spec, so the collection records
    which model made its vectors."""

    def __init__(self, embedded: _Embedded, doc_texts: Sequence[str], query_texts: Sequence[str]):
        self._fn = embedded.fn
        self._docs = {t: embedded.documents[i] for i, t in enumerate(doc_texts)}
        self._queries = {t: embedded.queries[i] for i, t in enumerate(query_texts)}
        self.name = getattr(embedded.fn, "name", "precomputed")

    def __call__(self, texts: Sequence[str], /) -> Vectors:
        return self._lookup(texts, self._docs, lambda missing: embed_documents(self._fn, missing))

    def embed_query(self, texts: Sequence[str], /) -> Vectors:
        return self._lookup(texts, self._queries, lambda missing: embed_queries(self._fn, missing))

    def spec(self) -> EmbeddingSpec | None:
        return spec_of(self._fn)

    @staticmethod
    def _lookup(
        texts: Sequence[str], known: Mapping[str, Vectors], embed: Callable[[list[str]], Vectors]
    ) -> Vectors:
        if all(t in known for t in texts):
            return np.stack([known[t] for t in texts])
        return embed(list(texts))


def _embed(
    config: RunConfig, doc_texts: list[str], query_texts: list[str], cache_dir: Path | None
) -> _Embedded:
    model = config.embedding_function()
    spec = config.embedding_spec()
    # The chance baseline costs nothing to recompute; a cache would only grow.
    use_cache = (
        cache_dir is not None
        and isinstance(getattr(model, "name", None), str)
        and (spec is None or spec.get("provider") != "random")
    )
    fn: EmbeddingFunction = model
    if use_cache and cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)  # a folder, never taken for the file
        fn = cached(model, cache_dir / CACHE_FILENAME)
    try:
        start = time.perf_counter()
        documents = embed_documents(fn, doc_texts)
        queries = embed_queries(fn, query_texts)
        seconds = time.perf_counter() - start
    finally:
        if isinstance(fn, CachedEmbeddingFunction):
            fn.close()
    hits = fn.hits if isinstance(fn, CachedEmbeddingFunction) else 0
    misses = (
        fn.misses if isinstance(fn, CachedEmbeddingFunction) else len(doc_texts) + len(query_texts)
    )
    return _Embedded(model, documents, queries, seconds, hits, misses)


# -- the run ---------------------------------------------------------------------------------


def run_eval(
    dataset: Dataset,
    configs: Sequence[RunConfig],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    cache_dir: str | Path | None = None,
    target: Target | None = None,
    log: Log | None = None,
    seed: int = 0,
) -> EvalRun:
    """Evaluate every configuration on `dataset`; see the module docstring.

    cache_dir: where corpus and query embeddings are cached (None: no cache).
    target: where collections are built (default: temporary embedded stores).
    log: called with one line per step (the CLI prints them).
    A configuration that fails (a missing package, a model error, a keyword index that
    cannot be built) gets its `error` set and the others still run."""
    if not configs:
        raise ValueError("run_eval needs at least one configuration")
    say = log or (lambda _line: None)
    ks = tuple(sorted(set(ks)))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks!r}")
    target = target or EmbeddedTarget()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else None
    skipped = [q for q in dataset.queries if not dataset.relevant(q)]
    query_ids = [q for q in dataset.queries if dataset.relevant(q)]
    query_texts = [dataset.queries[q] for q in query_ids]
    documents = [d for d in dataset.corpus.values() if d.content.strip()]
    empty = [d.id for d in dataset.corpus.values() if not d.content.strip()]
    run = EvalRun(dataset, ks, [], skipped, empty)
    if not query_ids:
        raise ValueError(
            f"{dataset.name}: no query of split {dataset.split!r} has a relevant document"
        )
    embedded: dict[str, _Embedded] = {}
    for number, config in enumerate(configs, start=1):
        say(f"[{number}/{len(configs)}] {config.name}")
        result = ConfigResult(config)
        try:
            key = config.model_key()
            if key not in embedded:
                embedded[key] = _embed(config, [d.content for d in documents], query_texts, cache)
            vectors = embedded[key]
            result.embed_s = vectors.seconds
            result.cache_hits, result.cache_misses = vectors.hits, vectors.misses
            say(
                f"  embedded {len(documents)} documents and {len(query_ids)} queries "
                f"in {vectors.seconds:.1f} s ({vectors.hits} from the cache)"
            )
            _measure(
                config, vectors, documents, query_ids, query_texts, dataset, ks, target, result
            )
            say(
                f"  nDCG@{run.primary_k} {result.metrics[f'ndcg@{run.primary_k}']:.3f}, "
                f"p50 {result.p50_ms:.2f} ms, {result.ingest_docs_per_s:,.0f} docs/s"
            )
        except HaimaError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            # partial numbers of a failed run are not comparable with the others
            result.per_query.clear()
            result.latencies_ms.clear()
            say(f"  failed: {result.error}")
        run.results.append(result)
    _compare(run, seed)
    return run


def _measure(
    config: RunConfig,
    vectors: _Embedded,
    documents: Sequence[Document],
    query_ids: list[str],
    query_texts: list[str],
    dataset: Dataset,
    ks: tuple[int, ...],
    target: Target,
    result: ConfigResult,
) -> None:
    configuration = dict(config.configuration)
    if config.mode != "vector":
        configuration = enable_keyword_index(configuration)
    fn = _Precomputed(vectors, [d.content for d in documents], query_texts)
    try:
        collection = target.open(config, fn, configuration)
        start = time.perf_counter()
        fill(collection, documents, vectors.documents)
        result.ingest_s = time.perf_counter() - start
        result.docs_indexed = len(documents)
        search = _searcher(collection, config.mode, max(ks))
        search(0, vectors.queries, query_texts)  # warm-up: caches, lazy loads, FAISS threads
        for i, query_id in enumerate(query_ids):
            start = time.perf_counter()
            ranked = search(i, vectors.queries, query_texts)
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            result.per_query[query_id] = score_query(ranked, dataset.qrels[query_id], ks)
    finally:
        size = target.close()  # also after a failure: no store is left behind
    result.index_bytes = size
    names = next(iter(result.per_query.values())).keys()
    result.metrics = {
        name: float(np.mean([scores[name] for scores in result.per_query.values()]))
        for name in names
    }


def fill(collection: Collection, documents: Sequence[Document], vectors: Vectors) -> None:
    """Add the corpus with its precomputed vectors in batches, then build the index."""
    for lo in range(0, len(documents), ADD_BATCH):
        batch = documents[lo : lo + ADD_BATCH]
        collection.add(
            ids=[d.id for d in batch],
            embeddings=vectors[lo : lo + len(batch)],
            documents=[d.content for d in batch],
        )
    collection.build_index()


def _searcher(
    collection: Collection, mode: str, n: int
) -> Callable[[int, Vectors, list[str]], list[str]]:
    """One query's ranked ids. Vector mode passes the vector; other modes pass the text
    and `mode=` (the collection embeds the text from memory through `_Precomputed`)."""
    query_mode = cast(QueryMode, mode)  # RunConfig checked it against QUERY_MODES

    def vector(i: int, embeddings: Vectors, texts: list[str]) -> list[str]:
        found = collection.query(query_embeddings=embeddings[i : i + 1], n_results=n, include=[])
        return list(found["ids"][0])

    def textual(i: int, embeddings: Vectors, texts: list[str]) -> list[str]:
        found = collection.query(query_texts=[texts[i]], n_results=n, include=[], mode=query_mode)
        return list(found["ids"][0])

    return vector if mode == "vector" else textual


def _compare(run: EvalRun, seed: int) -> None:
    """Mark the best configuration by mean nDCG@k and test each other one against it."""
    metric = f"ndcg@{run.primary_k}"
    done = [r for r in run.results if r.error is None]
    if not done:
        return
    best = max(done, key=lambda r: r.metrics[metric])
    best.best = True
    queries = list(best.per_query)
    for result in done:
        if result is not best:
            result.p_value = paired_bootstrap(
                [best.per_query[q][metric] for q in queries],
                [result.per_query[q][metric] for q in queries],
                seed=seed,
            )


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40] or "config"
