"""Event-level DP rating regression from noisy sufficient statistics (Gaussian mechanism).

:class:`PrivateRatingALS` fits ``r̂(u, i) = μ + b_u + b_i + p_u · q_i`` without gradient
descent: every learnt quantity is computed (post-processing) from a few Gaussian releases of
per-item and per-user sums: the "global effects" of McSherry & Mironov (KDD 2009), then
alternating least squares on the residuals from noisy right-hand sides (noisy sufficient
statistics). The privacy unit is **one rating** (event-level DP, the setting of Bu et al.
2020 and the TF Privacy MovieLens tutorial) under add/remove adjacency: a neighbouring
dataset has one rating more or fewer. One rating touches one user entry and one item entry.

Releases (release ``j`` adds i.i.d. N(0, (σ_j Δ_j)²) to every coordinate; ``Δ_j`` is its L2
sensitivity, ``c`` = the public ``offset``, ``B`` = ``clip``, ``B_f`` = ``factor_clip``,
``C`` = ``factor_norm``):

1. Item sums and counts ``(S_i, N_i)_i``, ``S_i = Σ_u clip(r_ui − c, ±B)``. One rating moves
   one item's pair by ``(s, 1)``, ``|s| <= B``: ``Δ₁ = sqrt(B² + 1)``; multiplier ``σ_b``.
2. User residual sums and counts ``(S_u, N_u)_u``, ``S_u = Σ_i clip(r_ui − μ̃ − b̃_i, ±B)``
   (``μ̃, b̃_i`` computed from release 1): ``Δ₂ = sqrt(B² + 1)``; multiplier ``σ_b``.
3. ``n_iterations`` ALS sweeps, each a user then an item half-step. The user half-step
   releases ``h_u = Σ_i e_ui q_i`` for every user, ``e_ui = clip(r_ui − μ̃ − b̃_u − b̃_i, ±B_f)``,
   with item factors ``q_i`` (released by the previous half-step, or drawn from the seeded
   generator, independent of the data, for the first) rescaled to ``‖q_i‖ <= C``. One rating
   moves one user's ``h_u`` by ``e q``: ``Δ = B_f C``; multiplier ``σ_f``. The item
   half-step is the same with the roles swapped. The Gram matrix ``Σ_i q_i q_iᵀ`` of the ridge
   solve is not released: it is approximated by ``Ñ_u M`` with the noisy count of release 2
   and ``M`` the count-weighted second moment of the (already public) factors.

Accounting: each query depends on the data and on earlier *released* values only, so the
mechanisms compose adaptively; Opacus's accountant (PRV or RDP) is given the history
``[(σ_b, q = 1, 2), (σ_f, q = 1, 2 · n_iterations)]``. Gaussian mechanisms compose exactly into
one Gaussian mechanism of multiplier ``σ = (Σ_j σ_j⁻²)^(-1/2)``, so σ is calibrated for one
release (:func:`~lumenrec.privacy.dp.gaussian_noise_multiplier`) and split: a share
``bias_share`` of ``σ⁻²`` goes to the two bias releases, the rest to the ALS releases.
``privacy_`` records that σ (``steps`` 1) and the per-release multipliers under "releases";
its ``epsilon`` is the accountant's ε of the history (``<= epsilon``).

What the guarantee covers: every fitted array (mean, biases and factors of users and items).
The artifact also holds ``seen_`` (each user's own training ratings, as every LumenRec model
does); it is not differentially private and must be served only to that user.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import Interval, Options, check_is_fitted
from lumenrec.models.base import BaseRecommender
from lumenrec.privacy.dp import (
    ACCOUNTANTS,
    PrivacySpend,
    SpendState,
    check_budget,
    gaussian_noise_multiplier,
    import_opacus,
    quiet_accountant,
)
from lumenrec.types import IndexArray, ScoreMatrix, Seed

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["BiasedRatingScores", "PrivateRatingALS", "composed_epsilon"]

log = logging.getLogger(__name__)

Float = NDArray[np.float64]


def composed_epsilon(
    history: list[tuple[float, float, int]], delta: float, accountant: str = "prv"
) -> float:
    """ε of a composition of Gaussian mechanisms by Opacus's accountant.

    Parameters
    ----------
    history : list of (noise_multiplier, sample_rate, steps)
        Opacus's accountant history (here sample rate 1: one-shot releases).
    delta : float
    accountant : {"prv", "rdp"}

    Returns
    -------
    float
    """
    opacus = import_opacus()
    acc = opacus.accountants.create_accountant(mechanism=accountant)
    acc.history = [(float(s), float(q), int(t)) for s, q, t in history]
    with quiet_accountant():
        return float(acc.get_epsilon(delta=float(delta)))


def _clip_rows(x: Float, bound: float) -> Float:
    """Rows of ``x`` rescaled to L2 norm at most ``bound``."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x * np.minimum(1.0, bound / np.maximum(norms, 1e-12))


class BiasedRatingScores:
    """Scoring of the biased-MF rating regressors: ``offset + b_u + b_i + p_u · q_i``, clipped
    to ``[min_rating, max_rating]`` (``PrivateRatingALS``, ``PrivateRatingMF``); the host gives
    the offset."""

    user_factors_: NDArray[np.float32]
    item_factors_: NDArray[np.float32]
    user_bias_: NDArray[np.float32]
    item_bias_: NDArray[np.float32]
    min_rating: float
    max_rating: float
    n_users_: int
    n_items_: int
    _check_indices: Any

    def _rating_offset(self) -> float:  # pragma: no cover - every host overrides it
        raise NotImplementedError

    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        it = slice(None) if items is None else items
        raw = (
            self._rating_offset()
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
            self._rating_offset()
            + self.user_bias_[u].astype(np.float64)
            + self.item_bias_[i]
            + np.einsum("nf,nf->n", self.user_factors_[u], self.item_factors_[i])
        )
        return np.clip(raw, self.min_rating, self.max_rating).astype(np.float32)


class PrivateRatingALS(BiasedRatingScores, SpendState, BaseRecommender):
    """Biases plus ALS factors from noisy sufficient statistics, event-level (ε, δ)-DP.

    See the module docstring for the releases, their L2 sensitivities and the accounting.
    Post-processing: ``μ̃ = c + ΣS̃_i / ΣÑ_i``; ``b̃_i = (S̃_i − Ñ_i (μ̃ − c)) / (Ñ_i⁺ +
    reg_item)``; ``b̃_u = S̃_u / (Ñ_u⁺ + reg_user)``; ALS half-steps solve
    ``(Ñ_u M + reg_factors · I) p_u = h̃_u`` and rescale ``p_u`` to norm ``<= C``. Predictions
    are clipped to ``[min_rating, max_rating]``.

    Stability: experimental.

    Parameters
    ----------
    epsilon : float or None, default 8.0
        Total ε over all releases; None fits the same model without noise (non-private;
        clipping kept).
    delta : float, default 1e-6
        Must be below 1 / n_ratings.
    n_factors : int, default 0
        Rank of the ALS stage (0: biases only, 2 releases).
    n_iterations : int, default 1
        ALS sweeps (each one user and one item release).
    offset : float, default 3.0
        Public centre ``c`` of the rating scale (not the data's mean).
    clip : float, default 2.0
        ``B``: bound on each centred rating and residual.
    factor_norm : float, default 1.0
        ``C``: bound on the L2 norm of every factor row.
    reg_item, reg_user : float, default 25.0, 10.0
        Shrinkage of the item and user biases (pseudo-counts).
    reg_factors : float, default 10.0
        Ridge penalty of the ALS half-steps.
    factor_clip : float, default 1.0
        ``B_f``: bound on each residual in the ALS stage.
    bias_share : float in (0, 1), default 0.2
        Share of the budget (of ``σ⁻²``) spent on the two bias releases (unused when
        ``n_factors`` is 0: the biases get all of it).
    min_rating, max_rating : float, default 1.0, 5.0
        Public rating scale.
    accountant : {"prv", "rdp"}, default "prv"
    random_state : int, Generator or None
        Seeds the noise and the initial item factors (not a secure generator).

    Attributes
    ----------
    user_bias_ : ndarray of shape (n_users,), float32
    item_bias_ : ndarray of shape (n_items,), float32
    user_factors_ : ndarray of shape (n_users, n_factors), float32
    item_factors_ : ndarray of shape (n_items, n_factors), float32
    global_mean_ : ndarray of shape (1,), float32
        ``μ̃``.
    privacy_ : dict
        :meth:`PrivacySpend.as_dict` (``level`` "event", ``mechanism`` "gaussian",
        ``noise_multiplier`` the equivalent single-release σ, ``steps`` 1) plus "releases":
        one dict per group (name, count, sensitivity, noise_multiplier); empty when
        ``epsilon`` is None.
    """

    _param_constraints: ClassVar[dict[str, Any]] = {
        "epsilon": (Interval(float, 0.0, None, low_open=True), None),
        "delta": Interval(float, 0.0, 1.0, low_open=True, high_open=True),
        "n_factors": Interval(int, 0, None),
        "n_iterations": Interval(int, 1, None),
        "offset": Interval(float),
        "clip": Interval(float, 0.0, None, low_open=True),
        "factor_norm": Interval(float, 0.0, None, low_open=True),
        "reg_item": Interval(float, 0.0, None),
        "reg_user": Interval(float, 0.0, None),
        "reg_factors": Interval(float, 0.0, None, low_open=True),
        "factor_clip": Interval(float, 0.0, None, low_open=True),
        "bias_share": Interval(float, 0.0, 1.0, low_open=True, high_open=True),
        "min_rating": Interval(float),
        "max_rating": Interval(float),
        "accountant": Options(ACCOUNTANTS),
    }
    _fitted_arrays = (
        "user_bias_",
        "item_bias_",
        "user_factors_",
        "item_factors_",
        "global_mean_",
    )

    def __init__(
        self,
        epsilon: float | None = 8.0,
        delta: float = 1e-6,
        n_factors: int = 0,
        n_iterations: int = 1,
        offset: float = 3.0,
        clip: float = 2.0,
        factor_norm: float = 1.0,
        reg_item: float = 25.0,
        reg_user: float = 10.0,
        reg_factors: float = 10.0,
        factor_clip: float = 1.0,
        bias_share: float = 0.2,
        min_rating: float = 1.0,
        max_rating: float = 5.0,
        accountant: str = "prv",
        random_state: Seed = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.n_factors = n_factors
        self.n_iterations = n_iterations
        self.offset = offset
        self.clip = clip
        self.factor_norm = factor_norm
        self.reg_item = reg_item
        self.reg_user = reg_user
        self.reg_factors = reg_factors
        self.factor_clip = factor_clip
        self.bias_share = bias_share
        self.min_rating = min_rating
        self.max_rating = max_rating
        self.accountant = accountant
        self.random_state = random_state

    # -- privacy ---------------------------------------------------------------------------
    def _releases(self) -> list[tuple[str, int, float]]:
        """``(name, count, L2 sensitivity)`` of each group of releases."""
        b, bf, cn = float(self.clip), float(self.factor_clip), float(self.factor_norm)
        out = [("item sums and counts", 1, float(np.hypot(b, 1.0)))]
        out.append(("user residual sums and counts", 1, float(np.hypot(b, 1.0))))
        if self.n_factors > 0:
            out.append(("ALS right-hand sides", 2 * int(self.n_iterations), bf * cn))
        return out

    def _multipliers(self, sigma_eff: float) -> tuple[float, float]:
        """Per-release noise multipliers ``(σ_b, σ_f)`` of the bias and ALS releases whose
        composition equals one Gaussian mechanism of multiplier ``sigma_eff``:
        ``2 / σ_b² = share / σ_eff²`` and ``2T / σ_f² = (1 − share) / σ_eff²``."""
        if self.n_factors == 0:
            return sigma_eff * np.sqrt(2.0), 0.0
        share, t2 = float(self.bias_share), 2.0 * int(self.n_iterations)
        return sigma_eff * np.sqrt(2.0 / share), sigma_eff * np.sqrt(t2 / (1.0 - share))

    def _history(self, sigma_eff: float) -> list[tuple[float, float, int]]:
        """The accountant history ``[(σ_j, q = 1, count_j)]`` of the releases."""
        s_b, s_f = self._multipliers(sigma_eff)
        sigmas = [s_b, s_b, s_f]
        return [
            (float(sg), 1.0, n) for sg, (_, n, _) in zip(sigmas, self._releases(), strict=False)
        ]

    def _calibrate(self, n_ratings: int) -> tuple[float, float]:
        """``(σ_b, σ_f)`` for the budget (0 when non-private); sets ``privacy_``."""
        if self.epsilon is None:
            self.privacy_: dict[str, Any] = {}
            return 0.0, 0.0
        eps, delta = float(self.epsilon), float(self.delta)
        check_budget(eps, delta, n_ratings, unit="ratings")
        sigma = gaussian_noise_multiplier(eps, delta, 1, self.accountant)
        spent = composed_epsilon(self._history(sigma), delta, self.accountant)
        while spent > eps:  # PRV discretisation: the composed ε may overshoot by ~1e-4
            sigma *= 1.0005
            spent = composed_epsilon(self._history(sigma), delta, self.accountant)
        spend = PrivacySpend(
            epsilon=spent,
            delta=delta,
            level="event",
            mechanism="gaussian",
            accountant=self.accountant,
            noise_multiplier=sigma,
            sample_rate=1.0,
            steps=1,
            sensitivity=1.0,  # per-release sensitivities are under "releases"
            target_epsilon=eps,
        )
        s_b, s_f = self._multipliers(sigma)
        releases = [
            {"name": name, "count": n, "sensitivity": sens, "noise_multiplier": float(sg)}
            for (name, n, sens), sg in zip(self._releases(), (s_b, s_b, s_f), strict=False)
        ]
        self.privacy_ = {**spend.as_dict(), "releases": releases}
        log.info(
            "PrivateRatingALS: sigma_bias=%.4f sigma_als=%.4f, epsilon=%.4f (event-level)",
            s_b,
            s_f,
            spent,
        )
        return s_b, s_f

    # -- fitting ---------------------------------------------------------------------------
    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        x = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
        x.eliminate_zeros()
        x.sort_indices()
        n_users, n_items = x.shape
        s_b, s_f = self._calibrate(x.nnz)
        b, c0 = float(self.clip), float(self.offset)
        users = np.repeat(np.arange(n_users), np.diff(x.indptr))
        items = x.indices.astype(np.int64)
        r = x.data
        std_b = s_b * float(np.hypot(b, 1.0))

        def noisy(values: Float, std: float) -> Float:
            return values + rng.standard_normal(values.shape) * std

        # release 1: item sums and counts
        s_i = noisy(np.bincount(items, np.clip(r - c0, -b, b), n_items), std_b)
        n_i = np.maximum(noisy(np.bincount(items, None, n_items).astype(np.float64), std_b), 0.0)
        mu = c0 + float(np.clip(s_i.sum() / max(float(n_i.sum()), 1.0), -b, b))
        item_bias = (s_i - n_i * (mu - c0)) / (n_i + float(self.reg_item) + 1e-9)
        item_bias = np.clip(item_bias, -b, b)
        # release 2: user residual sums and counts
        res = np.clip(r - mu - item_bias[items], -b, b)
        s_u = noisy(np.bincount(users, res, n_users), std_b)
        n_u = np.maximum(noisy(np.bincount(users, None, n_users).astype(np.float64), std_b), 0.0)
        user_bias = np.clip(s_u / (n_u + float(self.reg_user) + 1e-9), -b, b)

        k = int(self.n_factors)
        p = np.zeros((n_users, k))
        q = np.zeros((n_items, k))
        if k > 0:
            bf = float(self.factor_clip)
            e = np.clip(r - mu - user_bias[users] - item_bias[items], -bf, bf)
            x_e = sp.csr_matrix((e, items, x.indptr), shape=x.shape)
            x_et = x_e.T.tocsr()
            q = _clip_rows(rng.standard_normal((n_items, k)), float(self.factor_norm))
            for _ in range(int(self.n_iterations)):
                p = self._half_step(x_e, q, n_u, n_i, s_f, rng)
                q = self._half_step(x_et, p, n_i, n_u, s_f, rng)
        self.global_mean_ = np.array([mu], np.float32)
        self.item_bias_ = item_bias.astype(np.float32)
        self.user_bias_ = user_bias.astype(np.float32)
        self.user_factors_ = p.astype(np.float32)
        self.item_factors_ = q.astype(np.float32)

    def _half_step(
        self,
        resid: sp.csr_matrix,
        other: Float,
        counts: Float,
        other_counts: Float,
        sigma: float,
        rng: np.random.Generator,
    ) -> Float:
        """One private ridge half-step for the ``n`` rows of ``resid`` (n, m).

        Releases ``h = resid @ other + N(0, (σ B_f C)²)`` (``other`` of shape (m, k), rows of
        norm ``<= C``) and solves ``(ñ M + reg_factors · I) x = h̃`` per row, with the noisy
        counts ``ñ`` (``counts``, shape (n,)) and the public-by-now second moment
        ``M = Σ_j ñ_j o_j o_jᵀ / Σ_j ñ_j`` (``other_counts``, shape (m,)) standing in for the
        row's own Gram matrix. Returns (n, k) rows rescaled to norm ``<= C``.
        """
        k = other.shape[1]
        cn = float(self.factor_norm)
        rhs = np.asarray(resid @ other)
        rhs = rhs + rng.standard_normal(rhs.shape) * (sigma * float(self.factor_clip) * cn)
        m = (other.T * other_counts) @ other / max(float(other_counts.sum()), 1.0)
        gram = counts[:, None, None] * m[None] + float(self.reg_factors) * np.eye(k)[None]
        sol = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
        return _clip_rows(sol, cn)

    def _rating_offset(self) -> float:
        return float(self.global_mean_[0])
