"""Learn fusion weights on a validation split: a grid over the weight simplex, by NDCG@k."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.errors import ConfigError
from lumenrec.fusion.linear import WeightedSum
from lumenrec.fusion.normalize import Normalizer, normalize_scores
from lumenrec.models._kernels.topk import topk

__all__ = ["fit_weights", "simplex_grid"]


def simplex_grid(n: int, step: float = 0.1) -> list[tuple[float, ...]]:
    """All weight vectors of ``n`` non-negative multiples of ``step`` that sum to 1."""
    if n < 1:
        msg = f"need at least one component (got {n})"
        raise ConfigError(msg)
    units = round(1 / step)
    grid = [
        tuple(c / units for c in combo)
        for combo in itertools.product(range(units + 1), repeat=n)
        if sum(combo) == units
    ]
    return grid


def fit_weights(
    scores: Mapping[str, NDArray[np.float32]],
    relevant: sp.csr_matrix,
    seen: sp.csr_matrix | None = None,
    *,
    k: int = 10,
    step: float = 0.1,
    normalize: Normalizer = "zscore",
) -> tuple[dict[str, float], list[dict]]:
    """Grid-search the weights of :class:`WeightedSum` that maximise mean NDCG@k.

    Parameters
    ----------
    scores : mapping of str to ndarray of shape (n_users, n_items), float32
        Component scores for the validation users.
    relevant : csr_matrix of shape (n_users, n_items)
        Validation targets.
    seen : csr_matrix of shape (n_users, n_items), optional
        Training items, masked before ranking.

    Returns
    -------
    best : dict of str to float
    trials : list of dict
        Every grid point with its NDCG@k (for the report).
    """
    from lumenrec.evaluation.metrics import ndcg_at_k

    names = list(scores)
    normalised = {n: normalize_scores(scores[n], normalize) for n in names}
    mask = None
    if seen is not None:
        mask = seen.toarray().astype(bool)
    trials = []
    best: tuple[float, Sequence[float]] | None = None
    for weights in simplex_grid(len(names), step):
        fused = WeightedSum(dict(zip(names, weights, strict=True)), normalize="none").fuse(
            normalised
        )
        fused = np.where(np.isnan(fused), -np.inf, fused)
        if mask is not None:
            fused[mask] = -np.inf
        ranked, _ = topk(fused.astype(np.float32), k)
        value = float(np.nanmean(ndcg_at_k(ranked.astype(np.int32), relevant, k)))
        trials.append({"weights": dict(zip(names, weights, strict=True)), f"ndcg@{k}": value})
        if best is None or value > best[0] + 1e-12:
            best = (value, weights)
    assert best is not None
    return dict(zip(names, best[1], strict=True)), trials
