"""Is one configuration really better than another on these queries, or is it noise?

The test is paired: both configurations answer the same queries, so it looks at the
per-query differences. `paired_bootstrap` is the paired bootstrap test (Efron &
Tibshirani; Sakai 2006 for IR): resample queries with replacement and see how often a
mean difference as large as the observed one appears when the true mean difference is
zero. Seeded, numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Resamples per test: p-values to about ±0.005 near 0.05.
DEFAULT_RESAMPLES = 10_000
#: Resamples drawn per numpy call, to bound memory on large query sets.
_CHUNK = 500


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> float:
    """Two-sided p-value for "mean(a) = mean(b)", `a[i]` and `b[i]` being the scores of
    query i under two systems.

    With dᵢ = aᵢ − bᵢ and d̄ their mean: draw `resamples` bootstrap samples of d (n
    queries with replacement), centre their means on zero (m* − d̄, the null
    hypothesis), and return the share with |m* − d̄| ≥ |d̄|. 1.0 when the scores are
    identical. Small p (< 0.05) means the difference is unlikely to be chance."""
    if len(a) != len(b):
        raise ValueError("paired_bootstrap needs two score lists of the same length")
    diffs = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diffs.size == 0:
        raise ValueError("paired_bootstrap needs at least one query")
    observed = abs(float(diffs.mean()))
    if observed == 0.0:
        return 1.0
    rng = np.random.default_rng(seed)
    extreme = 0
    done = 0
    while done < resamples:
        rows = min(_CHUNK, resamples - done)
        means = diffs[rng.integers(0, diffs.size, size=(rows, diffs.size))].mean(axis=1)
        # ≥ with a little slack so that float noise in equal means still counts
        extreme += int(np.count_nonzero(np.abs(means - diffs.mean()) >= observed - 1e-12))
        done += rows
    return extreme / resamples
