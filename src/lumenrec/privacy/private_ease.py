"""PrivateEASE: EASE solved from a noisy, user-level differentially private Gram matrix.

One Gaussian release of the bounded Gram matrix (or two: noisy counts choosing the items, then
their Gram; ``selection_share``), then denoising and EASE's closed form as post-processing. See
:mod:`lumenrec.privacy.private_counts` for the contribution bound and docs/privacy.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import Interval, Options
from lumenrec.errors import ConfigError
from lumenrec.models._item_item import ItemItemRecommender
from lumenrec.privacy.dp import (
    PrivacySpend,
    bounded_rows,
    check_budget,
    gaussian_noise_multiplier,
    gram_sensitivity,
    import_opacus,
    quiet_accountant,
    symmetric_gaussian,
)
from lumenrec.types import IndexArray, Seed

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

from lumenrec.privacy.private_counts import _BUDGET_CONSTRAINTS, _GaussianRelease

__all__ = ["SHRINKAGES", "PrivateEASE"]

log = logging.getLogger(__name__)

#: Eigenvalue treatments of :class:`PrivateEASE` (see its ``shrinkage`` parameter).
SHRINKAGES = ("clip", "edge", "spiked")


def _shrink(vals: NDArray[np.float64], radius: float, how: str) -> NDArray[np.float64]:
    """Denoised eigenvalues of ``G + Z`` where ``Z`` is symmetric Gaussian noise whose
    spectrum fills ``[-2 r, 2 r]`` (``r = radius = std · sqrt(n)``).

    "clip": ``max(w, 0)``. "edge": ``max(w − 2r, 0)`` (the noise's spectral edge removed).
    "spiked": the spiked-Wigner inverse ``θ = (w + sqrt(w² − 4r²)) / 2`` of the outlier
    eigenvalue ``w = θ + r²/θ``, times the squared overlap ``1 − r²/θ²`` of the noisy
    eigenvector with the clean one, i.e. ``θ − r²/θ``; 0 inside the bulk (``w <= 2r``).
    """
    if how == "clip":
        return np.maximum(vals, 0.0)
    if how == "edge":
        return np.maximum(vals - 2.0 * radius, 0.0)
    out = np.zeros_like(vals)
    big = vals > 2.0 * radius
    theta = 0.5 * (vals[big] + np.sqrt(vals[big] ** 2 - 4.0 * radius**2))
    out[big] = theta - radius**2 / theta
    return out


def _composed_epsilon(sigmas: tuple[float, ...], delta: float, accountant: str) -> float:
    """ε of one-shot Gaussian releases (q = 1) with noise multipliers ``sigmas``, composed by
    Opacus's accountant (history ``[(σ_i, 1, 1), ...]``)."""
    acc = import_opacus().accountants.create_accountant(mechanism=accountant)
    acc.history = [(float(s), 1.0, 1) for s in sigmas]
    with quiet_accountant():
        return float(acc.get_epsilon(delta=float(delta)))


class PrivateEASE(_GaussianRelease, ItemItemRecommender):
    """EASE solved from a noisy Gram matrix (user-level (ε, δ)-DP).

    ``G̃ = X̃ᵀX̃ + Z`` (bounded rows, symmetric Gaussian ``Z`` of standard deviation
    ``σ · sqrt(c (c + 1) / 2)``: :func:`~lumenrec.privacy.dp.gram_sensitivity`). Post-processing
    (no further privacy cost): eigendecompose ``G̃``, keep the ``rank`` largest eigenpairs
    (all when None), denoise their eigenvalues (``shrinkage``), then EASE's closed form with
    ``P = (G̃₊ + λI)⁻¹`` (the discarded directions get ``1/λ``), ``B = −P / diag(P)``,
    ``diag(B) = 0``. Scores are ``x_u · B`` with the user's own binary history.

    With ``selection_share > 0`` the budget is spent on two Gaussian releases instead of one:
    noisy bounded item counts (a share ``selection_share`` of the budget, counted as
    ``1/σ²``) pick the ``top_items`` items, then each user's row restricted to those items is
    bounded again and the Gram matrix of the chosen items alone is released. A user's
    ``max_items`` of contribution then goes entirely to the items that are modelled, which
    raises the signal of the Gram matrix for the same noise. Both releases are composed by the
    accountant (``privacy_["steps"]`` is 2, ``privacy_["noise_multiplier"]`` is the Gram
    release's, ``privacy_["count_noise_multiplier"]`` the counts').

    Stability: experimental.

    Parameters
    ----------
    epsilon : float, default 1.0
    delta : float, default 1e-6
    max_items : int, default 50
        Contribution bound ``c`` (squared row norm).
    regularization : float, default 500.0
        λ. Noise of standard deviation s adds about ``2 s sqrt(n_items)`` to the spectrum, so
        λ should grow as ε shrinks.
    rank : int or None, default None
        Eigenpairs kept (a low-rank denoiser); None keeps all.
    top_items : int or None, default None
        Solve on the ``top_items`` items with the largest noisy counts (the diagonal of
        ``G̃``) only; the other items get zero weights (never recommended, no votes). Their
        rows of ``G̃`` are mostly noise; dropping them shrinks the noise's share of the
        spectrum. None keeps all.
    shrinkage : {"clip", "edge", "spiked"}, default "clip"
        Treatment of the kept eigenvalues ``w`` given the noise's spectral radius
        ``2 r = 2 s sqrt(n)`` (s: the noise standard deviation, n: items solved on). "clip":
        ``max(w, 0)``. "edge": ``max(w − 2r, 0)``. "spiked": the spiked-Wigner estimate
        ``θ − r²/θ`` of the clean eigenvalue ``θ`` (``w = θ + r²/θ``) shrunk by the
        eigenvector's overlap, 0 inside the noise bulk; it keeps only the eigenpairs that
        stand out of the noise, so ``rank`` matters little with it.
    selection_share : float in [0, 1), default 0.0
        Share of the budget (in ``1/σ²``) spent on a separate release of noisy counts that
        selects the ``top_items`` items before their Gram matrix is released (needs
        ``top_items``); 0 selects them from the diagonal of the one Gram release.
    accountant : {"prv", "rdp"}, default "prv"
    random_state : int, Generator or None

    Attributes
    ----------
    item_weights_ : ndarray of shape (n_items, n_items), float32
    privacy_ : dict
    """

    binarize: ClassVar[bool] = True
    _param_constraints: ClassVar[dict[str, Any]] = {
        **_BUDGET_CONSTRAINTS,
        "regularization": Interval(float, 0.0, None, low_open=True),
        "rank": (None, Interval(int, 1, None)),
        "top_items": (None, Interval(int, 1, None)),
        "shrinkage": Options(SHRINKAGES),
        "selection_share": Interval(float, 0.0, 1.0, high_open=True),
    }
    _fitted_arrays = ("item_weights_",)

    def __init__(
        self,
        epsilon: float = 1.0,
        delta: float = 1e-6,
        max_items: int = 50,
        regularization: float = 500.0,
        rank: int | None = None,
        top_items: int | None = None,
        shrinkage: str = "clip",
        selection_share: float = 0.0,
        accountant: str = "prv",
        random_state: Seed = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.max_items = max_items
        self.regularization = regularization
        self.rank = rank
        self.top_items = top_items
        self.shrinkage = shrinkage
        self.selection_share = selection_share
        self.accountant = accountant
        self.random_state = random_state

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        share = float(self.selection_share)
        if share > 0:
            gram, chosen, std = self._selected_gram(user_items, rng, share)
            n_all = user_items.shape[1]
        else:
            full = self._noisy_gram(user_items, rng)
            std = float(self.privacy_["noise_multiplier"]) * float(self.privacy_["sensitivity"])
            n_all = full.shape[0]
            chosen = np.arange(n_all)
            if self.top_items is not None and self.top_items < n_all:
                top = np.argsort(-full.diagonal(), kind="stable")[: int(self.top_items)]
                chosen = np.sort(top)
            gram = full[np.ix_(chosen, chosen)]
        n = len(chosen)
        lam = float(self.regularization)
        vals, vecs = np.linalg.eigh(gram)
        keep = n if self.rank is None else min(int(self.rank), n)
        vals, vecs = (
            _shrink(vals[n - keep :], std * np.sqrt(n), self.shrinkage),
            vecs[:, n - keep :],
        )
        # P = V diag(1/(w+λ) − 1/λ) Vᵀ + I/λ (the discarded directions get 1/λ)
        inv = (vecs * (1.0 / (vals + lam) - 1.0 / lam)) @ vecs.T
        inv[np.diag_indices(n)] += 1.0 / lam
        diag = inv.diagonal().copy()
        inv /= -diag[None, :]
        inv[np.diag_indices(n)] = 0.0
        weights = np.zeros((n_all, n_all), np.float32)
        weights[np.ix_(chosen, chosen)] = inv
        self.item_weights_ = weights

    def _selected_gram(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, share: float
    ) -> tuple[NDArray[np.float64], NDArray[np.intp], float]:
        """Two Gaussian releases: noisy bounded counts pick the ``top_items`` items, then the
        Gram matrix of the rows restricted to them (and bounded again) is released; sets
        ``privacy_`` (the composition, by the accountant). Returns the noisy Gram of the
        chosen items, their indices and its noise standard deviation."""
        if self.top_items is None:
            msg = "PrivateEASE: selection_share > 0 needs top_items (the items to select)"
            raise ConfigError(msg)
        c = int(self.max_items)
        n_users, n_items = user_items.shape
        check_budget(float(self.epsilon), float(self.delta), n_users, unit="users")
        # Gaussian releases compose exactly into one of 1/σ² = Σ 1/σ_i²: split that budget.
        sigma = gaussian_noise_multiplier(
            float(self.epsilon), float(self.delta), 1, self.accountant
        )
        sigmas = (sigma / np.sqrt(share), sigma / np.sqrt(1.0 - share))
        x = bounded_rows(user_items, c)
        counts = np.asarray(x.sum(axis=0)).ravel()
        counts += rng.standard_normal(n_items) * sigmas[0] * np.sqrt(c)
        k = min(int(self.top_items), n_items)
        chosen = np.sort(np.argsort(-counts, kind="stable")[:k])
        xr = bounded_rows(sp.csr_matrix(user_items)[:, chosen], c)
        sens = gram_sensitivity(c)
        std = float(sigmas[1] * sens)
        gram = (xr.T @ xr).toarray() + symmetric_gaussian(k, std, rng)
        spend = PrivacySpend(
            epsilon=_composed_epsilon(sigmas, float(self.delta), self.accountant),
            delta=float(self.delta),
            level="user",
            mechanism="gaussian (noisy counts select items, then their Gram matrix)",
            accountant=self.accountant,
            noise_multiplier=float(sigmas[1]),
            sample_rate=1.0,
            steps=2,
            sensitivity=float(sens),
            target_epsilon=float(self.epsilon),
        )
        self.privacy_ = spend.as_dict()
        self.privacy_["count_noise_multiplier"] = float(sigmas[0])
        return gram, chosen, std

    def _weights(self, items: IndexArray | None) -> NDArray[np.float32]:
        return self.item_weights_ if items is None else self.item_weights_[:, items]
