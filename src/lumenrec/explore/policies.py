"""Exploration policies over a recommender's candidates, with logged position propensities.

A policy never replaces the recommender: it takes the candidates (dense item indices) and
their scores for one request and returns a :class:`Slate` — the ``k`` items to show, each
with the marginal probability ``P(item at that position)`` under the policy, exact where a
closed form exists and otherwise estimated by simulation with its standard error.

Build one from a spec with :func:`make_policy`: ``"greedy"``, ``"random"``,
``"epsilon-greedy(epsilon=0.1,decay=0.0)"``, ``"softmax(temperature=0.5)"``,
``"thompson(prior_strength=10)"``, ``"ucb(c=1.0)"``, ``"linucb(alpha=1.0)"``,
``"lin-ts(v=0.5)"``. See ``docs/exploration.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.explore._base import (
    _EXAMINATION,
    BasePolicy,
    Policy,
    PolicyContext,
    Slate,
    _check_number,
    _init_params,
    examination,
)
from lumenrec.explore._propensity import (
    epsilon_greedy_marginals,
    greedy_order,
    one_hot_marginals,
    plackett_luce_first_two,
    simulate_marginals,
)

__all__ = [
    "POLICY_NAMES",
    "BasePolicy",
    "EpsilonGreedy",
    "Greedy",
    "Policy",
    "PolicyContext",
    "RandomPolicy",
    "Slate",
    "Softmax",
    "Thompson",
    "UCB",
    "examination",
    "make_policy",
]

#: Names :func:`make_policy` understands.
POLICY_NAMES: tuple[str, ...] = (
    "greedy",
    "random",
    "epsilon-greedy",
    "softmax",
    "thompson",
    "ucb",
    "linucb",
    "lin-ts",
)


class Greedy(BasePolicy):
    """Score order, propensity 1 (the baseline; no exploration)."""

    name = "greedy"

    def _rank(self, cand, scores, k, rng, context):  # type: ignore[no-untyped-def]
        return greedy_order(scores)[:k]

    def _marginals(self, cand, scores, k, context, rng, n_samples):  # type: ignore[no-untyped-def]
        return one_hot_marginals(greedy_order(scores), cand.size, k), "exact", 0.0


class RandomPolicy(BasePolicy):
    """A uniformly random slate without replacement: every propensity is exactly ``1 / n``."""

    name = "random"

    def _rank(self, cand, scores, k, rng, context):  # type: ignore[no-untyped-def]
        return rng.permutation(cand.size)[:k]

    def _marginals(self, cand, scores, k, context, rng, n_samples):  # type: ignore[no-untyped-def]
        return np.full((cand.size, k), 1.0 / cand.size), "exact", 0.0


class EpsilonGreedy(BasePolicy):
    """Per position: a uniform pick among the remaining candidates with probability ε_t,
    else the best remaining one. Exact marginals (:func:`epsilon_greedy_marginals`).

    Parameters
    ----------
    epsilon : float
        Initial exploration probability in [0, 1].
    decay : float
        ``ε_t = epsilon / (1 + decay · t)`` where ``t`` counts this policy's :meth:`update`
        calls (one per feedback event; part of the saved state). 0 keeps ε fixed.
    """

    name = "epsilon-greedy"

    def __init__(self, epsilon: float = 0.1, decay: float = 0.0) -> None:
        self.epsilon = _check_number("epsilon", epsilon, 0.0, 1.0)
        self.decay = _check_number("decay", decay, 0.0)
        self._t = 0

    @property
    def current_epsilon(self) -> float:
        """ε after the decay so far."""
        return self.epsilon / (1.0 + self.decay * self._t)

    def _rank(self, cand, scores, k, rng, context):  # type: ignore[no-untyped-def]
        order = greedy_order(scores)
        eps = self.current_epsilon
        left = list(order)  # remaining positions, best first
        out = np.empty(k, dtype=np.intp)
        for j in range(k):
            idx = int(rng.integers(len(left))) if rng.random() < eps else 0
            out[j] = left.pop(idx)
        return out

    def _marginals(self, cand, scores, k, context, rng, n_samples):  # type: ignore[no-untyped-def]
        by_rank = epsilon_greedy_marginals(cand.size, k, self.current_epsilon)
        out = np.empty_like(by_rank)
        out[greedy_order(scores)] = by_rank
        return out, "exact", 0.0

    def update(self, item, reward, *, position=0, context=None, item_vector=None):  # type: ignore[no-untyped-def]
        self._t += 1

    def get_state(self) -> dict[str, NDArray]:
        return {"t": np.array([self._t], dtype=np.int64)}

    def set_state(self, state: dict[str, NDArray]) -> None:
        self._t = int(np.asarray(state.get("t", [0])).ravel()[0])


class Softmax(BasePolicy):
    """Plackett–Luce sampling without replacement from ``softmax(scores / temperature)``.

    Positions 0 and 1 have exact closed forms (:func:`plackett_luce_first_two`); later
    positions have no closed form for general ``n``, so for ``k > 2`` those columns are
    simulated (Gumbel-top-k draws) and the method is ``"simulated"``.
    """

    name = "softmax"

    def __init__(self, temperature: float = 0.5) -> None:
        self.temperature = _check_number("temperature", temperature, 1e-6)

    def _logits(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        z = scores / self.temperature
        return z - z.max()

    def _rank(self, cand, scores, k, rng, context):  # type: ignore[no-untyped-def]
        g = self._logits(scores) + rng.gumbel(size=scores.size)
        return greedy_order(g)[:k]

    def _marginals(self, cand, scores, k, context, rng, n_samples):  # type: ignore[no-untyped-def]
        logits = self._logits(scores)
        exact = plackett_luce_first_two(np.exp(logits), k)
        if k <= 2:
            return exact, "exact", 0.0
        probs, se = simulate_marginals(
            lambda r, s: logits + r.gumbel(size=(s, logits.size)), cand.size, k, n_samples, rng
        )
        probs[:, :2] = exact
        return probs, "simulated", se


class Thompson(BasePolicy):
    """Beta–Bernoulli Thompson sampling per item with the recommender's score as the prior.

    For candidate ``c`` the posterior is ``Beta(1 + κ μ_c + S_c, 1 + κ (1 − μ_c) + F_c)`` with
    ``κ = prior_strength`` pseudo-counts, ``μ_c`` the score mapped to a prior click rate and
    ``S, F`` the item's (position-corrected) successes and failures. The slate is the top
    ``k`` of one posterior draw per candidate.

    Parameters
    ----------
    prior_strength : float
        Pseudo-counts of the score prior (0: uninformed ``Beta(1, 1)``).
    prior : {"sigmoid", "minmax"}
        ``"sigmoid"``: ``μ = sigmoid(score)`` (scores are logits); ``"minmax"``: scores
        rescaled within the request to ``[prior_low, prior_high]`` (all equal → midpoint).
    prior_low, prior_high : float
        The ``"minmax"`` range.
    position_model : {"log2", "none"}
        Examination model for :meth:`update`: a non-click at a position examined with
        probability ``e`` counts as ``e (1 − θ̂) / (1 − e θ̂)`` failures (its posterior
        probability of having been examined), a click as one success.
    """

    name = "thompson"

    def __init__(
        self,
        prior_strength: float = 10.0,
        prior: str = "sigmoid",
        prior_low: float = 0.01,
        prior_high: float = 0.5,
        position_model: str = "log2",
    ) -> None:
        self.prior_strength = _check_number("prior_strength", prior_strength, 0.0)
        if prior not in ("sigmoid", "minmax"):
            msg = f"prior must be 'sigmoid' or 'minmax' (got {prior!r})"
            raise ConfigError(msg)
        self.prior = prior
        self.prior_low = _check_number("prior_low", prior_low, 0.0, 1.0)
        self.prior_high = _check_number("prior_high", prior_high, self.prior_low, 1.0)
        if position_model not in _EXAMINATION:
            msg = f"position_model must be one of {list(_EXAMINATION)} (got {position_model!r})"
            raise ConfigError(msg)
        self.position_model = position_model
        self.successes = np.zeros(0, dtype=np.float64)
        self.failures = np.zeros(0, dtype=np.float64)

    def _grow(self, n_items: int) -> None:
        if n_items > self.successes.size:
            pad = n_items - self.successes.size
            self.successes = np.concatenate([self.successes, np.zeros(pad)])
            self.failures = np.concatenate([self.failures, np.zeros(pad)])

    def prior_mean(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """The score → prior click-rate map ``μ`` (shape of ``scores``)."""
        if self.prior == "sigmoid":
            return 1.0 / (1.0 + np.exp(-np.clip(scores, -50, 50)))
        lo, hi = scores.min(), scores.max()
        if hi - lo <= 0:
            return np.full(scores.shape, 0.5 * (self.prior_low + self.prior_high))
        return self.prior_low + (self.prior_high - self.prior_low) * (scores - lo) / (hi - lo)

    def posterior(
        self, cand: NDArray[np.int32], scores: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Beta parameters ``(a, b)`` of each candidate, shape ``(n,)`` each."""
        self._grow(int(cand.max()) + 1)
        mu = self.prior_mean(scores)
        a = 1.0 + self.prior_strength * mu + self.successes[cand]
        b = 1.0 + self.prior_strength * (1.0 - mu) + self.failures[cand]
        return a, b

    def _rank(self, cand, scores, k, rng, context):  # type: ignore[no-untyped-def]
        a, b = self.posterior(cand, scores)
        return greedy_order(rng.beta(a, b))[:k]

    def _marginals(self, cand, scores, k, context, rng, n_samples):  # type: ignore[no-untyped-def]
        a, b = self.posterior(cand, scores)
        probs, se = simulate_marginals(
            lambda r, s: r.beta(a, b, size=(s, a.size)), cand.size, k, n_samples, rng
        )
        return probs, "simulated", se

    def update(self, item, reward, *, position=0, context=None, item_vector=None):  # type: ignore[no-untyped-def]
        item = int(item)
        if item < 0:
            msg = f"item must be a non-negative index (got {item})"
            raise DataError(msg)
        self._grow(item + 1)
        r = float(np.clip(reward, 0.0, 1.0))
        e = examination(int(position), self.position_model)
        s, f = self.successes[item], self.failures[item]
        theta = (1.0 + s) / (2.0 + s + f)  # the item's data-only posterior mean
        self.successes[item] += r
        self.failures[item] += (1.0 - r) * e * (1.0 - theta) / (1.0 - e * theta)

    def get_state(self) -> dict[str, NDArray]:
        return {"successes": self.successes.copy(), "failures": self.failures.copy()}

    def set_state(self, state: dict[str, NDArray]) -> None:
        self.successes = np.asarray(state["successes"], dtype=np.float64).copy()
        self.failures = np.asarray(state["failures"], dtype=np.float64).copy()


class UCB(BasePolicy):
    """UCB1 per item: index ``mean + c · sqrt(2 ln t / n_i)``; never-shown candidates first
    (in score order), ties by score. Deterministic: propensity 1 for its picks.

    Position-aware like :class:`Thompson`: a shown item counts ``e`` pulls where ``e`` is its
    position's examination probability (so ``mean`` estimates the examined click rate).
    """

    name = "ucb"

    def __init__(self, c: float = 1.0, position_model: str = "log2") -> None:
        self.c = _check_number("c", c, 0.0)
        if position_model not in _EXAMINATION:
            msg = f"position_model must be one of {list(_EXAMINATION)} (got {position_model!r})"
            raise ConfigError(msg)
        self.position_model = position_model
        self.pulls = np.zeros(0, dtype=np.float64)
        self.rewards = np.zeros(0, dtype=np.float64)

    def _grow(self, n_items: int) -> None:
        if n_items > self.pulls.size:
            pad = np.zeros(n_items - self.pulls.size)
            self.pulls = np.concatenate([self.pulls, pad])
            self.rewards = np.concatenate([self.rewards, pad])

    def _order(self, cand: NDArray[np.int32], scores: NDArray[np.float64]) -> NDArray[np.intp]:
        self._grow(int(cand.max()) + 1)
        n = self.pulls[cand]
        total = max(self.pulls.sum(), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            index = self.rewards[cand] / n + self.c * np.sqrt(2.0 * np.log(total + 1.0) / n)
        index = np.where(n > 0, index, np.inf)
        return np.lexsort((np.arange(cand.size), -scores, -index))

    def _rank(self, cand, scores, k, rng, context):  # type: ignore[no-untyped-def]
        return self._order(cand, scores)[:k]

    def _marginals(self, cand, scores, k, context, rng, n_samples):  # type: ignore[no-untyped-def]
        return one_hot_marginals(self._order(cand, scores), cand.size, k), "exact", 0.0

    def update(self, item, reward, *, position=0, context=None, item_vector=None):  # type: ignore[no-untyped-def]
        item = int(item)
        self._grow(item + 1)
        e = examination(int(position), self.position_model)
        self.pulls[item] += e
        self.rewards[item] += float(reward)

    def get_state(self) -> dict[str, NDArray]:
        return {"pulls": self.pulls.copy(), "rewards": self.rewards.copy()}

    def set_state(self, state: dict[str, NDArray]) -> None:
        self.pulls = np.asarray(state["pulls"], dtype=np.float64).copy()
        self.rewards = np.asarray(state["rewards"], dtype=np.float64).copy()


# -- specs -------------------------------------------------------------------------------


def _registry() -> dict[str, type[BasePolicy]]:
    from lumenrec.explore._linear import LinearThompson, LinUCB

    return {
        "greedy": Greedy,
        "random": RandomPolicy,
        "epsilon-greedy": EpsilonGreedy,
        "softmax": Softmax,
        "thompson": Thompson,
        "ucb": UCB,
        "linucb": LinUCB,
        "lin-ts": LinearThompson,
    }


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip().strip("'\"")


def _parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    text = spec.strip()
    name, _, rest = text.partition("(")
    name = name.strip().lower().replace("_", "-")
    params: dict[str, Any] = {}
    if rest:
        if not rest.endswith(")"):
            msg = f"policy spec {spec!r} is missing its closing ')'"
            raise ConfigError(msg)
        for part in filter(None, (p.strip() for p in rest[:-1].split(","))):
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                msg = f"policy parameter {part!r} in {spec!r} must be name=value"
                raise ConfigError(msg)
            params[key.strip()] = _parse_value(value)
    return name, params


def make_policy(spec: str | Mapping[str, Any]) -> BasePolicy:
    """Build a policy from ``"name(param=value,...)"`` or ``{"name": ..., "params": {...}}``.

    Parameters
    ----------
    spec : str or Mapping
        A string such as ``"epsilon-greedy(epsilon=0.1,decay=0.01)"``, or a mapping with
        ``"name"`` and either ``"params"`` or the parameters inline.

    Raises
    ------
    ConfigError
        Unknown name (valid names listed), unknown parameter (valid ones listed) or a bad value.
    """
    if isinstance(spec, str):
        name, params = _parse_spec(spec)
    elif isinstance(spec, Mapping):
        raw = dict(spec)
        name = str(raw.pop("name", "")).strip().lower().replace("_", "-")
        params = dict(raw.pop("params", {}) or {})
        params.update(raw)
    else:
        msg = f"policy spec must be a string or a mapping (got {type(spec).__name__})"
        raise ConfigError(msg)
    registry = _registry()
    if name not in registry:
        msg = f"unknown policy {name!r}; valid names: {list(POLICY_NAMES)}"
        raise ConfigError(msg)
    cls = registry[name]
    valid = _init_params(cls)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        msg = f"unknown parameter(s) {unknown} for policy {name!r}; valid: {valid}"
        raise ConfigError(msg)
    try:
        return cls(**params)
    except ConfigError as err:
        msg = f"policy {name!r}: {err}"
        raise ConfigError(msg) from None
