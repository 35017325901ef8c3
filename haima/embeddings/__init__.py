"""Embedding functions: the protocol, the providers and the default."""

from haima.embeddings.base import (
    EmbeddingFunction,
    EmbeddingSpec,
    QueryEmbeddingFunction,
    SpecifiedEmbeddingFunction,
    embed_documents,
    embed_queries,
    from_spec,
    register_provider,
    spec_of,
)

__all__ = [
    "EmbeddingFunction",
    "EmbeddingSpec",
    "QueryEmbeddingFunction",
    "SpecifiedEmbeddingFunction",
    "embed_documents",
    "embed_queries",
    "from_spec",
    "register_provider",
    "spec_of",
]
