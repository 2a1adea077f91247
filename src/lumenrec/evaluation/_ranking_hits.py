"""Input checks and the hit matrix behind :mod:`lumenrec.evaluation.metrics`: a positive-int
cut-off, a ranked-items matrix (``-1`` = padding, indices in range), a canonical sparse
relevance matrix, and the boolean hit matrix of which ranked items are relevant (a repeated
item counts only at its first, best-ranked occurrence) with the number of relevant items per
user, found by a sorted-key search over the relevance matrix."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from lumenrec.errors import ConfigError, DataError

__all__ = ["_as_ranked", "_as_relevant", "_check_k", "_hits_and_counts"]


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
