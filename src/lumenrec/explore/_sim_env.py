"""The semi-synthetic new-items environment (re-exported by :mod:`lumenrec.explore.simulate`).

:class:`NewItemsEnvironment` (:func:`make_new_items_environment`) is a seeded world built from
real ratings in which new items with text arrive over time; :func:`run_environment` runs any
policy in it for ``T`` rounds; :func:`known_item_feedback` simulates the feedback about *known*
items a deployed system already has, and :func:`warm_start_policy` hands it to a policy before
the new items arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.explore._base import BasePolicy, PolicyContext, _check_number, examination

__all__ = [
    "KnownItemFeedback",
    "NewItemsEnvironment",
    "known_item_feedback",
    "make_new_items_environment",
    "run_environment",
    "warm_start_policy",
]


def _slate(policy: BasePolicy, cand, scores, k, rng, ctx) -> NDArray[np.int32]:  # type: ignore[no-untyped-def]
    rank = getattr(policy, "rank", None)
    if rank is not None:
        return rank(cand, scores, k, rng=rng, context=ctx)
    return policy.select(cand, scores, k, rng=rng, context=ctx).items


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
    warm_start: KnownItemFeedback | None = None,
    warm_start_weight: float = 1.0,
) -> dict[str, Any]:
    """Run ``policy`` for ``rounds`` rounds in ``env``.

    With ``warm_start`` the policy first gets that feedback on known items
    (:func:`warm_start_policy`, with ``warm_start_weight``) before round 1; it is not counted
    in the returned rewards.

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
    if warm_start is not None:
        warm_start_policy(policy, env, warm_start, weight=warm_start_weight)
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


# -- feedback on known items, for warm starts --------------------------------------------


@dataclass(frozen=True)
class KnownItemFeedback:
    """Simulated impressions of *known* (catalogue) items with their clicks.

    Attributes
    ----------
    users : ndarray of shape (n,), int32
    items : ndarray of shape (n,), int32
        Known items only (``arrival == -1``), never one the user rated.
    positions : ndarray of shape (n,), int64
        0-based slate position of the impression.
    rewards : ndarray of shape (n,), float64
        Clicks (0/1) drawn from the environment's click model ``e_j · p(user, item)``.
    """

    users: NDArray[np.int32]
    items: NDArray[np.int32]
    positions: NDArray[np.int64]
    rewards: NDArray[np.float64]


def known_item_feedback(
    env: NewItemsEnvironment,
    n: int,
    *,
    k: int = 5,
    pool: str = "candidates",
    rng: np.random.Generator,
) -> KnownItemFeedback:
    """``n`` impressions of known items to uniformly random users, clicked by the true model.

    What a deployed system already knows before the new items arrive. Each impression: a
    uniformly random user, a known item drawn uniformly from ``pool`` — ``"candidates"``: the
    user's recommender candidates (``known_top``, what the system would have shown), or
    ``"catalogue"``: any known item the user has not rated — at a uniformly random position
    ``j < k``, clicked with probability ``e_j · p(user, item)``. It says nothing about the new
    items themselves; only a policy whose model transfers across items (through their text)
    can use it for them.

    Parameters
    ----------
    env : NewItemsEnvironment
    n : int
        Number of impressions.
    k : int
        Slate length the positions are drawn from.
    pool : {"candidates", "catalogue"}
    rng : numpy.random.Generator

    Returns
    -------
    KnownItemFeedback
    """
    if pool not in ("candidates", "catalogue"):
        msg = f"pool must be 'candidates' or 'catalogue' (got {pool!r})"
        raise ConfigError(msg)
    if not isinstance(n, int | np.integer) or n < 0 or not isinstance(k, int | np.integer) or k < 1:
        msg = f"n must be a non-negative int and k a positive int (got n={n!r}, k={k!r})"
        raise ConfigError(msg)
    n_users = env.click_prob.shape[0]
    users = rng.integers(n_users, size=n)
    if pool == "candidates":
        items = env.known_top[users, rng.integers(env.known_top.shape[1], size=n)]
    else:
        known = np.flatnonzero(env.arrival < 0)
        items = known[rng.integers(known.size, size=n)]
        bad = np.isnan(env.click_prob[users, items])
        while bad.any():  # redraw rated pairs (every user has unrated known items)
            items[bad] = known[rng.integers(known.size, size=int(bad.sum()))]
            bad = np.isnan(env.click_prob[users, items])
    positions = rng.integers(k, size=n)
    exam = np.array([examination(j) for j in range(k)])
    p = env.click_prob[users, items].astype(np.float64)
    rewards = (rng.random(n) < exam[positions] * p).astype(np.float64)
    return KnownItemFeedback(
        users=users.astype(np.int32),
        items=np.asarray(items, dtype=np.int32),
        positions=positions.astype(np.int64),
        rewards=rewards,
    )


def warm_start_policy(
    policy: BasePolicy,
    env: NewItemsEnvironment,
    feedback: KnownItemFeedback,
    *,
    weight: float = 1.0,
) -> None:
    """Give ``policy`` the known-item ``feedback`` before it starts.

    A policy with a ``warm_start`` method (LinUCB, linear Thompson) fits its shared model on
    the whole batch (``weight`` = how many observations each row counts as). Any other policy
    gets each row through its ``update`` once, in order
    (``weight`` must then be 1): per-item policies (Thompson, UCB1) learn about those known
    items, which cannot help them on new ones.
    """
    w = _check_number("weight", weight, 0.0)
    vectors = env.item_vectors[feedback.items]
    profiles = env.user_vectors[feedback.users]
    warm = getattr(policy, "warm_start", None)
    if warm is not None:
        warm(vectors, profiles, feedback.rewards, positions=feedback.positions, weight=w)
        return
    if w != 1.0:
        msg = f"policy {policy.name!r} has no batch warm_start; it takes weight=1 only (got {w})"
        raise ConfigError(msg)
    for i in range(feedback.items.size):
        policy.update(
            int(feedback.items[i]),
            float(feedback.rewards[i]),
            position=int(feedback.positions[i]),
            context=PolicyContext(user_vector=profiles[i]),
            item_vector=vectors[i],
        )
