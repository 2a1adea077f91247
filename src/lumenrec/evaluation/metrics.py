"""Accuracy metrics for top-k rankings (binary relevance) and for rating prediction.

All ranking metrics are vectorised over users and return one value per user (NaN = not evaluated).
The input checks and hit matrix are in :mod:`lumenrec.evaluation._ranking_hits`, the per-user
kernels in :mod:`lumenrec.evaluation._ranking_kernels`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.evaluation._ranking_hits import _as_ranked as _as_ranked  # re-exported (beyond.py)
from lumenrec.evaluation._ranking_hits import _check_k, _hits_and_counts
from lumenrec.evaluation._ranking_kernels import _KERNELS

__all__ = [
    "RANKING_METRICS",
    "evaluate_rankings",
    "f1_at_k",
    "hit_matrix",
    "hit_rate_at_k",
    "mae",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "rmse",
    "summarize",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Metric names understood by :func:`evaluate_rankings`, in their default order.
RANKING_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "mrr", "hr", "f1")


def hit_matrix(ranked: ArrayLike, relevant: Any) -> NDArray[np.bool_]:
    """Mark which ranked items are relevant.

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order; -1 is padding (always a miss).
    relevant : scipy.sparse matrix of shape (n_users, n_items)
        Nonzero entries mark the relevant items of each row; row ``u`` belongs to ``ranked[u]``.

    Returns
    -------
    ndarray of shape (n_users, k_max), bool
        ``hits[u, r]`` is True iff the item at rank ``r + 1`` of user ``u`` is relevant.
        A relevant item repeated within a row counts once: only its first (best-ranked)
        occurrence is a hit, later duplicates are misses.

    Raises
    ------
    DataError
        If the shapes disagree, or ``ranked`` holds invalid item indices.
    """
    hits, _ = _hits_and_counts(ranked, relevant)
    return hits


def _compute(name: str, ranked: ArrayLike, relevant: Any, k: int) -> NDArray[np.float64]:
    k = _check_k(k)
    hits, n_rel = _hits_and_counts(ranked, relevant)
    return _KERNELS[name](hits, n_rel, k)


_SHARED_DOC = """
    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order, -1 = padding (a miss). Later duplicates of an item are misses.
    relevant : scipy.sparse matrix of shape (n_users, n_items)
        Nonzero entries mark the relevant items of each user (row-aligned with ``ranked``).
    k : int
        Cut-off (> 0). ``k > k_max`` is allowed; the missing ranks count as misses.

    Returns
    -------
    ndarray of shape (n_users,), float64
        Per-user value; NaN for users without relevant items (excluded by :func:`summarize`).

    Raises
    ------
    ConfigError
        If ``k`` is not a positive int.
    DataError
        If the shapes of ``ranked`` and ``relevant`` disagree or item indices are invalid.
"""


def _append_doc(sections: str) -> Callable[[_F], _F]:
    """Decorator appending shared numpydoc sections to a function's one-line docstring."""

    def decorate(func: _F) -> _F:
        func.__doc__ = (func.__doc__ or "").rstrip() + "\n" + sections
        return func

    return decorate


@_append_doc(_SHARED_DOC)
def precision_at_k(ranked: ArrayLike, relevant: Any, k: int) -> NDArray[np.float64]:
    """Precision@k = (relevant items in the top k) / k."""
    return _compute("precision", ranked, relevant, k)


@_append_doc(_SHARED_DOC)
def recall_at_k(ranked: ArrayLike, relevant: Any, k: int) -> NDArray[np.float64]:
    """Recall@k = (relevant items in the top k) / (number of relevant items)."""
    return _compute("recall", ranked, relevant, k)


@_append_doc(_SHARED_DOC)
def f1_at_k(ranked: ArrayLike, relevant: Any, k: int) -> NDArray[np.float64]:
    """F1@k = 2 P R / (P + R) with P = Precision@k, R = Recall@k; 0 when P = R = 0."""
    return _compute("f1", ranked, relevant, k)


@_append_doc(_SHARED_DOC)
def ndcg_at_k(ranked: ArrayLike, relevant: Any, k: int) -> NDArray[np.float64]:
    """NDCG@k = DCG@k / IDCG@k with DCG@k = sum_{i<=k} rel_i / log2(i + 1) (i 1-based).

    IDCG@k is the DCG of an ideal list holding ``min(n_relevant, k)`` relevant items on top.
    """
    return _compute("ndcg", ranked, relevant, k)


@_append_doc(_SHARED_DOC)
def map_at_k(ranked: ArrayLike, relevant: Any, k: int) -> NDArray[np.float64]:
    """AP@k = (sum of Precision@i over hit ranks i <= k) / min(n_relevant, k).

    Averaging the per-user values gives MAP@k. Note that trec_eval's ``map_cut`` divides by
    ``n_relevant`` instead; both agree whenever ``n_relevant <= k``.
    """
    return _compute("map", ranked, relevant, k)


@_append_doc(_SHARED_DOC)
def mrr_at_k(ranked: ArrayLike, relevant: Any, k: int) -> NDArray[np.float64]:
    """RR@k = 1 / (rank of the first relevant item) if it is within the top k, else 0."""
    return _compute("mrr", ranked, relevant, k)


@_append_doc(_SHARED_DOC)
def hit_rate_at_k(ranked: ArrayLike, relevant: Any, k: int) -> NDArray[np.float64]:
    """HR@k = 1 if at least one relevant item is in the top k, else 0."""
    return _compute("hr", ranked, relevant, k)


def evaluate_rankings(
    ranked: ArrayLike,
    relevant: Any,
    ks: Sequence[int] = (5, 10, 20),
    metrics: Sequence[str] = RANKING_METRICS,
) -> dict[str, NDArray[np.float64]]:
    """Compute several ranking metrics at several cut-offs, sharing one hit matrix.

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order, -1 = padding.
    relevant : scipy.sparse matrix of shape (n_users, n_items)
        Nonzero entries mark the relevant items of each user.
    ks : sequence of int, default (5, 10, 20)
        Cut-offs, each a positive int.
    metrics : sequence of str, default RANKING_METRICS
        Any of ``"precision", "recall", "ndcg", "map", "mrr", "hr", "f1"``.

    Returns
    -------
    dict of str to ndarray of shape (n_users,), float64
        Keys ``f"{metric}@{k}"`` (e.g. ``"ndcg@10"``), metric-major order; per-user values
        with NaN for users without relevant items. Pass it to :func:`summarize` for means.

    Raises
    ------
    ConfigError
        If a metric name is unknown, or ``ks`` is empty or holds an invalid k.
    DataError
        If the inputs are malformed (see :func:`hit_matrix`).
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in _KERNELS]
    if unknown:
        msg = f"unknown metric(s) {unknown}; choose from {list(RANKING_METRICS)}"
        raise ConfigError(msg)
    if isinstance(ks, numbers.Integral):
        ks = (ks,)  # type: ignore[assignment]
    checked_ks = [_check_k(k) for k in ks]
    if not checked_ks or not metrics:
        msg = "ks and metrics must both be non-empty"
        raise ConfigError(msg)
    hits, n_rel = _hits_and_counts(ranked, relevant)
    return {f"{m}@{k}": _KERNELS[m](hits, n_rel, k) for m in metrics for k in checked_ks}


def summarize(per_user: Mapping[str, ArrayLike]) -> dict[str, float | int]:
    """Average per-user metric arrays, skipping NaN entries.

    Parameters
    ----------
    per_user : mapping of str to ndarray of shape (n_users,)
        E.g. the output of :func:`evaluate_rankings`; all arrays must have the same length.

    Returns
    -------
    dict
        ``{name: mean over the non-NaN users (NaN if there are none)}`` plus ``"n_users"``:
        the number of users whose values are non-NaN for every metric.

    Raises
    ------
    DataError
        If the arrays are not 1-D of equal length, or a metric is named ``"n_users"``.
    """
    if "n_users" in per_user:
        msg = "a metric may not be named 'n_users' (reserved for the user count)"
        raise DataError(msg)
    out: dict[str, float | int] = {}
    evaluated: NDArray[np.bool_] | None = None
    for name, values in per_user.items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1 or (evaluated is not None and arr.shape != evaluated.shape):
            msg = f"per-user values must be 1-D arrays of equal length; {name!r} has shape {arr.shape}"
            raise DataError(msg)
        ok = ~np.isnan(arr)
        evaluated = ok if evaluated is None else evaluated & ok
        n_ok = int(ok.sum())
        out[name] = float(arr[ok].sum() / n_ok) if n_ok else float("nan")
    out["n_users"] = int(evaluated.sum()) if evaluated is not None else 0
    return out


# --------------------------------------------------------------------------- rating prediction


def _check_pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[np.float64], ...]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        msg = f"y_true has shape {t.shape} but y_pred has shape {p.shape}"
        raise DataError(msg)
    if t.size == 0:
        msg = "y_true and y_pred are empty"
        raise DataError(msg)
    for name, arr in (("y_true", t), ("y_pred", p)):
        if not np.isfinite(arr).all():
            msg = f"{name} contains NaN or infinite values"
            raise DataError(msg)
    return t, p


_RATING_DOC = """
    Parameters
    ----------
    y_true, y_pred : array-like of the same shape, float
        Observed and predicted ratings; must be non-empty and finite.

    Returns
    -------
    float

    Raises
    ------
    DataError
        If the shapes differ, the arrays are empty, or they contain NaN/inf.
"""


@_append_doc(_RATING_DOC)
def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error ``sqrt(mean((y_true - y_pred) ** 2))``."""
    t, p = _check_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


@_append_doc(_RATING_DOC)
def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error ``mean(|y_true - y_pred|)``."""
    t, p = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))
