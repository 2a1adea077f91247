"""Simulation and replay for exploration policies.

- :func:`replay`: the replay evaluator of Li et al. (WSDM 2011) — an unbiased online estimate
  of a policy's per-event reward from a log collected by a *uniformly random* policy.
- :func:`run_bernoulli_bandit`: a stationary Bernoulli bandit with a known best arm.
- :class:`NewItemsEnvironment` (:func:`make_new_items_environment`): a seeded semi-synthetic
  environment from real ratings in which new items with text arrive over time,
  :func:`run_environment`, which runs any policy in it for ``T`` rounds, and
  :func:`known_item_feedback` / :func:`warm_start_policy`, which give a policy the feedback on
  *known* items a deployed system already has before the new items arrive (defined in
  ``_sim_env``).

All randomness comes from the generators passed in. See ``docs/exploration.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import DataError
from lumenrec.explore._base import BasePolicy, PolicyContext
from lumenrec.explore._sim_env import (
    KnownItemFeedback,
    NewItemsEnvironment,
    _slate,
    known_item_feedback,
    make_new_items_environment,
    run_environment,
    warm_start_policy,
)

__all__ = [
    "KnownItemFeedback",
    "NewItemsEnvironment",
    "ReplayResult",
    "known_item_feedback",
    "loglog_slope",
    "make_new_items_environment",
    "replay",
    "run_bernoulli_bandit",
    "run_environment",
    "warm_start_policy",
]

# -- replay ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayResult:
    """Replay estimate. ``value`` = mean reward over matched events (NaN if none matched);
    ``curve`` = running value after each matched event, shape ``(n_matched,)``."""

    value: float
    standard_error: float
    n_matched: int
    n_events: int
    curve: NDArray[np.float64]


def replay(
    policy: BasePolicy,
    actions: NDArray[np.integer],
    rewards: NDArray[np.floating],
    *,
    candidates: NDArray[np.integer] | Sequence[NDArray[np.integer]],
    positions: NDArray[np.integer] | None = None,
    propensities: NDArray[np.floating] | None = None,
    scores: Sequence[NDArray[np.floating]] | NDArray[np.floating] | None = None,
    contexts: Sequence[PolicyContext | None] | None = None,
    rng: np.random.Generator,
    learn: bool = True,
) -> ReplayResult:
    """Replay evaluation (Li, Chu, Langford & Wang, WSDM 2011) of ``policy`` on a random log.

    Events are taken in log order; for each, the policy builds a slate of length
    ``position + 1`` from that event's candidates. If its item at the logged position equals
    the logged action the event is *matched*: its reward counts and (``learn=True``) the policy
    is updated with it; otherwise it is skipped. Unbiased when the logging policy chose the
    action uniformly among the candidates (independently of the history); about
    ``n_events / n_candidates`` events match.

    Parameters
    ----------
    policy : Policy
    actions : ndarray of shape (n_events,), int
        Logged item (dense index) per event.
    rewards : ndarray of shape (n_events,), float
    candidates : ndarray of shape (n_candidates,) or sequence of such arrays
        One candidate set shared by every event (e.g. Open Bandit's 80 items), or one per
        event. Each logged action must be among its event's candidates.
    positions : ndarray of shape (n_events,), int, optional
        Logged 0-based slot (OBD-style single-slot rows); default 0.
    propensities : ndarray of shape (n_events,), optional
        When given, checked to equal ``1 / n_candidates`` (the uniform logging the estimator
        requires); anything else raises :class:`DataError`.
    scores : ndarray of shape (n_candidates,) or one array per event, optional
        Recommender scores handed to the policy (default zeros).
    contexts : sequence of PolicyContext, optional
        One per event (contextual policies); ``item_vectors`` must align with the candidates.
    rng : numpy.random.Generator
    learn : bool
        Update the policy on matched events (online replay, as in the paper).

    Returns
    -------
    ReplayResult
    """
    actions = np.asarray(actions)
    rewards = np.asarray(rewards, dtype=np.float64)
    n = actions.shape[0]
    if actions.ndim != 1 or rewards.shape != (n,):
        msg = f"actions and rewards must be 1-D of equal length (got {actions.shape}, {rewards.shape})"
        raise DataError(msg)
    pos = np.zeros(n, np.int64) if positions is None else np.asarray(positions, np.int64)
    shared = isinstance(candidates, np.ndarray) and candidates.ndim == 1
    if not shared and len(candidates) != n:
        msg = f"candidates must be one array or one array per event ({n})"
        raise DataError(msg)
    if pos.shape != (n,) or (pos < 0).any():
        msg = "positions must be non-negative, one per event"
        raise DataError(msg)
    if contexts is not None and len(contexts) != n:
        msg = f"contexts must have one entry per event ({n})"
        raise DataError(msg)
    matched = np.zeros(n, dtype=bool)
    for t in range(n):
        cand = np.asarray(candidates if shared else candidates[t], dtype=np.int32)
        if propensities is not None and not np.isclose(propensities[t], 1.0 / cand.size, rtol=1e-6):
            msg = (
                f"replay needs uniformly random logs: event {t} has propensity {propensities[t]:.6g}"
                f" but 1/{cand.size} = {1.0 / cand.size:.6g}; use off-policy estimators instead"
            )
            raise DataError(msg)
        where = np.flatnonzero(cand == actions[t])
        if where.size == 0:
            msg = f"event {t}: logged action {int(actions[t])} is not among its candidates"
            raise DataError(msg)
        if pos[t] >= cand.size:
            continue
        if scores is None:
            sc = np.zeros(cand.size, np.float32)
        else:
            sc = np.asarray(scores if np.ndim(scores) == 1 else scores[t], np.float32)
        ctx = None if contexts is None else contexts[t]
        items = _slate(policy, cand, sc, int(pos[t]) + 1, rng, ctx)
        if items[pos[t]] != actions[t]:
            continue
        matched[t] = True
        if learn:
            vec = None
            if ctx is not None and ctx.item_vectors is not None:
                vec = np.asarray(ctx.item_vectors)[where[0]]
            policy.update(
                int(actions[t]),
                float(rewards[t]),
                position=int(pos[t]),
                context=ctx,
                item_vector=vec,
            )
    r = rewards[matched]
    m = int(r.size)
    curve = np.cumsum(r) / np.arange(1, m + 1) if m else np.zeros(0)
    se = float(r.std(ddof=1) / np.sqrt(m)) if m > 1 else float("nan")
    return ReplayResult(float(r.mean()) if m else float("nan"), se, m, n, curve)


# -- Bernoulli bandit ----------------------------------------------------------------------


def loglog_slope(t: NDArray[np.floating], regret: NDArray[np.floating]) -> float:
    """Least-squares slope of ``log regret`` on ``log t`` over the second half of the rounds
    (1 = linear regret; a log-regret algorithm gives a slope well below 1)."""
    t = np.asarray(t, dtype=np.float64)
    regret = np.asarray(regret, dtype=np.float64)
    keep = (t >= t[-1] / 2) & (regret > 0)
    if keep.sum() < 2:
        return 0.0
    return float(np.polyfit(np.log(t[keep]), np.log(regret[keep]), 1)[0])


def run_bernoulli_bandit(
    policy: BasePolicy, means: NDArray[np.floating], rounds: int, *, rng: np.random.Generator
) -> dict[str, Any]:
    """Run ``policy`` on a ``K``-armed Bernoulli bandit (one slot per round).

    Candidates are the arms ``0..K-1`` with equal (zero) scores, so the recommender's prior
    says nothing; contextual policies get one-hot item vectors (``PolicyContext(item_vectors=
    I_K)``), which makes a linear policy a per-arm one.

    Returns
    -------
    dict
        ``pulls`` (K,), ``best_arm``, ``best_arm_share`` (all rounds), ``best_arm_share_last_half``,
        ``regret`` (cumulative expected regret per round, shape (rounds,)), ``loglog_slope``
        (second half), ``reward`` (total clicks).
    """
    means = np.asarray(means, dtype=np.float64)
    k_arms = means.size
    arms = np.arange(k_arms, dtype=np.int32)
    zeros = np.zeros(k_arms, dtype=np.float32)
    eye = np.eye(k_arms, dtype=np.float32)
    ctx = PolicyContext(item_vectors=eye)
    uniforms = rng.random(rounds)
    pulls = np.zeros(k_arms, dtype=np.int64)
    chosen = np.empty(rounds, dtype=np.int64)
    total = 0.0
    for t in range(rounds):
        a = int(_slate(policy, arms, zeros, 1, rng, ctx)[0])
        r = float(uniforms[t] < means[a])
        policy.update(a, r, position=0, context=ctx, item_vector=eye[a])
        pulls[a] += 1
        chosen[t] = a
        total += r
    regret = np.cumsum(means.max() - means[chosen])
    best = int(means.argmax())
    t_axis = np.arange(1, rounds + 1)
    return {
        "pulls": pulls.tolist(),
        "best_arm": best,
        "best_arm_share": float(pulls[best] / rounds),
        "best_arm_share_last_half": float((chosen[rounds // 2 :] == best).mean()),
        "regret": regret,
        "loglog_slope": loglog_slope(t_axis, regret),
        "reward": total,
    }
