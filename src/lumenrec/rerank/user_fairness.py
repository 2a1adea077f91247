"""Label-free user-fairness re-ranking: narrow the advantaged–disadvantaged NDCG gap.

Method (a Lagrangian reading of UGF, Li et al., "User-oriented Fairness in Recommendation",
WWW 2021). UGF picks each user's 10 items out of the top 50 to maximise the summed scores
subject to ``|mean_NDCG(advantaged) − mean_NDCG(disadvantaged)| ≤ ε``, an integer program
that needs the relevance of every candidate. Without labels, model the relevance of the
item at rank ``r`` of a user in group ``g`` by its hit rate ``p_g(r)`` measured on data the
model did not train on but that is not the test set (a tuning hold-out: :func:`rank_gains`).
Under that model the expected NDCG of a list is linear in which ranks it takes, the
constraint is linear and every unit of expected DCG taken from an advantaged user narrows
the gap by ``1/n_adv`` and costs the overall mean ``1/n``: no re-ranking of the
disadvantaged users' own candidates can raise their expected NDCG (their list is already
the top by score), so the Lagrangian optimum demotes advantaged users' lists until the
expected gap meets the target. :func:`user_fair_rerank` does that demotion as a window
offset: an advantaged user with offset ``o`` gets candidates ``o .. o + k − 1`` of their own
ranking (their ``o`` best items drop below the cut); a fractional group offset is rounded
per user, the users with the highest ``priority`` (default: the summed top-k scores, the
best-served) taking the larger offset (water filling). :func:`offset_for_gap` chooses the
offset that removes a given fraction of the expected gap, from the hold-out gains alone.

Consequence worth knowing: with a fraction ``a`` of advantaged users, removing a gap ``Δ``
this way costs about ``a · Δ`` of overall NDCG (e.g. 5% active users: halving a gap of
0.24 costs ~0.006). Test labels are never used.

The only way around that bound is to *raise* the disadvantaged users' NDCG, which the base
ranking already maximises under the hit-rate model. ``user_fair_rerank(prior=...,
prior_weight=...)`` tries it anyway with a second label-free signal: each disadvantaged
user's candidates are re-ordered by ``z(score) + prior_weight · z(prior)`` (per-user
standardised over the finite candidates), the prior being e.g. item popularity or an
ItemKNN score of the same candidates, its weight chosen on the tuning hold-out
(:func:`blend_order` is that re-ordering).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lumenrec.errors import ConfigError, DataError

__all__ = ["RankGains", "blend_order", "offset_for_gap", "rank_gains", "user_fair_rerank"]


@dataclass(frozen=True)
class RankGains:
    """Hit rate by rank for the two user groups (the label-free relevance model).

    Attributes
    ----------
    advantaged, disadvantaged : ndarray of shape (n_candidates,), float64
        ``P(candidate at rank r is relevant)`` per group, ``r = 0 .. n_candidates − 1``.
    """

    advantaged: NDArray[np.float64]
    disadvantaged: NDArray[np.float64]


def _check_inputs(
    items: ArrayLike, advantaged: ArrayLike, k: int
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    cand = np.asarray(items)
    adv = np.asarray(advantaged)
    if cand.ndim != 2 or cand.dtype.kind not in "iu":
        msg = f"items must be a 2-D int array of candidates (got {cand.dtype} {cand.shape})"
        raise DataError(msg)
    if adv.dtype != np.bool_ or adv.shape != (cand.shape[0],):
        msg = f"advantaged must be a bool array of shape ({cand.shape[0]},) (got {adv.shape})"
        raise DataError(msg)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= cand.shape[1]:
        msg = f"k must be an int in [1, {cand.shape[1]}] (the candidate count); got {k!r}"
        raise ConfigError(msg)
    return cand.astype(np.int64), adv


def rank_gains(items: ArrayLike, holdout: Any, advantaged: ArrayLike) -> RankGains:
    """Estimate ``p_g(r)`` from a hold-out that is not the test set (e.g. a tuning part).

    Parameters
    ----------
    items : ndarray of shape (n_users, n_candidates), int
        Each user's candidates in score order, from a model fitted without the hold-out.
    holdout : sparse matrix of shape (n_users, n_items)
        Hold-out interactions of the same users (row ``i`` ↔ ``items[i]``); users without
        any are skipped.
    advantaged : ndarray of shape (n_users,), bool

    Returns
    -------
    RankGains
    """
    from lumenrec.evaluation.metrics import hit_matrix

    cand, adv = _check_inputs(items, advantaged, 1)
    rel = holdout.tocsr()
    hits = hit_matrix(cand, rel).astype(np.float64)
    has = np.diff(rel.indptr) > 0
    out = []
    for mask in (adv & has, ~adv & has):
        if not mask.any():
            msg = "rank_gains needs hold-out events for users of both groups"
            raise DataError(msg)
        out.append(hits[mask].mean(axis=0))
    return RankGains(advantaged=out[0], disadvantaged=out[1])


def _expected_ndcg(gains: NDArray[np.float64], offset: float, k: int) -> float:
    """Expected author-style NDCG (fixed IDCG) of the window at a fractional ``offset``."""
    disc = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    low = int(np.floor(offset))
    frac = offset - low

    def at(o: int) -> float:
        return float(gains[o : o + k] @ disc)

    value = (1 - frac) * at(low) + (frac * at(low + 1) if frac > 0 else 0.0)
    return value / float(disc.sum())


def offset_for_gap(gains: RankGains, k: int, reduction: float) -> float:
    """The mean advantaged-group offset that removes ``reduction`` of the expected gap.

    Parameters
    ----------
    gains : RankGains
        From :func:`rank_gains`.
    k : int
        List length.
    reduction : float
        Fraction of the expected gap to remove (0.5 = halve it), in [0, 1].

    Returns
    -------
    float
        Offset in ``[0, n_candidates − k]`` (the largest available if the target cannot be
        met; 0 when the advantaged group is not ahead).
    """
    if not 0.0 <= float(reduction) <= 1.0:
        msg = f"reduction must lie in [0, 1] (got {reduction!r})"
        raise ConfigError(msg)
    n = gains.advantaged.shape[0]
    if gains.disadvantaged.shape != (n,) or not 1 <= k <= n:
        msg = f"gains must both have the candidate count >= k={k} entries"
        raise ConfigError(msg)
    base_adv = _expected_ndcg(gains.advantaged, 0.0, k)
    gap = base_adv - _expected_ndcg(gains.disadvantaged, 0.0, k)
    if gap <= 0 or reduction == 0:
        return 0.0
    target = base_adv - float(reduction) * gap
    lo, hi = 0.0, float(n - k)
    if _expected_ndcg(gains.advantaged, hi, k) > target:
        return hi
    for _ in range(60):  # the window value is not monotone in general: bisection on a bracket
        mid = 0.5 * (lo + hi)
        if _expected_ndcg(gains.advantaged, mid, k) > target:
            lo = mid
        else:
            hi = mid
    return hi


def _row_z(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-row standardisation over the finite entries; non-finite entries become -inf."""
    finite = np.isfinite(x)
    n = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    filled = np.where(finite, x, 0.0)
    mean = filled.sum(axis=1, keepdims=True) / n
    var = (np.where(finite, x - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / n
    z = (filled - mean) / np.where(var > 0, np.sqrt(var), 1.0)
    return np.where(finite, z, -np.inf)


def blend_order(scores: ArrayLike, prior: ArrayLike, weight: float) -> NDArray[np.int64]:
    """Candidate order (per row) by ``z(scores) + weight · z(prior)``.

    Parameters
    ----------
    scores, prior : ndarray of shape (n_users, n_candidates), float
        Base scores of the candidates and a second label-free signal for the same cells;
        non-finite base scores (padding) sort last.
    weight : float
        Weight of the prior, ``>= 0`` (0 keeps the base order).

    Returns
    -------
    ndarray of shape (n_users, n_candidates), int64
        Column indices, best first (stable: ties keep the base order).
    """
    s = np.asarray(scores, dtype=np.float64)
    q = np.asarray(prior, dtype=np.float64)
    if s.ndim != 2 or q.shape != s.shape:
        msg = f"prior must have the shape of scores {s.shape} (got {q.shape})"
        raise DataError(msg)
    if not np.isfinite(weight) or weight < 0:
        msg = f"prior_weight must be a finite number >= 0 (got {weight!r})"
        raise ConfigError(msg)
    zs = _row_z(s)
    zq = _row_z(np.where(np.isfinite(s), q, np.nan))  # standardised over the real candidates
    zq = np.where(np.isfinite(zq), zq, 0.0)  # a missing prior counts as average
    blended = np.where(np.isfinite(zs), zs + float(weight) * zq, -np.inf)
    return np.argsort(-blended, axis=1, kind="stable")


def user_fair_rerank(
    items: ArrayLike,
    scores: ArrayLike,
    advantaged: ArrayLike,
    k: int = 10,
    *,
    offset: float = 0.0,
    priority: ArrayLike | None = None,
    prior: ArrayLike | None = None,
    prior_weight: float = 0.0,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Re-rank a batch: advantaged users' lists slide down their own ranking by ``offset``.

    Parameters
    ----------
    items : ndarray of shape (n_users, n_candidates), int
        Candidates in descending score order (e.g. a model's top 50; -1 = padding).
    scores : ndarray of shape (n_users, n_candidates), float
        Their scores (only used for the default ``priority`` and returned re-cut).
    advantaged : ndarray of shape (n_users,), bool
        Group membership from training data only (e.g. the top 5% by training activity).
    k : int, default 10
        List length.
    offset : float, default 0
        Mean window offset over the advantaged users, in ``[0, n_candidates − k]``
        (the knob; :func:`offset_for_gap` picks it from a hold-out). Users get
        ``floor(offset)`` or ``floor(offset) + 1`` so that the group mean is ``offset``.
    priority : ndarray of shape (n_users,), optional
        Who takes the larger offset first (highest first); default the summed top-k scores.
    prior : ndarray of shape (n_users, n_candidates), optional
        A label-free second signal for each candidate (popularity, an ItemKNN score, ...).
        With ``prior_weight > 0`` the disadvantaged users' top ``k`` is taken by
        :func:`blend_order` instead of by score.
    prior_weight : float, default 0
        Weight of ``prior`` for the disadvantaged users (chosen on a hold-out).

    Returns
    -------
    items : ndarray of shape (n_users, k), int64
    scores : ndarray of shape (n_users, k), float64
        The base scores of the returned items. Disadvantaged users keep their top ``k``
        unchanged unless a prior is blended in.
    """
    cand, adv = _check_inputs(items, advantaged, k)
    score = np.asarray(scores, dtype=np.float64)
    if score.shape != cand.shape:
        msg = f"scores has shape {score.shape} but items has {cand.shape}"
        raise DataError(msg)
    max_offset = cand.shape[1] - k
    if not 0.0 <= float(offset) <= max_offset:
        msg = f"offset must lie in [0, {max_offset}] for {cand.shape[1]} candidates and k={k}"
        raise ConfigError(msg)
    offsets = np.zeros(cand.shape[0], dtype=np.int64)
    members = np.flatnonzero(adv)
    if members.size and offset > 0:
        low = int(np.floor(offset))
        n_up = int(round((float(offset) - low) * members.size))
        if priority is None:
            finite = np.where(np.isfinite(score[:, :k]), score[:, :k], 0.0)
            prio = finite.sum(axis=1)
        else:
            prio = np.asarray(priority, dtype=np.float64)
            if prio.shape != (cand.shape[0],):
                msg = f"priority must have shape ({cand.shape[0]},) (got {prio.shape})"
                raise DataError(msg)
        order = members[np.argsort(-prio[members], kind="stable")]
        offsets[members] = low
        offsets[order[:n_up]] = min(low + 1, max_offset)
    cols = offsets[:, None] + np.arange(k)[None, :]
    if prior is not None:
        q = np.asarray(prior, dtype=np.float64)
        if q.shape != cand.shape:
            msg = f"prior has shape {q.shape} but items has {cand.shape}"
            raise DataError(msg)
        dis = np.flatnonzero(~adv)
        order = blend_order(score[dis], q[dis], prior_weight)  # also checks the weight
        cols[dis] = order[:, :k]
    rows = np.arange(cand.shape[0])[:, None]
    return cand[rows, cols], score[rows, cols]
