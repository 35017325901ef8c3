"""Embeddings both ways: a Haima function as LangChain `Embeddings` (`HaimaEmbeddings`),
and LangChain `Embeddings` as a Haima function (`from_langchain`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from haima.embeddings import (
    EmbeddingFunction,
    Vectors,
    default_embedding_function,
    embed_documents,
    embed_queries,
)


class HaimaEmbeddings(Embeddings):
    """A Haima embedding function as LangChain `Embeddings`.

    `embed_documents` uses the function's document path (`fn(texts)`), `embed_query` its
    query path (`fn.embed_query`, e.g. e5's "query: " prefix). Without a function, Haima's
    default offline model (multilingual USE, 512 dims) is used. Texts must be non-empty.
    """

    def __init__(self, function: EmbeddingFunction | None = None) -> None:
        self.function: EmbeddingFunction = (
            function if function is not None else default_embedding_function()
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = embed_documents(self.function, texts)
        return [row.tolist() for row in vectors]

    def embed_query(self, text: str) -> list[float]:
        vector: list[float] = embed_queries(self.function, [text])[0].tolist()
        return vector

    def __repr__(self) -> str:
        return f"HaimaEmbeddings({self.function!r})"


class LangChainEmbeddingFunction:
    """A LangChain `Embeddings` object as a Haima embedding function: documents go through
    `embed_documents`, query texts through `embed_query` (one call per text).

    It has no `spec()`: like any user function it is not persisted with the collection,
    so pass it again to `get_collection`. `name` (None unless given) is the model id that
    `haima.embeddings.cached` keys its cache with; give one that changes whenever the
    vectors would.
    """

    def __init__(self, embeddings: Embeddings, *, name: str | None = None) -> None:
        self.embeddings = embeddings
        self.name = name

    def __call__(self, texts: Sequence[str], /) -> Vectors:
        return np.asarray(self.embeddings.embed_documents(list(texts)), dtype=np.float32)

    def embed_query(self, texts: Sequence[str], /) -> Vectors:
        return np.asarray([self.embeddings.embed_query(t) for t in texts], dtype=np.float32)

    def __repr__(self) -> str:
        return f"LangChainEmbeddingFunction({self.embeddings!r})"


def from_langchain(embeddings: Embeddings, *, name: str | None = None) -> EmbeddingFunction:
    """A Haima embedding function for LangChain `embeddings`. A `HaimaEmbeddings` gives back
    the Haima function it wraps, so its spec is still stored with a collection."""
    if isinstance(embeddings, HaimaEmbeddings) and name is None:
        return embeddings.function
    return LangChainEmbeddingFunction(embeddings, name=name)


def as_langchain(embedding: Embeddings | EmbeddingFunction) -> Embeddings:
    """`embedding` as LangChain `Embeddings` (a Haima function is wrapped)."""
    if isinstance(embedding, Embeddings):
        return embedding
    if callable(embedding):
        return HaimaEmbeddings(embedding)
    raise TypeError(
        f"embedding: expected LangChain Embeddings or a Haima embedding function, "
        f"got {type(embedding).__name__}"
    )
