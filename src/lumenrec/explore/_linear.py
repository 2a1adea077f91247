"""LinUCB and linear Thompson sampling over frozen language-model item and user embeddings.

One ridge model ``(A, b)`` is shared by all items, so feedback on one item informs every item
whose text is similar, and a brand-new item is explored according to what its text says.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.explore._base import (
    _EXAMINATION,
    BasePolicy,
    PolicyContext,
    _check_number,
    examination,
)
from lumenrec.explore._propensity import greedy_order, one_hot_marginals, simulate_marginals

__all__ = ["FEATURES", "LinUCB", "LinearThompson"]

#: Feature maps ``x(item_vec, user_vec)`` (each with a trailing bias 1).
FEATURES = ("concat", "interaction", "item")


class _LinearPolicy(BasePolicy):
    """Shared ridge state and features.

    Features (``d`` = embedding size), each followed by a constant 1:
    ``"concat"`` (default) ``x = [item, item ⊙ user]`` — what an item's text says on its own
    plus how it matches this user's profile (``2d + 1``); ``"interaction"``
    ``x = item ⊙ user`` (``d + 1``); ``"item"`` ``x = item`` (``d + 1``, not personalised).
    A missing user vector counts as zeros.

    Warm start: :meth:`warm_start` fits ``(A, b)`` on a batch of logged feedback (e.g. about
    known items) before or between online updates.

    Position awareness: under a position-based model the click probability is ``e · xᵀθ``
    with ``e`` the examination probability of the position, which is linear in ``e · x``; so
    :meth:`update` adds ``(e x)(e x)ᵀ`` to ``A`` and ``r · e x`` to ``b``.
    """

    def __init__(
        self, regularization: float = 1.0, features: str = "concat", position_model: str = "log2"
    ) -> None:
        self.regularization = _check_number("regularization", regularization, 1e-9)
        if features not in FEATURES:
            msg = f"features must be one of {list(FEATURES)} (got {features!r})"
            raise ConfigError(msg)
        self.features = features
        if position_model not in _EXAMINATION:
            msg = f"position_model must be one of {list(_EXAMINATION)} (got {position_model!r})"
            raise ConfigError(msg)
        self.position_model = position_model
        self.A: NDArray[np.float64] | None = None
        self.b: NDArray[np.float64] | None = None
        self._a_inv: NDArray[np.float64] | None = None

    # -- features --------------------------------------------------------------------------
    def featurize(
        self,
        item_vectors: NDArray[np.floating],
        user_vector: NDArray[np.floating] | None,
    ) -> NDArray[np.float64]:
        """Context features, shape ``(n, D)`` float64, for item vectors of shape ``(n, d)``.

        ``user_vector`` is one profile of shape ``(d,)`` shared by every row, one profile per
        row of shape ``(n, d)``, or None (zeros).
        """
        items = np.atleast_2d(np.asarray(item_vectors, dtype=np.float64))
        n, d = items.shape
        if user_vector is None:
            user = np.zeros(d)
        else:
            user = np.asarray(user_vector, dtype=np.float64)
            if user.ndim == 2 and user.shape == (n, d):
                pass
            elif user.size == d:
                user = user.ravel()
            else:
                msg = f"user vectors have shape {user.shape} but item vectors have {(n, d)}"
                raise DataError(msg)
        ones = np.ones((n, 1))
        if self.features == "concat":
            x = np.hstack([items, items * user, ones])
        elif self.features == "interaction":
            x = np.hstack([items * user, ones])
        else:
            x = np.hstack([items, ones])
        self._init(x.shape[1])
        return x

    def _init(self, dim: int) -> None:
        if self.A is None:
            self.A = self.regularization * np.eye(dim)
            self.b = np.zeros(dim)
            self._a_inv = np.eye(dim) / self.regularization
        elif self.A.shape[0] != dim:
            msg = f"context has {dim} features but this policy was trained on {self.A.shape[0]}"
            raise DataError(msg)

    def _context_x(
        self, cand: NDArray[np.int32], context: PolicyContext | None
    ) -> NDArray[np.float64]:
        if context is None or context.item_vectors is None:
            msg = f"policy {self.name!r} needs context=PolicyContext(item_vectors=..., user_vector=...)"
            raise DataError(msg)
        vecs = np.asarray(context.item_vectors)
        if vecs.ndim != 2 or vecs.shape[0] != cand.size:
            msg = f"context.item_vectors must have shape ({cand.size}, d) (got {vecs.shape})"
            raise DataError(msg)
        return self.featurize(vecs, context.user_vector)

    def _mean_var(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        assert self._a_inv is not None and self.b is not None
        theta = self._a_inv @ self.b
        var = np.einsum("ij,jk,ik->i", x, self._a_inv, x)
        return x @ theta, np.maximum(var, 0.0)

    # -- learning --------------------------------------------------------------------------
    def update(self, item, reward, *, position=0, context=None, item_vector=None):  # type: ignore[no-untyped-def]
        """Add one observation; needs ``item_vector`` (the shown item's embedding) and, for
        personalised features, ``context.user_vector``."""
        if item_vector is None:
            msg = f"policy {self.name!r} needs item_vector= (the shown item's embedding) to update"
            raise DataError(msg)
        user = None if context is None else context.user_vector
        x = self.featurize(np.asarray(item_vector).reshape(1, -1), user)[0]
        x = x * examination(int(position), self.position_model)
        assert self.A is not None and self.b is not None and self._a_inv is not None
        self.A += np.outer(x, x)
        self.b += float(reward) * x
        ax = self._a_inv @ x  # Sherman–Morrison
        self._a_inv -= np.outer(ax, ax) / (1.0 + x @ ax)

    def warm_start(
        self,
        item_vectors: NDArray[np.floating],
        user_vectors: NDArray[np.floating] | None,
        rewards: NDArray[np.floating],
        *,
        positions: NDArray[np.integer] | None = None,
        weight: float = 1.0,
    ) -> None:
        """Pre-fit (or further fit) the shared ridge model on a batch of logged feedback.

        Typically feedback about *known* items (historical impressions and clicks): the model
        maps ``[item text, item ⊙ user]`` to click propensity, so a brand-new item is scored
        by what its text says from its first request on. Equivalent to calling :meth:`update`
        once per row (``weight`` times), but in one ``O(n D² + D³)`` step.

        Parameters
        ----------
        item_vectors : ndarray of shape (n, d)
            Embeddings of the shown items.
        user_vectors : ndarray of shape (n, d) or (d,), optional
            The users' profile embeddings, one per row (or one shared; None = zeros).
        rewards : ndarray of shape (n,)
            Observed rewards (clicks as 0/1).
        positions : ndarray of shape (n,), int, optional
            0-based slate positions (default 0); rows are scaled by the examination
            probability as in :meth:`update`.
        weight : float
            How many observations each row counts as (``A += w Σ x xᵀ``, ``b += w Σ r x``);
            below 1 the known-item evidence is a weaker prior that new-item feedback overrides
            sooner.
        """
        w = _check_number("weight", weight, 0.0)
        items = np.atleast_2d(np.asarray(item_vectors, dtype=np.float64))
        n = items.shape[0]
        r = np.asarray(rewards, dtype=np.float64).ravel()
        if r.shape != (n,) or not np.isfinite(r).all():
            msg = f"rewards must be {n} finite numbers, one per item vector (got {r.shape})"
            raise DataError(msg)
        if positions is None:
            e = np.full(n, examination(0, self.position_model))
        else:
            pos = np.asarray(positions).ravel()
            if pos.shape != (n,) or (pos < 0).any():
                msg = f"positions must be {n} non-negative ints, one per item vector"
                raise DataError(msg)
            e = np.array(
                [
                    examination(int(j), self.position_model)
                    for j in range(int(pos.max(initial=0)) + 1)
                ]
            )
            e = e[pos.astype(np.int64)]
        x = self.featurize(items, user_vectors) * e[:, None]
        assert self.A is not None and self.b is not None
        self.A += w * (x.T @ x)
        self.b += w * (x.T @ r)
        self._a_inv = np.linalg.inv(self.A)

    @property
    def theta(self) -> NDArray[np.float64] | None:
        """The ridge estimate ``θ̂ = A⁻¹ b``, shape ``(D,)`` (None before any context)."""
        if self._a_inv is None or self.b is None:
            return None
        return self._a_inv @ self.b

    def get_state(self) -> dict[str, NDArray]:
        if self.A is None or self.b is None:
            return {}
        return {"A": self.A.copy(), "b": self.b.copy()}

    def set_state(self, state: dict[str, NDArray]) -> None:
        if not state:
            self.A = self.b = self._a_inv = None
            return
        self.A = np.asarray(state["A"], dtype=np.float64).copy()
        self.b = np.asarray(state["b"], dtype=np.float64).copy()
        self._a_inv = np.linalg.inv(self.A)


class LinUCB(_LinearPolicy):
    """LinUCB (Li et al., WWW 2010, shared model): rank by ``xᵀθ̂ + α · sqrt(xᵀA⁻¹x)``.

    Deterministic given its state: every pick has propensity 1 (``"exact"``). Off-policy
    evaluation of LinUCB as a *target* is fine; as a *logging* policy its propensities give
    no support to any other slate, so its logs cannot evaluate other policies.
    Ties (e.g. before any feedback) follow the recommender's scores.
    """

    name = "linucb"

    def __init__(
        self,
        alpha: float = 1.0,
        regularization: float = 1.0,
        features: str = "concat",
        position_model: str = "log2",
    ) -> None:
        super().__init__(regularization, features, position_model)
        self.alpha = _check_number("alpha", alpha, 0.0)

    def _order(self, cand, scores, context):  # type: ignore[no-untyped-def]
        mean, var = self._mean_var(self._context_x(cand, context))
        ucb = mean + self.alpha * np.sqrt(var)
        return np.lexsort((np.arange(cand.size), -scores, -np.round(ucb, 12)))

    def _rank(self, cand, scores, k, rng, context):  # type: ignore[no-untyped-def]
        return self._order(cand, scores, context)[:k]

    def _marginals(self, cand, scores, k, context, rng, n_samples):  # type: ignore[no-untyped-def]
        return one_hot_marginals(self._order(cand, scores, context), cand.size, k), "exact", 0.0


class LinearThompson(_LinearPolicy):
    """Linear Thompson sampling (Agrawal & Goyal 2013): draw ``θ ~ N(θ̂, v² A⁻¹)`` and rank by
    ``xᵀθ``. Drawn jointly in the candidates' value space, ``N(Xθ̂, v² X A⁻¹ Xᵀ)``, through the
    smaller of the two square-root factors. Propensities by simulation (``n_samples`` draws).
    """

    name = "lin-ts"

    def __init__(
        self,
        v: float = 0.5,
        regularization: float = 1.0,
        features: str = "concat",
        position_model: str = "log2",
    ) -> None:
        super().__init__(regularization, features, position_model)
        self.v = _check_number("v", v, 0.0)

    def _factor(
        self, cand: NDArray[np.int32], context: PolicyContext | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(mean (n,), F (r, n))`` with draws ``mean + z @ F``, ``z ~ N(0, I_r)``."""
        x = self._context_x(cand, context)
        assert self._a_inv is not None and self.b is not None
        mean = x @ (self._a_inv @ self.b)
        if x.shape[0] <= x.shape[1]:
            cov = x @ self._a_inv @ x.T
            w, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
            factor = (vecs * np.sqrt(np.maximum(w, 0.0))).T
        else:
            chol = np.linalg.cholesky(0.5 * (self._a_inv + self._a_inv.T))
            factor = (x @ chol).T
        return mean, self.v * factor

    def _rank(self, cand, scores, k, rng, context):  # type: ignore[no-untyped-def]
        mean, factor = self._factor(cand, context)
        draw = mean + rng.standard_normal(factor.shape[0]) @ factor
        return greedy_order(draw)[:k]

    def _marginals(self, cand, scores, k, context, rng, n_samples):  # type: ignore[no-untyped-def]
        mean, factor = self._factor(cand, context)
        probs, se = simulate_marginals(
            lambda r, s: mean + r.standard_normal((s, factor.shape[0])) @ factor,
            cand.size,
            k,
            n_samples,
            rng,
        )
        return probs, "simulated", se
