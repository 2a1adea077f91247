"""Per-user score normalisation (NaN-aware) so that components can be fused on one scale."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import ConfigError

__all__ = ["NORMALIZERS", "normalize_scores"]

Normalizer = Literal["zscore", "minmax", "rank", "none"]
NORMALIZERS = ("zscore", "minmax", "rank", "none")


def normalize_scores(
    scores: NDArray[np.floating], method: Normalizer = "zscore"
) -> NDArray[np.float32]:
    """Normalise each row of ``scores`` independently; NaN and -inf stay NaN.

    Parameters
    ----------
    scores : ndarray of shape (n_users, n_items), float
    method : {"zscore", "minmax", "rank", "none"}
        ``zscore``: (s - mean) / std over the row's finite entries (std 0 → 0).
        ``minmax``: to [0, 1]. ``rank``: fractional rank in [0, 1], 1 = best, ties averaged.

    Returns
    -------
    ndarray of shape (n_users, n_items), float32
    """
    if method not in NORMALIZERS:
        msg = f"normalize must be one of {list(NORMALIZERS)} (got {method!r})"
        raise ConfigError(msg)
    s = np.array(scores, dtype=np.float64, copy=True)
    s[~np.isfinite(s)] = np.nan
    if method == "none" or s.size == 0:
        return s.astype(np.float32)
    valid = ~np.isnan(s)
    count = valid.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "zscore":
            mean = np.nansum(s, axis=1, keepdims=True) / np.maximum(count, 1)
            var = np.nansum((s - mean) ** 2, axis=1, keepdims=True) / np.maximum(count, 1)
            std = np.sqrt(var)
            out = np.where(std > 0, (s - mean) / np.where(std > 0, std, 1), 0.0)
        elif method == "minmax":
            lo = np.nanmin(np.where(valid, s, np.inf), axis=1, keepdims=True)
            hi = np.nanmax(np.where(valid, s, -np.inf), axis=1, keepdims=True)
            span = hi - lo
            out = np.where(span > 0, (s - lo) / np.where(span > 0, span, 1), 0.5)
        else:
            out = _row_ranks(s, valid, count)
    out[~valid] = np.nan
    return out.astype(np.float32)


def _row_ranks(
    s: NDArray[np.float64], valid: NDArray[np.bool_], count: NDArray[np.integer]
) -> NDArray[np.float64]:
    from scipy.stats import rankdata

    filled = np.where(valid, s, -np.inf)
    ranks = rankdata(filled, axis=1, method="average")  # 1 = lowest
    n_invalid = (~valid).sum(axis=1, keepdims=True)
    ranks = ranks - n_invalid  # invalid entries occupy the lowest ranks
    denom = np.maximum(count - 1, 1)
    return np.where(count > 1, (ranks - 1) / denom, 1.0)
