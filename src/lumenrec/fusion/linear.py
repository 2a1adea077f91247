"""WeightedSum: a weighted sum of per-user normalised component scores."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.fusion.normalize import NORMALIZERS, Normalizer, normalize_scores

__all__ = ["WeightedSum"]


class WeightedSum:
    """score = Σ_c w_c · normalize(score_c), per user; a NaN component counts as missing.

    Where some components are NaN for an item, the others' weights are renormalised so the
    item is still ranked on the same scale (this is how a cold item with only a text score
    competes with warm items).

    Parameters
    ----------
    weights : mapping of str to float
        Non-negative weight per component name.
    normalize : {"zscore", "minmax", "rank", "none"}
        Per-user normalisation applied to each component first.

    Stability: stable.
    """

    def __init__(self, weights: Mapping[str, float], normalize: Normalizer = "zscore") -> None:
        if not weights or any(not np.isfinite(w) or w < 0 for w in weights.values()):
            msg = (
                f"weights must be a non-empty mapping of non-negative numbers (got {dict(weights)})"
            )
            raise ConfigError(msg)
        if normalize not in NORMALIZERS:
            msg = f"normalize must be one of {list(NORMALIZERS)} (got {normalize!r})"
            raise ConfigError(msg)
        self.weights = {k: float(v) for k, v in weights.items()}
        self.normalize = normalize

    def fuse(self, scores: Mapping[str, NDArray[np.float32]]) -> NDArray[np.float32]:
        """Fuse component scores of identical shape (n_users, n_items) → float32, NaN where none."""
        missing = [c for c in self.weights if c not in scores]
        if missing:
            msg = f"scores for components {missing} are missing; got {sorted(scores)}"
            raise DataError(msg)
        total = None
        weight_sum = None
        for name, w in self.weights.items():
            if w == 0:
                continue
            z = normalize_scores(scores[name], self.normalize)
            present = ~np.isnan(z)
            contrib = np.where(present, w * z, 0.0)
            total = contrib if total is None else total + contrib
            weight_sum = present * w if weight_sum is None else weight_sum + present * w
        if total is None:
            shape = next(iter(scores.values())).shape
            return np.full(shape, np.nan, np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            fused = np.where(
                weight_sum > 0, total * (sum(self.weights.values()) / weight_sum), np.nan
            )
        return fused.astype(np.float32)

    def to_config(self) -> dict:
        return {"type": "weighted", "weights": self.weights, "normalize": self.normalize}

    def __repr__(self) -> str:
        return f"WeightedSum(weights={self.weights}, normalize={self.normalize!r})"
