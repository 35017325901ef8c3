"""Shared machinery of the built-in providers: validation, batching, progress, repr."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from haima import deadline
from haima._progress import Advance, progress_bar
from haima.embeddings._validate import validate_texts
from haima.embeddings.base import EmbeddingSpec, Vectors
from haima.errors import EmbeddingFunctionError, InvalidArgumentError, RequestTimeoutError


def cpu_count() -> int:
    """Cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{field} must be a positive int, got {value!r}")
    return value


def as_vectors(raw: object, count: int, what: str) -> Vectors:
    """`raw` as a C-contiguous float32 (count, dim) array, or a clear error."""
    vectors = np.ascontiguousarray(raw, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != count:
        raise EmbeddingFunctionError(
            f"{what} returned an array of shape {vectors.shape} for {count} texts"
        )
    return vectors


class BaseEmbeddingFunction(ABC):
    """Base of the built-in providers.

    Subclasses set `provider`, `name` and `batch_size`, and implement `dim`, `spec` and
    `_embed_batch`. Calling the function validates the texts (the error names the bad
    index), embeds them `batch_size` at a time with a progress bar on long runs, and
    returns one float32 row per text.
    """

    #: The registry key of this provider, as written in its spec.
    provider: ClassVar[str]
    #: Model id; also the cache key of `haima.embeddings.cached`.
    name: str
    #: Texts per model call (and per progress-bar step).
    batch_size: int = 64
    #: Progress bar: None = automatic (long runs on a terminal), True, or False.
    progress: bool | None = None
    #: Characters of a text the model reads; the rest is cut before tokenizing, in every
    #: path (documents, queries, the server's /v1/embeddings), so a text's cost is bounded.
    #: Models with a token window set it to the window × 16 (no token is longer), which
    #: cuts nothing the model would have read.
    max_input_chars: int = 100_000

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of the vectors this function returns."""

    @abstractmethod
    def spec(self) -> EmbeddingSpec:
        """JSON-able description `{"provider": ..., "model": ..., options}`; no secrets."""

    @abstractmethod
    def _embed_batch(self, texts: list[str], query: bool) -> Vectors:
        """Embed one batch of already validated texts."""

    def __call__(self, texts: Sequence[str], /) -> Vectors:
        return self._run(validate_texts(texts), query=False)

    def _run(self, texts: list[str], *, query: bool) -> Vectors:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        limit = self.max_input_chars
        texts = [t if len(t) <= limit else t[:limit] for t in texts]
        with progress_bar(len(texts), f"embedding with {self.name}", self.progress) as advance:
            return self._embed_all(texts, query, advance)

    def _embed_all(self, texts: list[str], query: bool, advance: Advance) -> Vectors:
        """Embed every text, one `batch_size` slice at a time; overridable for parallelism."""
        if len(texts) <= self.batch_size:
            vectors = self._embed_batch(texts, query)
            advance(len(texts))
            return as_vectors(vectors, len(texts), repr(self))
        parts: list[Vectors] = []
        for start in range(0, len(texts), self.batch_size):
            self._stop_past_deadline(start, len(texts))
            chunk = texts[start : start + self.batch_size]
            parts.append(as_vectors(self._embed_batch(chunk, query), len(chunk), repr(self)))
            advance(len(chunk))
        return np.concatenate(parts)

    def _stop_past_deadline(self, done: int, total: int) -> None:
        """Between batches: a server request past its deadline stops here (see
        haima/deadline.py); without a deadline this never raises."""
        if deadline.expired():
            raise RequestTimeoutError(
                f"embedding with {self.name}: stopped at the request's deadline after "
                f"{done} of {total} texts"
            )

    def __repr__(self) -> str:
        try:
            spec = self.spec()
        except Exception:
            spec = {"provider": self.provider, "model": self.name}
        return f"{type(self).__name__}({spec!r})"


class QueryAwareEmbeddingFunction(BaseEmbeddingFunction):
    """A provider that embeds queries differently from documents (prefixes, prompts)."""

    def embed_query(self, texts: Sequence[str], /) -> Vectors:
        """Embed search queries (documents go through `__call__`)."""
        return self._run(validate_texts(texts, "queries"), query=True)


def spec_options(spec: EmbeddingSpec, provider: str, allowed: Sequence[str]) -> EmbeddingSpec:
    """The spec's options (everything but "provider"), refusing keys `provider` lacks."""
    if spec.get("provider") != provider:
        raise InvalidArgumentError(
            f"embedding spec: expected provider {provider!r}, got {spec.get('provider')!r}"
        )
    options = {k: v for k, v in spec.items() if k != "provider"}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidArgumentError(
            f"embedding spec for {provider!r}: unknown option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(allowed))})"
        )
    return options
