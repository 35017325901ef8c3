"""A 2-D projection of vectors for the console's embedding map: PCA with NumPy alone.

The two leading principal directions come from an exact eigendecomposition of the
covariance for small dimensions, and from a seeded randomized subspace iteration beyond
(Halko, Martinsson & Tropp 2011), which costs a few passes over the sample instead of a
covariance that grows with the square of the dimension. UMAP would separate
clusters better but pulls in numba and scikit-learn; a map that places a query among its
neighbours needs a linear projection, which PCA is.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: Up to this dimension the covariance is decomposed exactly; beyond, a few passes over
#: the sample cost less (5,000 × 384: 70 ms against 110 ms for the covariance's).
EXACT_MAX_DIM = 64
#: Randomized subspace iteration: block size (2 wanted + oversampling) and passes.
_BLOCK = 12
_PASSES = 6

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Projection:
    """x ↦ (normalised x − mean) · componentsᵀ; `explained` is each axis's share of the
    sample's variance."""

    mean: Floats
    components: Floats  # (2, dim), orthonormal rows
    explained: tuple[float, float]
    normalise: bool

    def apply(self, vectors: npt.ArrayLike) -> Floats:
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if self.normalise:
            x = _unit_rows(x)
        out: Floats = (x - self.mean) @ self.components.T
        return out


def fit_pca(vectors: npt.ArrayLike, normalise: bool = False, seed: int = 0) -> Projection:
    """The 2-D PCA of `vectors` (rows); with `normalise`, of their directions (what the
    cosine metric compares). Deterministic: signs are fixed so that each component's
    largest coordinate is positive."""
    with _one_blas_thread():
        return _fit(vectors, normalise, seed)


@functools.cache
def _blas_limit() -> Callable[..., Any] | None:
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")  # untyped
        limit: Callable[..., Any] = threadpoolctl.ThreadpoolController().limit
        return limit
    except Exception:  # without threadpoolctl, BLAS keeps its threads
        return None


def _one_blas_thread() -> AbstractContextManager[Any]:
    """BLAS on one thread. Beside FAISS's OpenMP threads (which wait passively) a
    multi-threaded OpenBLAS took 4.7 s for the 384 × 384 eigendecomposition that one
    thread does in 30 ms, on 2 cores."""
    limit = _blas_limit()
    return limit(limits=1, user_api="blas") if limit else nullcontext()


def _fit(vectors: npt.ArrayLike, normalise: bool, seed: int) -> Projection:
    x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    n, dim = x.shape
    if normalise:
        x = _unit_rows(x)
    mean = x.mean(axis=0) if n else np.zeros(dim)
    centred = x - mean
    components = np.zeros((2, dim))
    if n >= 2 and dim:
        found = _exact(centred) if dim <= EXACT_MAX_DIM else _randomized(centred, seed)
        components[: len(found)] = found
    for row in components:
        if row.any() and row[np.argmax(np.abs(row))] < 0:
            row *= -1
    total = float(np.square(centred).sum())
    projected = centred @ components.T
    shares = np.square(projected).sum(axis=0) / total if total > 0 else np.zeros(2)
    return Projection(mean, components, (float(shares[0]), float(shares[1])), normalise)


def _exact(centred: Floats) -> Floats:
    values, vectors = np.linalg.eigh(centred.T @ centred)
    order = np.argsort(values)[::-1][:2]
    top: Floats = vectors[:, order].T
    return top


def _randomized(centred: Floats, seed: int) -> Floats:
    """The top right singular vectors of `centred` by subspace iteration from a seeded
    Gaussian block (orthonormalised on the small side at each pass), then Rayleigh-Ritz."""
    rng = np.random.default_rng(seed)
    block = min(_BLOCK, *centred.shape)
    basis, _ = np.linalg.qr(rng.standard_normal((centred.shape[1], block)))
    for _ in range(_PASSES):
        basis, _ = np.linalg.qr(centred.T @ (centred @ basis))
    _, _, vt = np.linalg.svd(centred @ basis, full_matrices=False)
    top: Floats = (basis @ vt.T).T[:2]
    return top


def _unit_rows(x: Floats) -> Floats:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: Floats = x / np.where(norms > 0, norms, 1.0)
    return out
