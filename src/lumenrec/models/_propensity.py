"""Observation propensities P(o_ui = 1) for inverse-propensity debiasing (pure numpy).

- :func:`naive_bayes_propensities` (Schnabel et al. 2016): ``p(o=1|y) = P(y|o=1) P(o=1) /
  P(y)`` with ``P(y|o=1)`` from the biased training labels, ``P(o=1) = n_obs / (n_users *
  n_items)`` and ``P(y)`` from a small uniformly sampled (MAR) set of labels.
- :func:`popularity_propensities`: without any MAR sample, ``p_ui = (n_i / n_users) ** power``
  (``n_i`` = observed ratings of item i): the maximum-likelihood per-item observation rate
  when ``power = 1``.
- :func:`feature_propensities`: ``P(o_ui = 1 | x_u, x_i)`` by an L2-regularised logistic
  regression of observed-vs-unobserved on user features, item features and their pairwise
  products (which user kinds rate which item kinds); uses no rating at all. Multiplied by the
  Naive Bayes ratio ``P(y | o=1) / P(y)`` it gives a propensity that varies per (user, item)
  *and* per label (``DebiasedMF(propensity="given-naive-bayes")``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from lumenrec.errors import DataError

__all__ = ["feature_propensities", "naive_bayes_propensities", "popularity_propensities"]


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


def _interaction_design(user_x: sp.csr_matrix, item_x: sp.csr_matrix) -> sp.csr_matrix:
    """Rows (u, i) in row-major order: ``[x_u, x_i, vec(x_u ⊗ x_i)]`` (sparse)."""
    n_u, n_i = user_x.shape[0], item_x.shape[0]
    rows_u = user_x[np.repeat(np.arange(n_u), n_i)]
    rows_i = item_x[np.tile(np.arange(n_i), n_u)]
    blocks = [rows_u, rows_i]
    rows_u = rows_u.tocsc()
    blocks += [rows_i.multiply(rows_u[:, a]).tocsr() for a in range(user_x.shape[1])]
    return sp.hstack(blocks, format="csr")


def feature_propensities(
    observed: sp.spmatrix,
    user_features: ArrayLike,
    item_features: ArrayLike,
    l2: float = 1e-4,
    max_iter: int = 500,
) -> NDArray[np.float64]:
    """Observation propensity ``P(o_ui = 1 | x_u, x_i)`` of every (user, item) pair.

    A logistic regression of "observed" (a stored cell of ``observed``) against "not
    observed" over all ``n_users * n_items`` pairs, on ``[x_u, x_i, x_u ⊗ x_i]`` (user
    features, item features and every user-feature x item-feature product), minimising the
    mean log loss + ``l2 * ||w||²`` (intercept not penalised) by L-BFGS. The ratings are not
    used, only which cells are observed.

    Parameters
    ----------
    observed : sparse matrix of shape (n_users, n_items)
        The training log; its stored cells are the observed pairs.
    user_features : array-like of shape (n_users, d_u)
    item_features : array-like of shape (n_items, d_i)
    l2 : float
        Ridge strength on the mean log loss.
    max_iter : int
        L-BFGS iterations.

    Returns
    -------
    ndarray of shape (n_users, n_items), float64
        In (0, 1); its mean equals the observed fraction up to the ridge term.

    Raises
    ------
    DataError
        Feature rows that do not match the matrix, or non-finite features.
    """
    obs = sp.csr_matrix(observed)
    obs.eliminate_zeros()
    n_u, n_i = obs.shape
    ux = np.asarray(user_features, np.float64)
    ix = np.asarray(item_features, np.float64)
    if ux.ndim != 2 or ix.ndim != 2 or ux.shape[0] != n_u or ix.shape[0] != n_i:
        msg = (
            f"feature matrices of shape {ux.shape} and {ix.shape} do not match the "
            f"{n_u} x {n_i} observation matrix"
        )
        raise DataError(msg)
    if not (np.isfinite(ux).all() and np.isfinite(ix).all()):
        msg = "user and item features must be finite"
        raise DataError(msg)
    x = _interaction_design(sp.csr_matrix(ux), sp.csr_matrix(ix))
    y = np.zeros(n_u * n_i)
    coo = obs.tocoo()
    y[coo.row.astype(np.int64) * n_i + coo.col] = 1.0
    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    n = float(len(y))

    def loss_grad(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        loss = -np.sum(y * log_expit(z) + (1.0 - y) * log_expit(-z)) / n + l2 * (w @ w)
        r = (expit(z) - y) / n
        return float(loss), np.r_[x.T @ r + 2.0 * l2 * w, r.sum()]

    theta0 = np.r_[np.zeros(x.shape[1]), np.log(rate / (1.0 - rate))]
    res = minimize(
        loss_grad, theta0, jac=True, method="L-BFGS-B", options={"maxiter": int(max_iter)}
    )
    z = x @ res.x[:-1] + res.x[-1]
    return expit(z).reshape(n_u, n_i)
