"""Differentially private recommenders: noisy counts, noisy Gram matrices, DP-SGD.

Count and closed-form models (user-level DP): each user's binary history row is scaled to
``‖x_u‖² <= max_items`` (a user with ``n_u > max_items`` items has each weighted
``sqrt(max_items / n_u)``, so nobody counts for more than ``max_items`` items), one Gaussian
release of the per-item counts (popularity) or of the upper triangle of the Gram matrix
``XᵀX`` (ItemKNN, EASE) is made, and the model is solved from the noisy statistic as usual
(post-processing: free). The noise multiplier is calibrated with Opacus's accountant for one
Gaussian release (sample rate 1, one step; :func:`~lumenrec.privacy.dp.gaussian_noise_multiplier`).
:class:`PrivateEASE` can instead split the same budget over two releases (noisy counts select
the items, then their Gram matrix; ``selection_share``), composed by the same accountant.

Gradient models use DP-SGD through Opacus (:mod:`lumenrec.privacy._dp_sgd`):
:class:`PrivateMF` (user-level, ranking) and :class:`PrivateRatingMF` (event-level, ratings).

What the guarantee covers: the learnt item-side parameters (counts, weights, item factors).
Every artifact also holds ``seen_``, each user's own training history, used to mask seen
items and to form that user's scores; it is that user's data, is not differentially private,
and must be served only to that user (see docs/privacy.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import Interval, Options, check_is_fitted
from lumenrec.errors import ConfigError
from lumenrec.models._item_item import ItemItemRecommender
from lumenrec.models.base import BaseRecommender
from lumenrec.privacy.dp import (
    ACCOUNTANTS,
    PrivacySpend,
    bounded_rows,
    check_budget,
    epsilon_spent,
    gaussian_noise_multiplier,
    gram_sensitivity,
    import_opacus,
    quiet_accountant,
    symmetric_gaussian,
)
from lumenrec.types import IndexArray, ScoreMatrix, Seed

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = [
    "PRIVATE_VARIANTS",
    "PrivateEASE",
    "PrivateItemKNN",
    "PrivateMF",
    "PrivatePopularity",
    "PrivateRatingMF",
    "make_private_model",
]

log = logging.getLogger(__name__)

_BUDGET_CONSTRAINTS: dict[str, Any] = {
    "epsilon": Interval(float, 0.0, None, low_open=True),
    "delta": Interval(float, 0.0, 1.0, low_open=True, high_open=True),
    "max_items": Interval(int, 1, None),
    "accountant": Options(ACCOUNTANTS),
}


class _GaussianRelease:
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

    # persistence of the spend (manifest state)
    def _get_state(self) -> dict[str, Any]:
        return {"privacy": dict(self.privacy_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.privacy_ = dict(state["privacy"])


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


_SGD_CONSTRAINTS: dict[str, Any] = {
    "epsilon": Interval(float, 0.0, None, low_open=True),
    "delta": Interval(float, 0.0, 1.0, low_open=True, high_open=True),
    "n_factors": Interval(int, 1, None),
    "batch_size": Interval(int, 1, None),
    "n_epochs": Interval(int, 1, None),
    "max_grad_norm": Interval(float, 0.0, None, low_open=True),
    "learning_rate": Interval(float, 0.0, None, low_open=True),
    "accountant": Options(ACCOUNTANTS),
}


class _SGDState:
    """Spend persistence shared by the DP-SGD models."""

    privacy_: dict[str, Any]
    loss_history_: NDArray[np.float64]

    def _get_state(self) -> dict[str, Any]:
        return {"privacy": dict(self.privacy_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.privacy_ = dict(state["privacy"])


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


class PrivateMF(_SGDState, BaseRecommender):
    """Matrix factorisation trained with user-level DP-SGD (Opacus), only the item side learnt.

    ``score(u, ·) = tanh(x̃_u E) Dᵀ + b`` where ``x̃_u`` is the user's binary history divided by
    its L2 norm: the user factor is computed from the user's own history (at training and at
    serving time), so there is no per-user parameter to release. Each privacy unit is a user:
    users are Poisson-sampled (rate ``batch_size / n_users``), the gradient of a user's whole
    loss (multinomial log-likelihood of their history, input dropout as in Mult-DAE) is clipped
    to ``max_grad_norm``, Gaussian noise of ``σ · max_grad_norm`` is added to the sum, Adam
    steps. σ is calibrated to ``(epsilon, delta)`` for the exact number of steps.

    Stability: experimental.

    Parameters
    ----------
    epsilon : float, default 8.0
    delta : float, default 1e-6
        Must be below 1 / n_users.
    n_factors : int, default 64
    dropout : float, default 0.5
        Input dropout on the history (denoising).
    batch_size : int, default 1024
        Expected users per step.
    n_epochs : int, default 30
    max_grad_norm : float, default 1.0
    learning_rate : float, default 1e-3
    accountant : {"prv", "rdp"}, default "prv"
    random_state : int, Generator or None
        Seeds the initial weights, sampling, dropout and noise (not a secure generator).

    Attributes
    ----------
    encoder_ : ndarray of shape (n_items, n_factors), float32
    decoder_ : ndarray of shape (n_items, n_factors), float32
    item_bias_ : ndarray of shape (n_items,), float32
    loss_history_ : ndarray of shape (n_epochs,), float64
    privacy_ : dict
        ``level`` is "user".
    """

    _param_constraints: ClassVar[dict[str, Any]] = {
        **_SGD_CONSTRAINTS,
        "dropout": Interval(float, 0.0, 1.0, high_open=True),
    }
    _fitted_arrays = ("encoder_", "decoder_", "item_bias_", "loss_history_")

    def __init__(
        self,
        epsilon: float = 8.0,
        delta: float = 1e-6,
        n_factors: int = 64,
        dropout: float = 0.5,
        batch_size: int = 1024,
        n_epochs: int = 30,
        max_grad_norm: float = 1.0,
        learning_rate: float = 1e-3,
        accountant: str = "prv",
        random_state: Seed = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.n_factors = n_factors
        self.dropout = dropout
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.max_grad_norm = max_grad_norm
        self.learning_rate = learning_rate
        self.accountant = accountant
        self.random_state = random_state

    @staticmethod
    def _inputs(hist: sp.spmatrix) -> sp.csr_matrix:
        x = bounded_rows(hist, 1)  # binary rows scaled to unit L2 norm
        return x.astype(np.float32)

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        from lumenrec.models._torch_train import import_torch, seeded_init
        from lumenrec.privacy._dp_sgd import (
            DPSettings,
            history_module,
            multinomial_criterion,
            train_private,
        )

        torch = import_torch()
        n_users, n_items = user_items.shape
        check_budget(float(self.epsilon), float(self.delta), n_users, unit="users")
        inputs = self._inputs(user_items)
        target = sp.csr_matrix(inputs, copy=True)
        target.data[:] = 1.0
        seed = _seed(rng)
        with seeded_init(seed):
            module = history_module(n_items, int(self.n_factors), float(self.dropout))

        def make_batch(batch: tuple[Any, ...]) -> tuple[Any, Any]:
            rows = batch[0].numpy()
            return (
                torch.from_numpy(inputs[rows].toarray()),
                torch.from_numpy(target[rows].toarray()),
            )

        settings = DPSettings(
            float(self.epsilon),
            float(self.delta),
            "user",
            int(self.batch_size),
            int(self.n_epochs),
            float(self.max_grad_norm),
            float(self.learning_rate),
            self.accountant,
        )
        users = torch.arange(n_users, dtype=torch.int64)
        spend, losses = train_private(
            module, multinomial_criterion(), (users,), make_batch, settings, seed
        )
        self.encoder_ = module.encode.weight.detach().numpy().T.astype(np.float32).copy()
        self.decoder_ = module.decode.weight.detach().numpy().astype(np.float32).copy()
        self.item_bias_ = module.decode.bias.detach().numpy().astype(np.float32).copy()
        self.loss_history_ = np.asarray(losses, np.float64)
        self.privacy_ = spend.as_dict()

    def _user_vectors(self, hist: sp.spmatrix) -> NDArray[np.float32]:
        return np.tanh(self._inputs(hist) @ self.encoder_).astype(np.float32)

    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        return self._dot_scores(
            self._user_vectors(self.seen_[users]), self.decoder_, items, self.item_bias_
        )

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix:
        """Scores from histories alone: the user factor is a function of the history.

        Parameters
        ----------
        histories : sparse matrix of shape (n, n_items_)
        items : array-like of shape (m,), int, optional

        Returns
        -------
        ndarray of shape (n, m or n_items_), float32
        """
        check_is_fitted(self)
        hist = sp.csr_matrix(histories)
        return self._dot_scores(self._user_vectors(hist), self.decoder_, items, self.item_bias_)


class PrivateRatingMF(_SGDState, BaseRecommender):
    """Biased MF rating regressor trained with event-level DP-SGD (Opacus): one rating is the
    privacy unit (the TF Privacy MovieLens setting; Bu et al. 2020).

    ``r̂(u, i) = offset + b_u + b_i + p_u · q_i``, clipped to ``[min_rating, max_rating]`` (the
    public rating scale; ``offset`` is a public constant, not the data's mean). Ratings are
    Poisson-sampled, each rating's gradient clipped to ``max_grad_norm``, Gaussian noise added to
    every parameter (user and item factors alike, so all of them are covered by ε).

    Stability: experimental.

    Parameters
    ----------
    epsilon : float, default 8.0
    delta : float, default 1e-6
        Must be below 1 / n_ratings.
    n_factors : int, default 32
    batch_size : int, default 10000
    n_epochs : int, default 20
    max_grad_norm : float, default 1.0
    learning_rate : float, default 1e-2
    regularization : float, default 0.0
        Adam weight decay (applied after the noise: post-processing).
    offset : float, default 3.5
    min_rating, max_rating : float, default 1.0, 5.0
    accountant : {"prv", "rdp"}, default "prv"
    random_state : int, Generator or None

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of shape (n, n_factors), float32
    user_bias_, item_bias_ : ndarray of shape (n,), float32
    loss_history_ : ndarray of shape (n_epochs,), float64
    privacy_ : dict
        ``level`` is "event".
    """

    _param_constraints: ClassVar[dict[str, Any]] = {
        **_SGD_CONSTRAINTS,
        "regularization": Interval(float, 0.0, None),
        "offset": Interval(float),
        "min_rating": Interval(float),
        "max_rating": Interval(float),
    }
    _fitted_arrays = (
        "user_factors_",
        "item_factors_",
        "user_bias_",
        "item_bias_",
        "loss_history_",
    )

    def __init__(
        self,
        epsilon: float = 8.0,
        delta: float = 1e-6,
        n_factors: int = 32,
        batch_size: int = 10000,
        n_epochs: int = 20,
        max_grad_norm: float = 1.0,
        learning_rate: float = 1e-2,
        regularization: float = 0.0,
        offset: float = 3.5,
        min_rating: float = 1.0,
        max_rating: float = 5.0,
        accountant: str = "prv",
        random_state: Seed = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.n_factors = n_factors
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.max_grad_norm = max_grad_norm
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.offset = offset
        self.min_rating = min_rating
        self.max_rating = max_rating
        self.accountant = accountant
        self.random_state = random_state

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        from lumenrec.models._torch_train import import_torch, seeded_init
        from lumenrec.privacy._dp_sgd import DPSettings, rating_module, train_private

        torch = import_torch()
        x = sp.csr_matrix(user_items, dtype=np.float32)
        x.eliminate_zeros()
        n_users, n_items = x.shape
        check_budget(float(self.epsilon), float(self.delta), x.nnz, unit="ratings")
        users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(x.indptr))
        pairs = torch.from_numpy(np.stack([users, x.indices.astype(np.int64)], axis=1))
        ratings = torch.from_numpy(x.data.astype(np.float32))
        seed = _seed(rng)
        with seeded_init(seed):
            module = rating_module(n_users, n_items, int(self.n_factors), float(self.offset))
        settings = DPSettings(
            float(self.epsilon),
            float(self.delta),
            "event",
            int(self.batch_size),
            int(self.n_epochs),
            float(self.max_grad_norm),
            float(self.learning_rate),
            self.accountant,
        )
        criterion = torch.nn.MSELoss()
        spend, losses = train_private(
            module,
            criterion,
            (pairs, ratings),
            lambda batch: (batch[0], batch[1]),
            settings,
            seed,
            weight_decay=float(self.regularization),
        )
        self.user_factors_ = module.user.weight.detach().numpy().astype(np.float32).copy()
        self.item_factors_ = module.item.weight.detach().numpy().astype(np.float32).copy()
        self.user_bias_ = module.user_bias.weight.detach().numpy()[:, 0].astype(np.float32)
        self.item_bias_ = module.item_bias.weight.detach().numpy()[:, 0].astype(np.float32)
        self.loss_history_ = np.asarray(losses, np.float64)
        self.privacy_ = spend.as_dict()

    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        it = slice(None) if items is None else items
        raw = (
            self.offset
            + self.user_factors_[users] @ self.item_factors_[it].T
            + self.user_bias_[users][:, None]
            + self.item_bias_[it][None, :]
        )
        return np.clip(raw, self.min_rating, self.max_rating).astype(np.float32)

    def predict(self, users: IndexArray, items: IndexArray) -> NDArray[np.float32]:
        """Predicted ratings of (user, item) pairs.

        Parameters
        ----------
        users, items : array-like of shape (n,), int

        Returns
        -------
        ndarray of shape (n,), float32
        """
        check_is_fitted(self)
        u = self._check_indices(users, self.n_users_, "users")
        i = self._check_indices(items, self.n_items_, "items")
        raw = (
            self.offset
            + np.einsum("nf,nf->n", self.user_factors_[u], self.item_factors_[i])
            + self.user_bias_[u]
            + self.item_bias_[i]
        )
        return np.clip(raw, self.min_rating, self.max_rating).astype(np.float32)


#: CLI model name → its private variant (``lumenrec train --epsilon``).
PRIVATE_VARIANTS: dict[str, type[BaseRecommender]] = {
    "pop": PrivatePopularity,
    "itemknn": PrivateItemKNN,
    "ease": PrivateEASE,
    "bpr": PrivateMF,
    "mf": PrivateMF,
}


def make_private_model(
    name: str, epsilon: float, delta: float, params: dict[str, Any] | None = None
) -> BaseRecommender:
    """The private variant of CLI model ``name`` at (ε, δ) with extra constructor ``params``.

    Raises
    ------
    ConfigError
        ``name`` has no private variant, or ``params`` names an unknown parameter.
    """
    from lumenrec.errors import ConfigError

    cls = PRIVATE_VARIANTS.get(name)
    if cls is None:
        msg = (
            f"model {name!r} has no differentially private variant; --epsilon works with "
            f"{sorted(PRIVATE_VARIANTS)}"
        )
        raise ConfigError(msg)
    model = cls(epsilon=epsilon, delta=delta)
    return model.set_params(**(params or {}))
