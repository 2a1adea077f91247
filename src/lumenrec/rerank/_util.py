"""Small helpers shared by the re-ranking stages (validation, relevance scaling, assembly)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import ConfigError
from lumenrec.rerank.base import Candidates, Reranked

__all__ = [
    "assemble",
    "check_fraction",
    "check_k",
    "check_lambda",
    "exposure_weights",
    "minmax",
    "pick",
]


def check_lambda(value: Any, name: str = "lam") -> float:
    """``value`` as a float in [0, 1], else ConfigError naming ``name``."""
    try:
        lam = float(value)
    except (TypeError, ValueError):
        lam = math.nan
    if isinstance(value, bool) or not (0.0 <= lam <= 1.0):
        msg = f"{name} must be a number in [0, 1] (got {value!r})"
        raise ConfigError(msg)
    return lam


def check_fraction(value: Any, name: str, *, open_low: bool = False) -> float:
    """A share in [0, 1] (or (0, 1] with ``open_low``)."""
    share = check_lambda(value, name)
    if open_low and share == 0.0:
        msg = f"{name} must be in (0, 1] (got {value!r})"
        raise ConfigError(msg)
    return share


def check_k(k: Any) -> int:
    """A positive int list length."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        msg = f"k must be a positive int (got {k!r})"
        raise ConfigError(msg)
    return int(k)


def minmax(scores: NDArray[np.float32]) -> NDArray[np.float64]:
    """Scores scaled to [0, 1] over the candidate set; non-finite ones count as the minimum.

    All-equal (or all non-finite) scores map to zeros.
    """
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    if not finite.any():
        return np.zeros(s.shape)
    lo, hi = s[finite].min(), s[finite].max()
    out = np.zeros(s.shape)
    if hi > lo:
        out[finite] = (s[finite] - lo) / (hi - lo)
    return out


def exposure_weights(k: int) -> NDArray[np.float64]:
    """Position weights ``1 / log2(rank + 1)`` for ranks 1..k (the DCG discount)."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def pick(score: NDArray[np.float64], available: NDArray[np.bool_], tol: float = 1e-12) -> int:
    """Index of the best available score; ties (within ``tol``) go to the earliest index."""
    masked = np.where(available, score, -np.inf)
    best = masked.max()
    return int(np.flatnonzero(masked >= best - tol)[0])


def assemble(
    candidates: Candidates,
    chosen: list[int] | NDArray[np.intp],
    feasible: bool = True,
    notes: tuple[str, ...] | list[str] = (),
) -> Reranked:
    """Positions ``chosen`` first (in that order), then every other candidate in input order."""
    n = len(candidates)
    first = np.asarray(chosen, dtype=np.intp)
    rest = np.ones(n, dtype=bool)
    rest[first] = False
    order = np.concatenate([first, np.flatnonzero(rest)])
    return Reranked(candidates.items[order], candidates.scores[order], feasible, tuple(notes))


def unchanged(candidates: Candidates, notes: tuple[str, ...] = ()) -> Reranked:
    """The input as a stage output."""
    return Reranked(candidates.items, candidates.scores, True, notes)
