"""Reciprocal rank fusion (Cormack et al. 2009): Σ_c w_c / (k + rank_c)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from lumenrec.errors import ConfigError, DataError

__all__ = ["ReciprocalRankFusion"]


class ReciprocalRankFusion:
    """score = Σ_c w_c / (k + rank_c(item)), rank 1 = the component's best item; NaN ranks last.

    Parameters
    ----------
    k : float
        The damping constant (60 in the original paper).
    weights : mapping of str to float, optional
        Per-component weights (default 1 each).

    Stability: stable.
    """

    def __init__(self, k: float = 60.0, weights: Mapping[str, float] | None = None) -> None:
        if not (isinstance(k, int | float) and k > 0):
            msg = f"k must be a positive number (got {k!r})"
            raise ConfigError(msg)
        self.k = float(k)
        self.weights = None if weights is None else {c: float(w) for c, w in weights.items()}

    def fuse(self, scores: Mapping[str, NDArray[np.float32]]) -> NDArray[np.float32]:
        """Fuse by reciprocal ranks; shape (n_users, n_items), float32."""
        if not scores:
            msg = "no component scores to fuse"
            raise DataError(msg)
        names = list(self.weights) if self.weights else list(scores)
        total = None
        for name in names:
            if name not in scores:
                msg = f"scores for component {name!r} are missing; got {sorted(scores)}"
                raise DataError(msg)
            s = np.where(np.isfinite(scores[name]), scores[name], -np.inf)
            ranks = rankdata(-s, axis=1, method="min")
            w = 1.0 if self.weights is None else self.weights[name]
            part = np.where(np.isfinite(s), w / (self.k + ranks), 0.0)
            total = part if total is None else total + part
        return total.astype(np.float32)

    def to_config(self) -> dict:
        return {"type": "rrf", "k": self.k, "weights": self.weights}

    def __repr__(self) -> str:
        return f"ReciprocalRankFusion(k={self.k}, weights={self.weights})"
