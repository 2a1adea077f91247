"""Simulation and replay for exploration policies.

- :func:`replay`: the replay evaluator of Li et al. (WSDM 2011) — an unbiased online estimate
  of a policy's per-event reward from a log collected by a *uniformly random* policy.
- :func:`run_bernoulli_bandit`: a stationary Bernoulli bandit with a known best arm.
- :class:`NewItemsEnvironment` (:func:`make_new_items_environment`): a seeded semi-synthetic
  environment from real ratings in which new items with text arrive over time, and
  :func:`run_environment`, which runs any policy in it for ``T`` rounds.

All randomness comes from the generators passed in. See ``docs/exploration.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.explore._base import BasePolicy, PolicyContext, examination

__all__ = [
    "NewItemsEnvironment",
    "ReplayResult",
    "loglog_slope",
    "make_new_items_environment",
    "replay",
    "run_bernoulli_bandit",
    "run_environment",
]


def _slate(policy: BasePolicy, cand, scores, k, rng, ctx) -> NDArray[np.int32]:  # type: ignore[no-untyped-def]
    rank = getattr(policy, "rank", None)
    if rank is not None:
        return rank(cand, scores, k, rng=rng, context=ctx)
    return policy.select(cand, scores, k, rng=rng, context=ctx).items


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


# -- semi-synthetic environment with arriving new items -----------------------------------


@dataclass(frozen=True)
class NewItemsEnvironment:
    """A recommender world with known truth (see :func:`make_new_items_environment`).

    Attributes
    ----------
    click_prob : ndarray of shape (n_users, n_items), float32
        True probability that an *examined* item is clicked; NaN where the user already
        rated the item (never a candidate).
    known_top : ndarray of shape (n_users, n_candidates), int32
        Each user's top known-catalogue items under the recommender trained without the new
        items (unrated items only), best first.
    known_top_scores : ndarray of shape (n_users, n_candidates), float32
    arrival : ndarray of shape (n_items,), int64
        Round at which an item becomes available; -1 for known-catalogue items.
    item_vectors : ndarray of shape (n_items, d), float32
        Frozen text embeddings (new items' included: their text is known on arrival).
    user_vectors : ndarray of shape (n_users, d), float32
        Unit-normalised mean embedding of each user's rated known items.
    """

    click_prob: NDArray[np.float32]
    known_top: NDArray[np.int32]
    known_top_scores: NDArray[np.float32]
    arrival: NDArray[np.int64]
    item_vectors: NDArray[np.float32]
    user_vectors: NDArray[np.float32]

    @property
    def new_items(self) -> NDArray[np.int64]:
        """Indices of the items that arrive during the run."""
        return np.flatnonzero(self.arrival >= 0)


def _unit(x: NDArray[np.floating]) -> NDArray[np.float32]:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def make_new_items_environment(
    matrix: sp.spmatrix,
    item_vectors: NDArray[np.floating],
    *,
    n_new: int = 60,
    min_ratings: int = 50,
    arrival_rounds: Sequence[int] = (0, 500, 1000, 1500),
    n_candidates: int = 40,
    regularization: float = 800.0,
    click_range: tuple[float, float] = (0.005, 0.95),
    rng: np.random.Generator,
) -> NewItemsEnvironment:
    """Build the semi-synthetic new-items world from a user × item interaction matrix.

    - Truth: EASE fitted on *all* interactions; for an unrated (user, item) its score is a
      ridge reconstruction of the 0/1 interaction matrix, i.e. already on the probability
      scale, so the click probability is the score clipped to ``click_range``.
    - New items: ``n_new`` items drawn (by ``rng``) among those with ``>= min_ratings``
      interactions, split into equal batches arriving at ``arrival_rounds``.
    - Recommender: EASE refitted with the new items' interactions removed; a user's candidate
      pool of known items is its top ``n_candidates`` unrated items by that model.

    Parameters
    ----------
    matrix : scipy.sparse matrix of shape (n_users, n_items)
        Interactions (any positive value counts as one).
    item_vectors : ndarray of shape (n_items, d)
        Text embeddings of every item.
    rng : numpy.random.Generator
    """
    from lumenrec.models.ease import EASE

    x = sp.csr_matrix(matrix, dtype=np.float32)
    x.data[:] = 1.0
    n_users, n_items = x.shape
    vecs = np.asarray(item_vectors, dtype=np.float32)
    if vecs.shape[0] != n_items:
        msg = f"item_vectors has {vecs.shape[0]} rows but the matrix has {n_items} items"
        raise DataError(msg)
    counts = np.asarray(x.getnnz(axis=0))
    pool = np.flatnonzero(counts >= min_ratings)
    if pool.size < n_new:
        msg = f"only {pool.size} items have >= {min_ratings} interactions; need {n_new}"
        raise DataError(msg)
    new = np.sort(rng.choice(pool, size=n_new, replace=False))
    arrival = np.full(n_items, -1, dtype=np.int64)
    for batch, when in zip(np.array_split(new, len(arrival_rounds)), arrival_rounds, strict=True):
        arrival[batch] = int(when)
    users = np.arange(n_users, dtype=np.int32)
    truth = np.asarray(EASE(regularization=regularization).fit(x).score(users), np.float32)
    rated = x.toarray() > 0
    click = np.clip(truth, *click_range).astype(np.float32)
    click[rated] = np.nan
    known_x = x.tolil(copy=True)
    known_x[:, new] = 0
    known_x = sp.csr_matrix(known_x)
    known_x.eliminate_zeros()
    scores = np.asarray(EASE(regularization=regularization).fit(known_x).score(users), np.float64)
    scores[rated] = -np.inf
    scores[:, new] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :n_candidates].astype(np.int32)
    top_scores = np.take_along_axis(scores, top, axis=1).astype(np.float32)
    history = known_x.multiply(1.0 / np.maximum(known_x.sum(axis=1), 1.0)).tocsr()
    return NewItemsEnvironment(
        click_prob=click,
        known_top=top,
        known_top_scores=top_scores,
        arrival=arrival,
        item_vectors=vecs,
        user_vectors=_unit(np.asarray(history @ vecs)),
    )


def run_environment(
    env: NewItemsEnvironment,
    policy: BasePolicy,
    rounds: int,
    *,
    k: int = 5,
    candidates: str = "mixed",
    env_rng: np.random.Generator,
    policy_rng: np.random.Generator,
    n_points: int = 100,
) -> dict[str, Any]:
    """Run ``policy`` for ``rounds`` rounds in ``env``.

    Each round: a uniformly random user; candidates = the user's known top items (recommender
    scores) plus every new item that has arrived and the user has not rated, with a neutral
    score (the median of the known candidates' scores); the policy picks a ``k``-slate; a
    shown item at position ``j`` is clicked with probability ``e_j · p(user, item)``,
    ``e_j = 1 / log2(j + 2)``; the policy is updated with every shown item's reward.
    The oracle shows the candidates with the highest ``p`` in that order.
    ``candidates="new-only"`` is the new-items shelf: the candidates are the arrived new items
    alone (all with the neutral score 0), so every policy spends the same exposure on new
    items and differs only in which ones it shows to whom (rounds before the first arrival,
    or with fewer than ``k`` new items for the user, show what there is).

    ``env_rng`` draws the users and the click noise up front, so two policies run with equally
    seeded ``env_rng`` meet the same users and the same uniforms (common random numbers).

    Returns
    -------
    dict
        Totals (``reward``, ``expected_reward``, ``oracle_reward``, ``regret``,
        ``new_item_reward``, ``new_item_expected_reward``, ``new_item_impressions``) and
        ``curve``: those cumulative series at ``n_points`` evenly spaced rounds (``round``).
    """
    if candidates not in ("mixed", "new-only"):
        msg = f"candidates must be 'mixed' or 'new-only' (got {candidates!r})"
        raise ConfigError(msg)
    n_users = env.click_prob.shape[0]
    users = env_rng.integers(n_users, size=rounds)
    uniforms = env_rng.random((rounds, k))
    exam = np.array([examination(j) for j in range(k)])
    new_items = env.new_items
    series = np.zeros((rounds, 6))  # clicks, expected, oracle, new clicks, new expected, new shown
    for t in range(rounds):
        u = int(users[t])
        arrived = new_items[(env.arrival[new_items] <= t) & ~np.isnan(env.click_prob[u, new_items])]
        if candidates == "new-only":
            if arrived.size == 0:
                continue
            cand = arrived.astype(np.int32)
            scores = np.zeros(cand.size, np.float32)
        else:
            ks = env.known_top_scores[u]
            cand = np.concatenate([env.known_top[u], arrived]).astype(np.int32)
            scores = np.concatenate([ks, np.full(arrived.size, np.median(ks), np.float32)])
        ctx = PolicyContext(user_vector=env.user_vectors[u], item_vectors=env.item_vectors[cand])
        items = _slate(policy, cand, scores, k, policy_rng, ctx)
        kk = items.size
        p = env.click_prob[u, items].astype(np.float64)
        clicks = uniforms[t, :kk] < exam[:kk] * p
        is_new = env.arrival[items] >= 0
        best = np.sort(env.click_prob[u, cand].astype(np.float64))[::-1][:kk]
        series[t] = (
            clicks.sum(),
            exam[:kk] @ p,
            exam[:kk] @ best,
            clicks[is_new].sum(),
            exam[:kk][is_new] @ p[is_new],
            is_new.sum(),
        )
        for j, item in enumerate(items):
            policy.update(
                int(item),
                float(clicks[j]),
                position=j,
                context=ctx,
                item_vector=env.item_vectors[item],
            )
    cum = np.cumsum(series, axis=0)
    idx = np.unique(np.linspace(0, rounds - 1, n_points).round().astype(int))
    names = ("reward", "expected_reward", "oracle_reward", "new_item_reward")
    names += ("new_item_expected_reward", "new_item_impressions")
    out: dict[str, Any] = {name: float(cum[-1, i]) for i, name in enumerate(names)}
    out["regret"] = out["oracle_reward"] - out["expected_reward"]
    curve = {name: cum[idx, i].round(4).tolist() for i, name in enumerate(names)}
    curve["regret"] = (cum[idx, 2] - cum[idx, 1]).round(4).tolist()
    curve["round"] = (idx + 1).tolist()
    out["curve"] = curve
    return out
