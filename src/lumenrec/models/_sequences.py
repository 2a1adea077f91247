"""Item sequences for the sequential models: per-user event order and padded tails (numpy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["dataset_sequences", "rows_to_csr", "sequences_of", "tail_matrix"]


def sequences_of(
    user_idx: NDArray[np.integer],
    item_idx: NDArray[np.integer],
    order_keys: tuple[NDArray, ...],
    n_users: int,
) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """Each user's items in event order as ``(indptr, items)`` (CSR-like, duplicates kept).

    ``order_keys`` sorts events within a user (e.g. ``(positions, timestamps)``, lexsort
    order: last key is primary after the user).
    """
    order = np.lexsort((*order_keys, user_idx))
    counts = np.bincount(user_idx, minlength=n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, np.asarray(item_idx, np.int32)[order]


def dataset_sequences(
    user_items: sp.csr_matrix, data: Dataset | None
) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """Per-user item sequences: the Dataset's events in time order, else matrix column order."""
    if data is None:
        return user_items.indptr.astype(np.int64), user_items.indices.astype(np.int32)
    keys: tuple[NDArray, ...] = (np.arange(data.n_events),)
    if data.timestamps is not None:
        keys = (np.arange(data.n_events), data.timestamps)
    return sequences_of(data.user_idx, data.item_idx, keys, data.n_users)


def tail_matrix(
    indptr: NDArray[np.int64], items: NDArray[np.integer], ends: NDArray[np.int64], width: int
) -> NDArray[np.int64]:
    """Right-aligned tails of sequences, shifted by one (0 = padding).

    Row ``u`` holds ``items[max(indptr[u], ends[u] - width) : ends[u]] + 1`` at its right end.

    Returns
    -------
    ndarray of shape (n_rows, width), int64
    """
    n = len(indptr) - 1
    starts = np.maximum(indptr[:-1], ends - width)
    counts = np.maximum(ends - starts, 0)
    out = np.zeros((n, width), np.int64)
    rows = np.repeat(np.arange(n), counts)
    offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    src = np.repeat(starts, counts) + offset
    out[rows, width - np.repeat(counts, counts) + offset] = np.asarray(items)[src] + 1
    return out


def rows_to_csr(rows: NDArray[np.int64], n_items: int) -> sp.csr_matrix:
    """The items (+1-shifted, 0 = padding) of each row as a binary CSR."""
    r, c = np.nonzero(rows)
    return sp.csr_matrix(
        (np.ones(len(r), np.float32), (r, rows[r, c] - 1)), shape=(rows.shape[0], n_items)
    )
