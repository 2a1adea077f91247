"""Observation propensities P(o_ui = 1) for inverse-propensity debiasing (pure numpy).

- :func:`naive_bayes_propensities` (Schnabel et al. 2016): ``p(o=1|y) = P(y|o=1) P(o=1) /
  P(y)`` with ``P(y|o=1)`` from the biased training labels, ``P(o=1) = n_obs / (n_users *
  n_items)`` and ``P(y)`` from a small uniformly sampled (MAR) set of labels.
- :func:`popularity_propensities`: without any MAR sample, ``p_ui = (n_i / n_users) ** power``
  (``n_i`` = observed ratings of item i): the maximum-likelihood per-item observation rate
  when ``power = 1``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import DataError

__all__ = ["naive_bayes_propensities", "popularity_propensities"]


def naive_bayes_propensities(
    train_labels: NDArray,
    mar_labels: NDArray,
    n_pairs: int,
    smoothing: float = 0.0,
) -> tuple[NDArray[np.float64], dict[float, float]]:
    """Naive Bayes propensity of each observed training label.

    Parameters
    ----------
    train_labels : ndarray of shape (n_obs,)
        Labels (binary or discrete ratings) of the observed (MNAR) training pairs.
    mar_labels : ndarray of shape (n_mar,)
        Labels of a uniformly sampled (MAR) set of pairs; gives ``P(y)``.
    n_pairs : int
        ``n_users * n_items`` (so ``P(o=1) = n_obs / n_pairs``).
    smoothing : float
        Additive (Laplace) count added to every label value in both histograms.

    Returns
    -------
    propensities : ndarray of shape (n_obs,), float64
        ``p(o=1 | y)`` at each training label.
    table : dict of float to float
        ``{label value: p(o=1 | y)}``.

    Raises
    ------
    DataError
        Empty inputs, or a training label value that never occurs in the MAR sample
        (``P(y) = 0``; use ``smoothing > 0``).
    """
    y = np.asarray(train_labels, np.float64).ravel()
    m = np.asarray(mar_labels, np.float64).ravel()
    if y.size == 0 or m.size == 0:
        msg = f"naive Bayes propensities need training and MAR labels (got {y.size} and {m.size})"
        raise DataError(msg)
    values = np.union1d(y, m)
    n_y = np.array([(y == v).sum() for v in values], np.float64) + smoothing
    n_m = np.array([(m == v).sum() for v in values], np.float64) + smoothing
    if (n_m[np.isin(values, y)] == 0).any():
        absent = values[(n_m == 0) & np.isin(values, y)].tolist()
        msg = (
            f"label values {absent} occur in training but not in the MAR sample (P(y) = 0); "
            "use a larger MAR sample or smoothing > 0"
        )
        raise DataError(msg)
    p_y_obs = n_y / n_y.sum()
    p_obs = y.size / float(n_pairs)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n_m > 0, p_y_obs * p_obs / (n_m / n_m.sum()), np.nan)
    table = {float(v): float(q) for v, q in zip(values, p, strict=True) if np.isfinite(q)}
    return p[np.searchsorted(values, y)], table


def popularity_propensities(
    items: NDArray[np.integer], n_users: int, n_items: int, power: float = 1.0
) -> NDArray[np.float64]:
    """Popularity propensity ``(n_i / n_users) ** power`` of each observed pair.

    Parameters
    ----------
    items : ndarray of shape (n_obs,), int
        Item of each observed training pair.
    n_users, n_items : int
    power : float
        1 = the per-item observation rate; smaller values flatten the weights.

    Returns
    -------
    ndarray of shape (n_obs,), float64
        In (0, 1] (capped at 1).
    """
    it = np.asarray(items, np.int64)
    counts = np.bincount(it, minlength=n_items).astype(np.float64)
    rate = np.minimum(counts[it] / float(n_users), 1.0)
    return rate**power
