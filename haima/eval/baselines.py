"""A known-bad embedding function, as the floor any real model must beat.

`RandomEmbeddingFunction` gives each text a fixed pseudo-random unit vector (seeded by a
hash of the text), so it is deterministic but knows nothing about meaning: retrieval with
it is chance. `haima eval --embedding random` uses it; a model that does not clearly beat
it on your data is not doing its job. Importing this module registers the "random"
provider, so a collection created with it can be reopened in the same process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from haima.embeddings import EmbeddingSpec, Vectors, register_provider
from haima.errors import InvalidArgumentError

PROVIDER = "random"


class RandomEmbeddingFunction:
    """Unit vectors drawn from a generator seeded by sha256(seed, text): the same text
    always gets the same vector, different texts unrelated ones."""

    def __init__(self, *, dim: int = 64, seed: int = 0) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidArgumentError(f"random embedding: dim must be a positive int, got {dim!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidArgumentError(f"random embedding: seed must be an int, got {seed!r}")
        self.dim = dim
        self.seed = seed
        self.name = f"random-{dim}d-seed{seed}"

    def __call__(self, texts: Sequence[str], /) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            digest = hashlib.sha256(f"{self.seed}\x00{text}".encode()).digest()
            vector = np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal(
                self.dim
            )
            out[row] = vector / np.linalg.norm(vector)
        return out

    def spec(self) -> EmbeddingSpec:
        return {"provider": PROVIDER, "model": "random", "dim": self.dim, "seed": self.seed}

    @classmethod
    def from_spec(cls, spec: EmbeddingSpec) -> RandomEmbeddingFunction:
        unknown = set(spec) - {"provider", "model", "dim", "seed"}
        if unknown:
            raise InvalidArgumentError(
                f"embedding spec for {PROVIDER!r}: unknown option(s) {', '.join(sorted(unknown))}"
            )
        return cls(dim=spec.get("dim", 64), seed=spec.get("seed", 0))

    def __repr__(self) -> str:
        return f"RandomEmbeddingFunction(dim={self.dim}, seed={self.seed})"


register_provider(PROVIDER, RandomEmbeddingFunction.from_spec)
