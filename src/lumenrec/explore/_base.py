"""Policy interface: the request context, the slate, the protocol and the shared base class."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.explore._propensity import greedy_order

__all__ = ["BasePolicy", "Policy", "PolicyContext", "Slate", "examination"]


@dataclass(frozen=True)
class PolicyContext:
    """What contextual policies see about one request.

    Attributes
    ----------
    user_vector : ndarray of shape (d,), float32, optional
        The user's language-model profile embedding (or the mean of history item embeddings).
    item_vectors : ndarray of shape (n_candidates, d), float32, optional
        The candidates' frozen language-model item embeddings, aligned to ``candidates``.
    """

    user_vector: NDArray[np.float32] | None = None
    item_vectors: NDArray[np.float32] | None = None


@dataclass(frozen=True)
class Slate:
    """The items a policy shows for one request.

    Attributes
    ----------
    items : ndarray of shape (k,), int32
        Dense item indices (as given in ``candidates``), in slate order.
    propensities : ndarray of shape (k,), float64
        Marginal ``P(that item is shown at that position)`` under the policy, in (0, 1].
    exploratory : ndarray of shape (k,), bool
        True where the item is not the best-scoring candidate (by the recommender's scores)
        among those not already placed above it.
    method : str
        ``"exact"`` or ``"simulated"``.
    standard_error : float
        Largest standard error of the simulated propensities (0 when exact).
    """

    items: NDArray[np.int32]
    propensities: NDArray[np.float64]
    exploratory: NDArray[np.bool_]
    method: str
    standard_error: float = 0.0


@runtime_checkable
class Policy(Protocol):
    """What the service and off-policy evaluation need from an exploration policy."""

    name: str
    version: str

    def params(self) -> dict[str, Any]: ...

    def select(
        self,
        candidates: NDArray[np.int32],
        scores: NDArray[np.float32],
        k: int,
        *,
        rng: np.random.Generator,
        context: PolicyContext | None = None,
    ) -> Slate: ...

    def position_propensities(
        self,
        candidates: NDArray[np.int32],
        scores: NDArray[np.float32],
        k: int,
        *,
        context: PolicyContext | None = None,
        rng: np.random.Generator | None = None,
        n_samples: int = 10_000,
    ) -> tuple[NDArray[np.float64], str, float]: ...

    def update(
        self,
        item: int,
        reward: float,
        *,
        position: int = 0,
        context: PolicyContext | None = None,
        item_vector: NDArray | None = None,
    ) -> None: ...

    def get_state(self) -> dict[str, NDArray]: ...

    def set_state(self, state: dict[str, NDArray]) -> None: ...


def examination(position: int, model: str = "log2") -> float:
    """Position-based examination probability: ``1 / log2(position + 2)`` (``"log2"``) or 1."""
    if model == "none":
        return 1.0
    return 1.0 / math.log2(position + 2)


_EXAMINATION = ("log2", "none")


class BasePolicy:
    """Shared input checks, slate assembly and (stateless) state handling.

    Subclasses implement :meth:`_rank` (the slate's candidate positions) and
    :meth:`_marginals` (the ``(n, k)`` propensity matrix, method, standard error).
    """

    name: ClassVar[str] = "base"
    version: ClassVar[str] = "1"
    #: Propensity samples used by :meth:`select` for simulated policies.
    n_samples: int = 10_000

    def params(self) -> dict[str, Any]:
        """The constructor parameters (JSON-able), as :func:`make_policy` accepts them."""
        return {p: getattr(self, p) for p in _init_params(type(self))}

    def __repr__(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in self.params().items())
        return f"{self.name}({inner})"

    # -- inputs ----------------------------------------------------------------------------
    @staticmethod
    def _check(
        candidates: NDArray[np.int32], scores: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.int32], NDArray[np.float64], int]:
        cand = np.asarray(candidates)
        sc = np.asarray(scores, dtype=np.float64)
        if cand.ndim != 1 or sc.shape != cand.shape:
            msg = (
                f"candidates and scores must be 1-D of equal length (got {cand.shape}, {sc.shape})"
            )
            raise DataError(msg)
        if cand.size == 0:
            msg = "no candidates to choose from"
            raise DataError(msg)
        if not np.issubdtype(cand.dtype, np.integer) or cand.min() < 0:
            msg = "candidates must be non-negative integer item indices"
            raise DataError(msg)
        if np.unique(cand).size != cand.size:
            msg = "candidates contain duplicate items"
            raise DataError(msg)
        if not np.isfinite(sc).all():
            msg = "scores must be finite (drop or fill -inf/NaN candidates first)"
            raise DataError(msg)
        if not isinstance(k, int | np.integer) or k < 1:
            msg = f"k must be a positive int (got {k!r})"
            raise DataError(msg)
        return cand.astype(np.int32, copy=False), sc, int(min(k, cand.size))

    # -- to override -----------------------------------------------------------------------
    def _rank(
        self,
        cand: NDArray[np.int32],
        scores: NDArray[np.float64],
        k: int,
        rng: np.random.Generator,
        context: PolicyContext | None,
    ) -> NDArray[np.intp]:
        raise NotImplementedError

    def _marginals(
        self,
        cand: NDArray[np.int32],
        scores: NDArray[np.float64],
        k: int,
        context: PolicyContext | None,
        rng: np.random.Generator,
        n_samples: int,
    ) -> tuple[NDArray[np.float64], str, float]:
        raise NotImplementedError

    # -- public ----------------------------------------------------------------------------
    def rank(
        self,
        candidates: NDArray[np.int32],
        scores: NDArray[np.float32],
        k: int,
        *,
        rng: np.random.Generator,
        context: PolicyContext | None = None,
    ) -> NDArray[np.int32]:
        """The slate's items only (no propensities): the fast path simulations use.

        Returns
        -------
        ndarray of shape (k,), int32
            Same draw as :meth:`select` with the same ``rng`` state.
        """
        cand, sc, k = self._check(candidates, scores, k)
        return cand[self._rank(cand, sc, k, rng, context)]

    def select(
        self,
        candidates: NDArray[np.int32],
        scores: NDArray[np.float32],
        k: int,
        *,
        rng: np.random.Generator,
        context: PolicyContext | None = None,
    ) -> Slate:
        """Choose a ``k``-slate from the candidates and log each item's propensity.

        Parameters
        ----------
        candidates : ndarray of shape (n,), int32
            Dense item indices the recommender produced (distinct).
        scores : ndarray of shape (n,), float32
            The recommender's scores for them (finite; higher is better).
        k : int
            Slate length (capped at ``n``).
        rng : numpy.random.Generator
            All randomness: the slate first, then (simulated policies) the propensity draws.
        context : PolicyContext, optional
            Needed by the contextual policies (``linucb``, ``lin-ts``).

        Returns
        -------
        Slate
            Simulated propensities are floored at ``1 / (n_samples + 1)`` so a shown item never
            logs 0 (the item *was* drawn once more than the simulation saw).
        """
        cand, sc, k = self._check(candidates, scores, k)
        pos = self._rank(cand, sc, k, rng, context)
        probs, method, se = self._marginals(cand, sc, k, context, rng, self.n_samples)
        prop = probs[pos, np.arange(k)]
        if method != "exact":
            prop = np.maximum(prop, 1.0 / (self.n_samples + 1))
        prop = np.clip(prop, np.finfo(np.float64).tiny, 1.0)
        return Slate(
            items=cand[pos].astype(np.int32),
            propensities=prop.astype(np.float64),
            exploratory=_exploratory(pos, sc),
            method=method,
            standard_error=float(se),
        )

    def position_propensities(
        self,
        candidates: NDArray[np.int32],
        scores: NDArray[np.float32],
        k: int,
        *,
        context: PolicyContext | None = None,
        rng: np.random.Generator | None = None,
        n_samples: int = 10_000,
    ) -> tuple[NDArray[np.float64], str, float]:
        """Marginal ``P(candidate c at position j)`` under the policy's current state.

        Parameters
        ----------
        candidates, scores, k, context
            As for :meth:`select`.
        rng : numpy.random.Generator, optional
            Used only by simulated policies; default ``numpy.random.default_rng(0)``.
        n_samples : int
            Simulated slates (simulated policies only).

        Returns
        -------
        marginals : ndarray of shape (n, min(k, n)), float64
            Columns sum to 1; rows sum to at most 1.
        method : str
            ``"exact"`` or ``"simulated"``.
        standard_error : float
            Largest binomial standard error of a simulated entry (0 when exact).
        """
        cand, sc, k = self._check(candidates, scores, k)
        if not isinstance(n_samples, int | np.integer) or n_samples < 1:
            msg = f"n_samples must be a positive int (got {n_samples!r})"
            raise ConfigError(msg)
        rng = np.random.default_rng(0) if rng is None else rng
        return self._marginals(cand, sc, k, context, rng, int(n_samples))

    def update(
        self,
        item: int,
        reward: float,
        *,
        position: int = 0,
        context: PolicyContext | None = None,
        item_vector: NDArray | None = None,
    ) -> None:
        """Learn from one feedback event (no-op for stateless policies)."""

    def get_state(self) -> dict[str, NDArray]:
        """The learned state as named arrays (empty for stateless policies)."""
        return {}

    def set_state(self, state: dict[str, NDArray]) -> None:
        """Restore :meth:`get_state` output."""
        _ = state


def _init_params(cls: type) -> list[str]:
    """The named constructor parameters of a policy class."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    sig = inspect.signature(cls.__init__)
    if cls.__init__ is object.__init__:
        return []
    return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind in kinds]


def _exploratory(pos: NDArray[np.intp], scores: NDArray[np.float64]) -> NDArray[np.bool_]:
    """True where ``pos[j]`` is not the best-scoring candidate left after ``pos[:j]``."""
    order = greedy_order(scores)
    taken = np.zeros(scores.size, dtype=bool)
    out = np.zeros(pos.size, dtype=bool)
    ptr = 0
    for j, p in enumerate(pos):
        while taken[order[ptr]]:
            ptr += 1
        out[j] = order[ptr] != p
        taken[p] = True
    return out


def _check_number(name: str, value: Any, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        msg = f"{name} must be a number in [{low}, {high}] (got {value!r})"
        raise ConfigError(msg)
    value = float(value)
    if not (low <= value <= high) or math.isnan(value):
        msg = f"{name} must lie in [{low}, {high}] (got {value})"
        raise ConfigError(msg)
    return value
