"""FA*IR minimum-protected tables (Zehlike et al., CIKM 2017), with the adjusted significance.

``m(i)`` is the fewest protected items the top ``i`` must hold: the ``α``-quantile of
Binomial(i, p) (``scipy.stats.binom.ppf``). Testing every prefix at level ``α`` rejects a
fair ranking more often than ``α``, so Algorithm 1 of the paper (AdjustSignificance) looks
for the corrected ``α_c`` whose table fails a truly fair (Bernoulli(p)) ranking with
probability ``α``; the failure probability is computed exactly by convolving the
binomial pmfs of the blocks between the positions where ``m`` steps up.

The bisection follows LensKit 2025.8's ``FAIRReranker`` step by step (same interval, stopping
rule and iteration cap), because the table is a step function of ``α_c`` and the goal is the
same lists as LensKit on the same input.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom

__all__ = ["adjusted_alpha", "fail_probability", "mtable"]


def mtable(k: int, p: float, alpha: float) -> NDArray[np.int64]:
    """Minimum number of protected items in each prefix 1..k (unadjusted at level ``alpha``).

    Returns
    -------
    ndarray of shape (k,), int64
        ``m[i - 1]`` for prefix length ``i``; non-decreasing, steps of at most 1.
    """
    sizes = np.arange(1, k + 1)
    m = binom.ppf(alpha, sizes, p)
    return np.clip(np.nan_to_num(m), 0, sizes).astype(np.int64)


def fail_probability(
    table: NDArray[np.int64], p: float, _pmfs: dict[int, NDArray[np.float64]] | None = None
) -> float:
    """Probability that a ranking with i.i.d. Bernoulli(p) protected flags violates ``table``.

    Only the positions where the table steps up matter; between two steps the requirement is
    constant and the count can only grow. ``state[c]`` is the probability of having seen
    ``c`` protected items without failing so far.
    """
    steps = np.flatnonzero(np.diff(table, prepend=0)) + 1  # 1-based prefix lengths
    blocks = np.diff(steps, prepend=0)
    pmfs = {} if _pmfs is None else _pmfs  # binomial pmf per block size (for this p)
    state = np.ones(1)
    for required, size in enumerate(blocks.tolist(), start=1):
        if size not in pmfs:
            pmfs[size] = binom.pmf(np.arange(size + 1), size, p)
        state = np.convolve(state, pmfs[size])
        state[required - 1] = 0.0  # fewer than `required` protected at this prefix: fail
    return float(1.0 - state.sum())


def adjusted_alpha(
    k: int, p: float, alpha: float, *, tolerance: float = 1e-10, max_iter: int = 100
) -> float:
    """The corrected per-prefix significance ``α_c`` (bisection on [0, 1]).

    Parameters
    ----------
    k : int
        List length the table covers.
    p : float
        Target proportion of protected items.
    alpha : float
        Family-wise significance (probability of rejecting a fair ranking).
    tolerance, max_iter
        Stopping rule: ``|fail - α| < tolerance`` or an interval shorter than ``tolerance``.

    Returns
    -------
    float
    """
    low, high = 0.0, 1.0
    pmfs: dict[int, NDArray[np.float64]] = {}
    for _ in range(max_iter):
        mid = (low + high) / 2
        fail = fail_probability(mtable(k, p, mid), p, pmfs)
        if fail > alpha:
            high = mid
        else:
            low = mid
        if abs(fail - alpha) < tolerance or high - low < tolerance:
            break
    return (low + high) / 2
