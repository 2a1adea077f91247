"""Accuracy metrics for top-k rankings (binary relevance) and for rating prediction.

All ranking metrics are vectorised over users and return one value per user (NaN = not evaluated).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from lumenrec.errors import ConfigError, DataError

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


# --------------------------------------------------------------------------- validation helpers


def _check_k(k: Any) -> int:
    """Return ``k`` as an int, or raise ConfigError unless it is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k <= 0:
        msg = f"k must be a positive int (got {k!r})"
        raise ConfigError(msg)
    return int(k)


def _as_ranked(ranked: ArrayLike, n_items: int | None = None) -> NDArray[np.int64]:
    """Validate a ranked-items matrix and return it as a 2-D int64 array.

    ``-1`` is padding; any other value must lie in ``[0, n_items)`` (when ``n_items`` is given).
    """
    arr = np.asarray(ranked)
    if arr.ndim != 2:
        msg = f"ranked must be a 2-D array of shape (n_users, k_max), got shape {arr.shape}"
        raise DataError(msg)
    if arr.size == 0:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        msg = f"ranked must hold integer item indices, got dtype {arr.dtype}"
        raise DataError(msg)
    arr = arr.astype(np.int64, copy=False)
    lo = int(arr.min())
    if lo < -1:
        msg = f"ranked holds negative item index {lo}; only -1 (padding) is allowed"
        raise DataError(msg)
    if n_items is not None:
        hi = int(arr.max())
        if hi >= n_items:
            msg = f"ranked holds item index {hi} but there are only {n_items} items"
            raise DataError(msg)
    return arr


def _as_relevant(relevant: Any) -> sp.csr_matrix:
    """Return a canonical copy of ``relevant`` (CSR, sorted, no duplicates, no explicit zeros)."""
    if not sp.issparse(relevant):
        msg = f"relevant must be a scipy.sparse matrix, got {type(relevant).__name__}"
        raise DataError(msg)
    if relevant.ndim != 2:
        msg = f"relevant must be 2-D, got shape {relevant.shape}"
        raise DataError(msg)
    rel = sp.csr_matrix(relevant, copy=True)
    rel.sum_duplicates()  # also sorts the indices
    rel.eliminate_zeros()
    return rel


def _first_occurrence_mask(ranked: NDArray[np.int64]) -> NDArray[np.bool_]:
    """True where ``ranked`` holds a real item (not -1) seen for the first time in its row."""
    if ranked.shape[1] <= 1:
        return ranked >= 0
    order = np.argsort(ranked, axis=1, kind="stable")  # equal ids keep rank order
    srt = np.take_along_axis(ranked, order, axis=1)
    dup_sorted = np.zeros(ranked.shape, dtype=bool)
    dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    return (ranked >= 0) & ~dup


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


def _hits_and_counts(
    ranked: ArrayLike, relevant: Any
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Hit matrix plus number of relevant items per user (see :func:`hit_matrix`)."""
    rel = _as_relevant(relevant)
    arr = _as_ranked(ranked)
    if arr.shape[0] != rel.shape[0]:
        msg = (
            f"ranked has shape {arr.shape} but relevant has shape {rel.shape}; "
            "expected ranked (n_users, k_max) and relevant (n_users, n_items)"
        )
        raise DataError(msg)
    n_users, n_items = rel.shape
    arr = _as_ranked(arr, n_items)
    n_rel = np.diff(rel.indptr).astype(np.int64)
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=bool), n_rel
    # Rows are sorted and canonical, so row * n_items + col is a globally sorted key array.
    rel_rows = np.repeat(np.arange(n_users, dtype=np.int64), n_rel)
    keys = rel_rows * n_items + rel.indices.astype(np.int64)
    valid = _first_occurrence_mask(arr)
    query = np.arange(n_users, dtype=np.int64)[:, None] * n_items + np.where(valid, arr, 0)
    pos = np.searchsorted(keys, query)
    found = np.zeros(arr.shape, dtype=bool)
    inside = pos < keys.size
    found[inside] = keys[pos[inside]] == query[inside]
    return found & valid, n_rel


# --------------------------------------------------------------------------- metric kernels


def _top_k(hits: NDArray[np.bool_], k: int) -> NDArray[np.bool_]:
    """First ``k`` columns of ``hits``; ranks beyond k_max are implicit misses."""
    return hits[:, : min(k, hits.shape[1])]


def _safe_div(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    """num / den with NaN where den == 0 (no warnings)."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _discounts(n: int) -> NDArray[np.float64]:
    """1 / log2(i + 1) for ranks i = 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _k_hits(hits: NDArray[np.bool_], k: int) -> NDArray[np.float64]:
    return _top_k(hits, k).sum(axis=1).astype(np.float64)


def _mask_no_relevant(values: NDArray[np.float64], n_rel: NDArray[np.int64]) -> NDArray[np.float64]:
    values = values.astype(np.float64, copy=False)
    values[n_rel == 0] = np.nan
    return values


def _precision(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return _mask_no_relevant(_k_hits(hits, k) / k, n_rel)


def _recall(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return _safe_div(_k_hits(hits, k), n_rel.astype(np.float64))


def _f1(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    p = _precision(hits, n_rel, k)
    r = _recall(hits, n_rel, k)
    both = p + r
    out = np.zeros_like(p)
    np.divide(2.0 * p * r, both, out=out, where=both > 0)
    return _mask_no_relevant(out, n_rel)


def _ndcg(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    top = _top_k(hits, k)
    dcg = top.astype(np.float64) @ _discounts(top.shape[1])
    n_ideal = np.minimum(n_rel, k)
    ideal_cum = np.concatenate(([0.0], np.cumsum(_discounts(int(n_ideal.max(initial=0))))))
    return _safe_div(dcg, ideal_cum[n_ideal])


def _map(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    top = _top_k(hits, k)
    ranks = np.arange(1, top.shape[1] + 1, dtype=np.float64)
    prec_at_i = np.cumsum(top, axis=1) / ranks
    ap_sum = np.where(top, prec_at_i, 0.0).sum(axis=1)
    return _safe_div(ap_sum, np.minimum(n_rel, k).astype(np.float64))


def _mrr(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    top = _top_k(hits, k)
    out = np.zeros(top.shape[0], dtype=np.float64)
    if top.shape[1]:
        any_hit = top.any(axis=1)
        out[any_hit] = 1.0 / (np.argmax(top[any_hit], axis=1) + 1.0)
    return _mask_no_relevant(out, n_rel)


def _hr(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return _mask_no_relevant(_top_k(hits, k).any(axis=1).astype(np.float64), n_rel)


_KERNELS = {
    "precision": _precision,
    "recall": _recall,
    "f1": _f1,
    "ndcg": _ndcg,
    "map": _map,
    "mrr": _mrr,
    "hr": _hr,
}


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
