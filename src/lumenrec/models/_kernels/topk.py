"""Top-k selection over score rows with -1 / -inf padding."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def topk(scores: NDArray[np.float32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Column positions and values of the ``k`` largest entries of each row, best first.

    Ties are broken by the lower column position, so results are deterministic. Entries
    equal to -inf (masked) are never returned: their position is -1 and score -inf.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_cols), float32
        NaN must already be replaced by -inf.
    k : int
        List length (may exceed n_cols; the rest is padding).

    Returns
    -------
    positions : ndarray of shape (n_rows, k), int64
    values : ndarray of shape (n_rows, k), float32
    """
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    if kk == 0:
        return np.full((n_rows, k), -1, np.int64), np.full((n_rows, k), -np.inf, np.float32)
    if kk < n_cols:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        # include every column tied with the k-th value so the tie-break is by position
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        cand_mask = scores >= kth
        part_vals = np.take_along_axis(scores, part, axis=1)
        order = np.take_along_axis(part, np.lexsort((part, -part_vals), axis=1), axis=1)
        # rows with ties straddling the k-th place: redo them exactly (lowest position wins)
        for r in np.flatnonzero(cand_mask.sum(axis=1) > kk):
            cols = np.flatnonzero(cand_mask[r])
            order[r] = cols[np.lexsort((cols, -scores[r, cols]))[:kk]]
    else:
        order = np.lexsort((np.broadcast_to(np.arange(n_cols), scores.shape), -scores), axis=1)
    values = np.take_along_axis(scores, order, axis=1).astype(np.float32, copy=False)
    order = np.where(np.isneginf(values), -1, order)
    if kk < k:
        order = np.pad(order, ((0, 0), (0, k - kk)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return order, values


def topk_reference(
    scores: NDArray[np.float32], k: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Slow, obviously-correct reference for :func:`topk` (used by tests)."""
    n_rows, n_cols = scores.shape
    pos = np.full((n_rows, k), -1, np.int64)
    val = np.full((n_rows, k), -np.inf, np.float32)
    for r in range(n_rows):
        ranked = sorted(range(n_cols), key=lambda c: (-scores[r, c], c))
        ranked = [c for c in ranked if not np.isneginf(scores[r, c])][:k]
        pos[r, : len(ranked)] = ranked
        val[r, : len(ranked)] = scores[r, ranked]
    return pos, val
