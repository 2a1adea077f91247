"""Calibrated re-ranking (Steck, "Calibrated Recommendations", RecSys 2018).

The genre (category) mix of a list should match the mix of the user's history:

- ``p(g|u) = Σ_{i ∈ H} p(g|i) / |H'|`` over the history ``H``, where ``p(g|i) = 1/|genres(i)|``
  for each genre of item ``i`` (items without a genre are skipped; ``H'`` = those with one);
- ``q(g|u)`` the same over the recommended list (uniform weights over positions);
- ``C_KL = KL(p ‖ q̃) = Σ_g p(g) log(p(g) / q̃(g))`` with ``q̃ = (1 - α) q + α p``, α = 0.01,
  so the divergence stays finite when the list misses a genre of the history.

:class:`Calibration` builds the top ``k`` greedily (Steck's greedy algorithm, a
``(1 - 1/e)``-approximation of the submodular objective), at each position adding the
candidate that maximises ``(1 - λ) · Σ_{i ∈ list} rel(i) - λ · C_KL(p, q(list))``. Steck sums
the raw model scores; here ``rel`` is the score min-max normalised over the candidate set
(see :mod:`lumenrec.rerank.base`), so λ means the same for every base model.
:func:`calibration_kl` is the metric the P8 benchmark reports. Since ``q`` weights every
position alike, the order inside the chosen top ``k`` does not change ``C_KL``; the chosen
items are therefore listed in their input (relevance) order, which keeps NDCG as high as the
chosen set allows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from lumenrec.errors import DataError
from lumenrec.rerank._util import assemble, check_k, check_lambda, minmax, pick, unchanged
from lumenrec.rerank.base import Candidates, ItemFeatures, Reranked

__all__ = ["ALPHA", "Calibration", "calibration_kl", "genre_distribution"]

#: Steck's smoothing of the list distribution towards the history's.
ALPHA = 0.01


def _item_genre_rows(items: NDArray[np.integer], categories: sp.csr_matrix) -> NDArray[np.float64]:
    """Dense ``p(g|i)`` rows of shape (len(items), n_categories): 1/|genres| per genre."""
    idx = np.asarray(items, dtype=np.int64)
    starts = categories.indptr[idx]
    lengths = categories.indptr[idx + 1] - starts
    rows = np.repeat(np.arange(idx.size), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.repeat(starts, lengths) + offsets
    nonzero = categories.data[pos] != 0
    dense = np.zeros((idx.size, categories.shape[1]))
    dense[rows[nonzero], categories.indices[pos][nonzero]] = 1.0
    counts = dense.sum(axis=1, keepdims=True)
    return np.divide(dense, counts, out=np.zeros_like(dense), where=counts > 0)


def genre_distribution(items: ArrayLike, categories: sp.csr_matrix) -> NDArray[np.float64]:
    """The genre mix of a set of items (Steck's ``p(g|u)`` with uniform item weights).

    Parameters
    ----------
    items : array-like of shape (m,), int
        Dense item indices (history or list).
    categories : scipy.sparse matrix of shape (n_items, n_categories)
        Multi-hot genres.

    Returns
    -------
    ndarray of shape (n_categories,), float64
        Sums to 1, or all zeros when no item has a genre.
    """
    arr = np.asarray(items, dtype=np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= categories.shape[0]):
        msg = f"item indices must lie in [0, {categories.shape[0]})"
        raise DataError(msg)
    csr = categories if isinstance(categories, sp.csr_matrix) else sp.csr_matrix(categories)
    total = _item_genre_rows(arr, csr).sum(axis=0)
    mass = total.sum()
    return total / mass if mass > 0 else total


def _kl(p: NDArray[np.float64], q: NDArray[np.float64], alpha: float) -> NDArray[np.float64]:
    """KL(p ‖ (1-α)q + αp) for one p (n_cat,) and q rows (..., n_cat)."""
    support = p > 0
    ps = p[support]
    qt = (1.0 - alpha) * q[..., support] + alpha * ps
    return np.sum(ps * np.log(ps / qt), axis=-1)


def calibration_kl(
    history_items: ArrayLike,
    list_items: ArrayLike,
    categories: sp.csr_matrix,
    *,
    alpha: float = ALPHA,
) -> float:
    """Steck's miscalibration ``C_KL``: KL between the history's and the list's genre mix.

    Parameters
    ----------
    history_items : array-like of shape (h,), int
        The user's history (dense indices).
    list_items : array-like of shape (m,), int
        The recommended list (dense indices; -1 padding is dropped).
    categories : scipy.sparse matrix of shape (n_items, n_categories)
        Multi-hot genres.
    alpha : float, default 0.01
        Smoothing: ``q̃ = (1 - α) q + α p``.

    Returns
    -------
    float
        ``C_KL ≥ 0``; NaN when no history item has a genre (nothing to calibrate to).
    """
    lst = np.asarray(list_items, dtype=np.int64).reshape(-1)
    p = genre_distribution(history_items, categories)
    if p.sum() == 0:
        return float("nan")
    q = genre_distribution(lst[lst >= 0], categories)
    return float(_kl(p, q, alpha))


class Calibration:
    """Steck's calibrated greedy re-ranking on the category mix of the user's history.

    Parameters
    ----------
    lam : float in [0, 1], default 0.5
        Weight on calibration (0 = input order, 1 = only calibration).
    alpha : float, default 0.01
        Smoothing of the list distribution (Steck's α).
    """

    name = "calibration"

    def __init__(self, lam: float = 0.5, alpha: float = ALPHA) -> None:
        self.lam = check_lambda(lam, "calibration λ")
        self.alpha = check_lambda(alpha, "calibration alpha")

    def __repr__(self) -> str:
        return f"Calibration(lam={self.lam}, alpha={self.alpha})"

    def rerank(self, candidates: Candidates, k: int, features: ItemFeatures) -> Reranked:
        """Reorder ``candidates`` so the first ``min(k, n)`` are the calibrated greedy picks.

        Needs ``features.categories`` and ``candidates.history``; without either the input
        is returned unchanged with a note.
        """
        k = check_k(k)
        n = len(candidates)
        if self.lam == 0.0 or n <= 1:
            return unchanged(candidates)
        if features.categories is None:
            return unchanged(candidates, ("no item categories: order kept",))
        p = genre_distribution(candidates.history, features.categories)
        if p.sum() == 0:
            return unchanged(candidates, ("no history genres to calibrate to: order kept",))
        genres = _item_genre_rows(candidates.items, features.categories)
        has_genre = (genres.sum(axis=1) > 0).astype(np.float64)
        support = p > 0  # KL(p‖q̃) only reads the genres of the history
        ps, genres = p[support], genres[:, support]
        rel = minmax(candidates.scores)
        lam, alpha = self.lam, self.alpha
        available = np.ones(n, dtype=bool)
        total = np.zeros(genres.shape[1])  # Σ p(g|i) over the chosen items
        n_with_genre = 0.0
        rel_sum = 0.0
        chosen: list[int] = []
        for _ in range(min(k, n)):
            mass = np.maximum(n_with_genre + has_genre, 1.0)[:, None]  # 0 only if total is 0
            q_tilde = (1.0 - alpha) * (total + genres) / mass + alpha * ps
            kl = np.log(ps / q_tilde) @ ps
            objective = (1.0 - lam) * (rel_sum + rel) - lam * kl
            best = pick(objective, available)
            chosen.append(best)
            available[best] = False
            total += genres[best]
            n_with_genre += has_genre[best]
            rel_sum += rel[best]
        # C_KL does not depend on the order inside the list: show the set best first
        return assemble(candidates, sorted(chosen))
