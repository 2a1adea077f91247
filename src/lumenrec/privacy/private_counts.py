"""Differentially private count models: noisy per-item counts and a noisy Gram matrix.

Each user's binary history row is scaled to ``‖x_u‖² <= max_items`` (a user with
``n_u > max_items`` items has each weighted ``sqrt(max_items / n_u)``, so nobody counts for more
than ``max_items`` items), one Gaussian release of the per-item counts
(:class:`PrivatePopularity`) or of the upper triangle of the Gram matrix ``XᵀX``
(:class:`PrivateItemKNN`; :class:`~lumenrec.privacy.private_ease.PrivateEASE` builds on the same
base) is made, and the model is solved from the noisy statistic as usual (post-processing:
free). The noise multiplier is calibrated with Opacus's accountant for one Gaussian release
(sample rate 1, one step; :func:`~lumenrec.privacy.dp.gaussian_noise_multiplier`). The
guarantee is user level and covers the learnt item-side parameters; ``seen_`` (each user's own
history) is not private and must be served only to that user (see docs/privacy.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import Interval, Options
from lumenrec.models._item_item import ItemItemRecommender
from lumenrec.models.base import BaseRecommender
from lumenrec.privacy.dp import (
    ACCOUNTANTS,
    PrivacySpend,
    SpendState,
    bounded_rows,
    check_budget,
    epsilon_spent,
    gaussian_noise_multiplier,
    gram_sensitivity,
    symmetric_gaussian,
)
from lumenrec.types import IndexArray, ScoreMatrix, Seed

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["PrivateItemKNN", "PrivatePopularity"]

log = logging.getLogger(__name__)

_BUDGET_CONSTRAINTS: dict[str, Any] = {
    "epsilon": Interval(float, 0.0, None, low_open=True),
    "delta": Interval(float, 0.0, 1.0, low_open=True, high_open=True),
    "max_items": Interval(int, 1, None),
    "accountant": Options(ACCOUNTANTS),
}


class _GaussianRelease(SpendState):
    """Budget parameters and the one-shot Gaussian release shared by the count models."""

    epsilon: float
    delta: float
    max_items: int
    accountant: str
    random_state: Seed

    def _privacy_noise(self, n_users: int, sensitivity: float) -> tuple[float, PrivacySpend]:
        """Noise standard deviation for one release of L2 ``sensitivity``, and its spend."""
        check_budget(float(self.epsilon), float(self.delta), n_users, unit="users")
        sigma = gaussian_noise_multiplier(
            float(self.epsilon), float(self.delta), 1, self.accountant
        )
        spend = PrivacySpend(
            epsilon=epsilon_spent(sigma, 1.0, 1, float(self.delta), self.accountant),
            delta=float(self.delta),
            level="user",
            mechanism="gaussian",
            accountant=self.accountant,
            noise_multiplier=sigma,
            sample_rate=1.0,
            steps=1,
            sensitivity=float(sensitivity),
            target_epsilon=float(self.epsilon),
        )
        log.info(
            "%s: one Gaussian release, sigma=%.4f, noise std %.4f, epsilon=%.4f (user-level)",
            type(self).__name__,
            sigma,
            sigma * sensitivity,
            spend.epsilon,
        )
        return sigma * sensitivity, spend

    def _noisy_gram(
        self, user_items: sp.csr_matrix, rng: np.random.Generator
    ) -> NDArray[np.float64]:
        """``X̃ᵀX̃ + Z`` with bounded rows ``X̃`` and symmetric Gaussian ``Z``; sets
        ``privacy_``."""
        x = bounded_rows(user_items, int(self.max_items))
        std, spend = self._privacy_noise(x.shape[0], gram_sensitivity(int(self.max_items)))
        gram = (x.T @ x).toarray()
        gram += symmetric_gaussian(x.shape[1], std, rng)
        self.privacy_ = spend.as_dict()
        return gram


class PrivatePopularity(_GaussianRelease, BaseRecommender):
    """Most-popular items from noisy per-item counts (user-level (ε, δ)-DP).

    Each user's row is bounded to ``‖x_u‖² <= max_items`` (:func:`bounded_rows`), the column
    sums get i.i.d. Gaussian noise of standard deviation ``σ · sqrt(max_items)`` (the L2
    sensitivity of the count vector to one user), σ from Opacus's accountant for one release.

    Stability: experimental.

    Parameters
    ----------
    epsilon : float, default 1.0
    delta : float, default 1e-6
        Must be below 1 / n_users.
    max_items : int, default 50
        Contribution bound ``c``.
    accountant : {"prv", "rdp"}, default "prv"
    random_state : int, Generator or None
        Seeds the noise (not a cryptographically secure generator).

    Attributes
    ----------
    item_counts_ : ndarray of shape (n_items,), float32
        Noisy bounded counts.
    privacy_ : dict
        :meth:`PrivacySpend.as_dict` of the release.
    """

    _param_constraints: ClassVar[dict[str, Any]] = dict(_BUDGET_CONSTRAINTS)
    _fitted_arrays = ("item_counts_",)

    def __init__(
        self,
        epsilon: float = 1.0,
        delta: float = 1e-6,
        max_items: int = 50,
        accountant: str = "prv",
        random_state: Seed = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.max_items = max_items
        self.accountant = accountant
        self.random_state = random_state

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        x = bounded_rows(user_items, int(self.max_items))
        std, spend = self._privacy_noise(x.shape[0], float(np.sqrt(self.max_items)))
        counts = np.asarray(x.sum(axis=0)).ravel() + rng.standard_normal(x.shape[1]) * std
        self.item_counts_ = counts.astype(np.float32)
        self.privacy_ = spend.as_dict()

    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        counts = self.item_counts_ if items is None else self.item_counts_[items]
        return np.broadcast_to(counts, (len(users), counts.shape[0]))

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix:
        """The same noisy popularity row for every history."""
        counts = self.item_counts_ if items is None else self.item_counts_[np.asarray(items)]
        return np.broadcast_to(counts, (histories.shape[0], counts.shape[0])).astype(np.float32)


class PrivateItemKNN(_GaussianRelease, ItemItemRecommender):
    """Item-based cosine kNN from a noisy Gram matrix (user-level (ε, δ)-DP).

    The same release as :class:`PrivateEASE`; then (post-processing) the cosine
    ``S_ij = G̃_ij / (sqrt(G̃_ii G̃_jj) + shrinkage)`` with the noisy diagonal floored at 1,
    a zero diagonal, and each column pruned to its ``n_neighbors`` largest positive entries.

    Stability: experimental.

    Parameters
    ----------
    epsilon : float, default 1.0
    delta : float, default 1e-6
    max_items : int, default 50
    n_neighbors : int, default 100
    shrinkage : float, default 10.0
        Added to the norm product; damps pairs of rarely seen items, whose noisy cosines are
        the least reliable.
    accountant : {"prv", "rdp"}, default "prv"
    random_state : int, Generator or None

    Attributes
    ----------
    similarity_ : csr_matrix of shape (n_items, n_items), float32
        ``S[j, i]``: how much history item ``j`` adds to item ``i``.
    privacy_ : dict
    """

    binarize: ClassVar[bool] = True
    _param_constraints: ClassVar[dict[str, Any]] = {
        **_BUDGET_CONSTRAINTS,
        "n_neighbors": Interval(int, 1, None),
        "shrinkage": Interval(float, 0.0, None),
    }
    _fitted_arrays = ("similarity_",)

    def __init__(
        self,
        epsilon: float = 1.0,
        delta: float = 1e-6,
        max_items: int = 50,
        n_neighbors: int = 100,
        shrinkage: float = 10.0,
        accountant: str = "prv",
        random_state: Seed = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.max_items = max_items
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage
        self.accountant = accountant
        self.random_state = random_state

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        gram = self._noisy_gram(user_items, rng)
        n = gram.shape[0]
        norms = np.sqrt(np.maximum(gram.diagonal(), 1.0))
        sim = gram / (norms[:, None] * norms[None, :] + float(self.shrinkage))
        sim[np.diag_indices(n)] = 0.0
        k = min(int(self.n_neighbors), n - 1) if n > 1 else 0
        if k == 0:
            self.similarity_ = sp.csr_matrix((n, n), dtype=np.float32)
            return
        # column i keeps its k largest entries (rows j = neighbours voting for i)
        top = np.argpartition(-sim, k - 1, axis=0)[:k]  # (k, n)
        cols = np.broadcast_to(np.arange(n), top.shape)
        vals = sim[top, cols]
        pos = vals > 0
        out = sp.csr_matrix((vals[pos], (top[pos], cols[pos])), shape=(n, n), dtype=np.float32)
        out.sort_indices()
        self.similarity_ = out

    def _weights(self, items: IndexArray | None) -> sp.csr_matrix:
        return self.similarity_ if items is None else self.similarity_[:, items]
