"""Numba kernels of ItemKNN's exact unlearning (see :mod:`lumenrec.privacy._forget_linear`).

Both read the unpruned cosine ``S_raw(r, j) = G_rj / (‖x_r‖‖x_j‖ + shrinkage)`` straight from
the Gram matrix, one row at a time, with the same float64 operations as ``ItemKNN.fit`` (no
fast-math), so kept values are bit-identical to a refit; nothing of size rows × items is
materialised.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "assemble_lists",
    "list_thresholds",
    "merge_lists",
    "rebuild_lists",
]


@numba.njit(nogil=True, cache=False)
def _raw_row(
    gram: NDArray[np.float32],
    norms: NDArray[np.float64],
    r: int,
    shrinkage: float,
    out: NDArray[np.float64],
) -> None:  # pragma: no cover - compiled
    nr = norms[r]
    for j in range(gram.shape[1]):
        dot = gram[r, j]
        if dot != 0.0 and j != r:
            out[j] = np.float64(dot) / (nr * norms[j] + shrinkage)
        else:
            out[j] = 0.0


@numba.njit(nogil=True, cache=False)
def _kth_largest(a: NDArray[np.float64], n: int, k: int) -> float:  # pragma: no cover
    """The ``k``-th largest of ``a[:n]`` (1-based), by quickselect; reorders ``a[:n]``."""
    target = k - 1
    lo, hi = 0, n - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:  # Hoare partition, descending: larger values to the left
            while a[i] > pivot:
                i += 1
            while a[j] < pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            return a[target]
    return a[target]


@numba.njit(nogil=True, cache=False)
def rebuild_lists(
    gram: NDArray[np.float32],
    norms: NDArray[np.float64],
    rows: NDArray[np.int64],
    thresh: NDArray[np.float64],
    k: int,
    shrinkage: float,
) -> tuple[
    NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]
]:  # pragma: no cover - compiled
    """The top-``k`` pruned neighbour lists of ``rows`` from their whole Gram rows, as
    ``ItemKNN.fit`` keeps them (non-zero values; ties at the k-th to the lowest column), and
    in the same pass, for every item ``j``, how many of ``rows`` have
    ``S_raw(r, j) >= thresh[j]`` (with ``rows`` the touched items: possible entrants into
    ``j``'s list; pass ``inf`` thresholds when that count is not needed).

    Returns
    -------
    n_above : ndarray of shape (n_items,), int64
    counts : ndarray of shape (len(rows),), int64
        Entries kept per row.
    cols : ndarray of shape (counts.sum(),), int64
        Their columns, increasing within each row.
    values : ndarray of shape (counts.sum(),), float64
    """
    n = gram.shape[1]
    m = len(rows)
    n_above = np.zeros(n, np.int64)
    counts = np.zeros(m, np.int64)
    cols = np.empty(m * k, np.int64)
    values = np.empty(m * k, np.float64)
    row = np.empty(n, np.float64)
    cand_cols = np.empty(n, np.int64)
    cand_vals = np.empty(n, np.float64)
    scratch = np.empty(n, np.float64)
    pos = 0
    for a in range(m):
        _raw_row(gram, norms, rows[a], shrinkage, row)
        c = 0
        for j in range(n):
            v = row[j]
            if v >= thresh[j]:
                n_above[j] += 1
            if v != 0.0:
                cand_cols[c] = j
                cand_vals[c] = v
                c += 1
        start = pos
        pos = _select(cand_cols, cand_vals, c, k, scratch, cols, values, pos)
        counts[a] = pos - start
    return n_above, counts, cols[:pos], values[:pos]


@numba.njit(nogil=True, cache=False)
def _select(
    cand_cols: NDArray[np.int64],
    cand_vals: NDArray[np.float64],
    c: int,
    k: int,
    scratch: NDArray[np.float64],
    cols: NDArray[np.int64],
    values: NDArray[np.float64],
    pos: int,
) -> int:  # pragma: no cover - compiled
    """Append the kept entries of ``c`` non-zero candidates (in increasing column order) to
    ``cols``/``values`` from ``pos``: all of them when ``c <= k``, else the ``k`` largest, ties
    at the k-th value going to the lowest columns. Returns the new ``pos``."""
    if c <= k:
        for a in range(c):
            cols[pos] = cand_cols[a]
            values[pos] = cand_vals[a]
            pos += 1
        return pos
    scratch[:c] = cand_vals[:c]
    kth = _kth_largest(scratch, c, k)
    need = k
    for a in range(c):
        if cand_vals[a] > kth:
            need -= 1
    for a in range(c):
        v = cand_vals[a]
        if v < kth:
            continue
        if v == kth:
            if need == 0:
                continue
            need -= 1
        cols[pos] = cand_cols[a]
        values[pos] = v
        pos += 1
    return pos


@numba.njit(nogil=True, cache=False)
def merge_lists(
    gram: NDArray[np.float32],
    norms: NDArray[np.float64],
    rows: NDArray[np.int64],
    member_ptr: NDArray[np.int64],
    member_cols: NDArray[np.int64],
    touched: NDArray[np.int64],
    k: int,
    shrinkage: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:  # pragma: no cover
    """New lists of *untouched* items when every value is non-negative: the top ``k`` of the
    current members ∪ the touched items (see :func:`knn_downdate`: no other item can enter).

    Parameters
    ----------
    rows : ndarray of shape (m,), int64
        Untouched list owners.
    member_ptr, member_cols : ndarray, int64
        CSR of every list's current members (increasing columns), indexed by item.
    touched : ndarray, int64
        Sorted touched items.

    Returns
    -------
    counts, cols, values
        As :func:`rebuild_lists` returns them.
    """
    m = len(rows)
    size = len(touched) + k + 1
    counts = np.zeros(m, np.int64)
    cols = np.empty(m * k, np.int64)
    values = np.empty(m * k, np.float64)
    cand_cols = np.empty(size, np.int64)
    cand_vals = np.empty(size, np.float64)
    scratch = np.empty(size, np.float64)
    pos = 0
    for a in range(m):
        r = rows[a]
        nr = norms[r]
        p, q = member_ptr[r], 0
        p_end, q_end = member_ptr[r + 1], len(touched)
        c = 0
        while p < p_end or q < q_end:  # merge two increasing column lists
            if q >= q_end or (p < p_end and member_cols[p] < touched[q]):
                j = member_cols[p]
                p += 1
            elif p >= p_end or touched[q] < member_cols[p]:
                j = touched[q]
                q += 1
            else:
                j = touched[q]
                p += 1
                q += 1
            dot = gram[r, j]
            if dot != 0.0 and j != r:
                cand_cols[c] = j
                cand_vals[c] = np.float64(dot) / (nr * norms[j] + shrinkage)
                c += 1
        start = pos
        pos = _select(cand_cols, cand_vals, c, k, scratch, cols, values, pos)
        counts[a] = pos - start
    return counts, cols[:pos], values[:pos]


@numba.njit(nogil=True, cache=False)
def assemble_lists(
    old_ptr: NDArray[np.int64],
    old_cols: NDArray[np.int64],
    old_vals: NDArray[np.float64],
    old_fresh: NDArray[np.bool_],
    rebuilt: NDArray[np.bool_],
    new_start: NDArray[np.int64],
    new_count: NDArray[np.int64],
    new_cols: NDArray[np.int64],
    new_vals: NDArray[np.float64],
) -> tuple[
    NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_]
]:  # pragma: no cover - compiled
    """The new neighbour-list CSR: rebuilt lists from ``new_*``, the others from ``old_*``
    without their zero values.

    Returns
    -------
    ptr : ndarray of shape (n + 1,), int64
    cols : ndarray of shape (nnz,), int64
    values : ndarray of shape (nnz,), float64
    fresh : ndarray of shape (nnz,), bool
        True for rebuilt entries and for old entries flagged in ``old_fresh``.
    """
    n = len(old_ptr) - 1
    total = 0
    for i in range(n):
        if rebuilt[i]:
            total += new_count[i]
        else:
            for p in range(old_ptr[i], old_ptr[i + 1]):
                if old_vals[p] != 0.0:
                    total += 1
    ptr = np.empty(n + 1, np.int64)
    cols = np.empty(total, np.int64)
    values = np.empty(total, np.float64)
    fresh = np.empty(total, np.bool_)
    ptr[0] = 0
    pos = 0
    for i in range(n):
        if rebuilt[i]:
            s = new_start[i]
            for a in range(new_count[i]):
                cols[pos] = new_cols[s + a]
                values[pos] = new_vals[s + a]
                fresh[pos] = True
                pos += 1
        else:
            for p in range(old_ptr[i], old_ptr[i + 1]):
                if old_vals[p] != 0.0:
                    cols[pos] = old_cols[p]
                    values[pos] = old_vals[p]
                    fresh[pos] = old_fresh[p]
                    pos += 1
        ptr[i + 1] = pos
    return ptr, cols, values, fresh


@numba.njit(nogil=True, cache=False)
def list_thresholds(
    ptr: NDArray[np.int64],
    cols: NDArray[np.int64],
    data: NDArray[np.float32],
    touched_mask: NDArray[np.bool_],
    gram: NDArray[np.float32],
    norms: NDArray[np.float64],
    k: int,
    shrinkage: float,
    normalize: bool,
    margin: float,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:  # pragma: no cover - compiled
    """Entry bar of every neighbour list after the downdate (non-negative data).

    Returns
    -------
    thresh : ndarray of shape (n,), float64
        For a full list (``k`` members): its smallest raw value, lowered by the relative
        ``margin`` (stored values are float32-rounded); ``inf`` for a list that is not full
        (it kept every non-zero entry). Touched members are read at their new value (read
        from the touched item's Gram row); with ``normalize`` every member is recomputed raw.
    n_kept : ndarray of shape (n,), int64
        Touched members per list.
    """
    n = len(ptr) - 1
    thresh = np.full(n, np.inf)
    n_kept = np.zeros(n, np.int64)
    for i in range(n):
        lo, hi = ptr[i], ptr[i + 1]
        low = np.inf
        for p in range(lo, hi):
            j = cols[p]
            if touched_mask[j]:
                n_kept[i] += 1
            if normalize:
                dot = gram[i, j]
                v = np.float64(dot) / (norms[i] * norms[j] + shrinkage) if dot != 0.0 else 0.0
            elif touched_mask[j]:
                dot = gram[j, i]
                v = np.float64(dot) / (norms[j] * norms[i] + shrinkage) if dot != 0.0 else 0.0
            else:
                v = np.float64(data[p])
            low = min(low, v)
        if hi - lo >= k:
            thresh[i] = low - margin * abs(low)
    return thresh, n_kept
