"""Off-policy evaluation over the service's own logs.

The service stores, for every explored list, the candidate set the policy chose from (item ids
and the recommender's scores, best first) and each shown item's position and propensity
(:meth:`lumenrec.serving.store.EventStore.impression_log`). Here that log becomes a
:class:`~lumenrec.explore.ope.BanditLog` whose **action is the candidate's rank** in its
request (0 = the recommender's best), so every request shares one small action space, and the
target policy's marginal position propensities over the same candidates give ``action_dist``.

Target policies are evaluated from the logged scores alone: a stateful policy (Thompson,
LinUCB, linear TS) is taken with a fresh state, i.e. its score prior; contextual ones without
the language-model context fall back as their ``position_propensities`` documents.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lumenrec.errors import DataError

__all__ = ["log_from_impressions"]


def log_from_impressions(
    impressions: pd.DataFrame,
    target: str | Any,
    *,
    n_samples: int = 10_000,
    random_state: int = 0,
) -> tuple[Any, NDArray[np.float64]]:
    """A bandit log and the target's action distribution from logged impressions.

    Parameters
    ----------
    impressions : DataFrame
        As :meth:`EventStore.impression_log` returns: ``request_id, item_id, position,
        propensity, reward, candidates`` (JSON list of ``[item_id, score]``), ...
    target : str or Policy
        The policy to evaluate (a spec for :func:`lumenrec.explore.make_policy`).
    n_samples : int
        Monte-Carlo draws for targets without closed-form propensities.
    random_state : int

    Returns
    -------
    log : BanditLog
        ``action`` = the shown item's rank among its request's candidates, ``slate_id`` = the
        request, ``action_context`` = one-hot candidate rank.
    action_dist : ndarray of shape (n_rows, n_actions, n_positions), float64

    Raises
    ------
    DataError
        The log is empty, or a shown item is missing from its request's candidate set.
    """
    from lumenrec.explore import make_policy
    from lumenrec.explore.ope import BanditLog

    if impressions.empty:
        msg = "the store holds no logged impressions: serve with an exploration policy first"
        raise DataError(msg)
    policy = make_policy(target) if isinstance(target, str) else target
    rng = np.random.default_rng(random_state)
    frame = impressions.sort_values(["ts", "request_id", "position"], kind="stable")
    groups = list(frame.groupby("request_id", sort=False))
    n_actions = max(len(json.loads(g["candidates"].iloc[0])) for _, g in groups)
    n_positions = int(frame["position"].max()) + 1
    dist = np.zeros((len(frame), n_actions, n_positions), np.float64)
    actions = np.empty(len(frame), np.int64)
    slate = np.empty(len(frame), np.int64)
    row = 0
    for s, (request_id, group) in enumerate(groups):
        candidates = json.loads(group["candidates"].iloc[0])
        rank = {str(item): j for j, (item, _) in enumerate(candidates)}
        scores = np.asarray([score for _, score in candidates], np.float32)
        k = int(group["position"].max()) + 1
        marg, _, _ = policy.position_propensities(
            np.arange(len(candidates), dtype=np.int32), scores, k, rng=rng, n_samples=n_samples
        )
        for item in group["item_id"]:
            if str(item) not in rank:
                msg = f"request {request_id}: shown item {item!r} is not in its candidate set"
                raise DataError(msg)
        m = len(group)
        actions[row : row + m] = [rank[str(i)] for i in group["item_id"]]
        dist[row : row + m, : len(candidates), :k] = np.asarray(marg)[None, :, :]
        slate[row : row + m] = s
        row += m
    log = BanditLog(
        action=actions,
        position=frame["position"].to_numpy(np.int64),
        reward=frame["reward"].to_numpy(np.float64),
        pscore=frame["propensity"].to_numpy(np.float64),
        n_actions=n_actions,
        n_positions=n_positions,
        action_context=np.eye(n_actions),
        slate_id=slate,
    )
    _fill_unused_positions(dist)
    return log, dist


def _fill_unused_positions(dist: NDArray[np.float64]) -> None:
    """Requests shorter than the longest list have no mass at their missing positions; give
    those (row, position) cells a uniform distribution so every cell sums to 1 (no logged row
    ever sits there, so no estimate uses them)."""
    empty = dist.sum(axis=1) == 0  # (n_rows, n_positions)
    if empty.any():
        rows, cols = np.nonzero(empty)
        dist[rows, :, cols] = 1.0 / dist.shape[1]
