"""The benchmark protocols P1–P4 (implementation; import them from :mod:`lumenrec.data.split`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from lumenrec.data._split_core import (
    Positions,
    Split,
    _check_fraction,
    _make,
    filter_kcore,
    recbole_split_counts,
)
from lumenrec.data.dataset import Dataset
from lumenrec.errors import ConfigError, DataError

__all__ = [
    "split_p1",
    "split_p1_validation",
    "split_p2",
    "split_p3",
    "split_p3_users",
    "split_p4",
]

log = logging.getLogger(__name__)


# -- P1 --------------------------------------------------------------------------------------
def split_p1(
    data: Dataset,
    seed: int | None = 42,
    *,
    ratio: float = 0.75,
    stratify: Literal["user", "item"] = "user",
    validation: bool = False,
) -> Split:
    """P1: per-user random 75/25 (Microsoft Recommenders ``python_stratified_split``).

    Parameters
    ----------
    data : Dataset
        Events in input order (the random draws follow that order, as in MS).
    seed : int or None
        MS's default is 42.
    ratio : float
        Train share per group.
    stratify : {"user", "item"}
        MS ``filter_by``. The MS benchmark notebook behind the README's ML-100K table calls
        ``python_stratified_split(df, ratio=0.75, min_rating=1, filter_by="item")``; use
        ``"item"`` to reproduce that split itself.
    validation : bool
        Also carve ``valid`` out of train with :func:`split_p1_validation` (same seed);
        then ``train_full`` is the P1 train set.

    Returns
    -------
    Split
        Implicit feedback (ratings dropped: every rating is a positive). Repeated
        (user, item) events are first reduced to the last one (ML-100K has none).
    """
    if not 0 < ratio < 1:
        msg = f"ratio must lie in (0, 1) (got {ratio})"
        raise ConfigError(msg)
    base = _dedupe(data).binarize()
    groups = base.user_idx if stratify == "user" else _check_stratify(stratify, base)
    train_mask = _ms_stratified(groups, ratio, seed)
    pos = {"train": np.flatnonzero(train_mask), "test": np.flatnonzero(~train_mask)}
    desc = (
        f"P1: per-{stratify} random split, {ratio:.0%} train (MS Recommenders "
        f"python_stratified_split semantics, seed {seed}); all ratings are positives"
    )
    if validation:
        inner = _ms_stratified(groups[pos["train"]], ratio, seed)
        pos["valid"] = pos["train"][~inner]
        pos["train"] = pos["train"][inner]
        desc += f"; valid = the same split applied inside train ({ratio:.0%}/{1 - ratio:.0%})"
    return _make(base, pos, "p1", seed, desc, {})


def split_p1_validation(
    train: Dataset,
    seed: int | None = 42,
    *,
    ratio: float = 0.75,
    stratify: Literal["user", "item"] = "user",
) -> Split:
    """The P1 split applied inside a training set: a tuning split (``test`` = holdout).

    Returns
    -------
    Split
        ``protocol="p1-validation"``; ``train``/``test`` are parts of ``train``.
    """
    inner = split_p1(train, seed, ratio=ratio, stratify=stratify)
    return Split(
        inner.train, inner.test, None, "p1-validation", seed,
        inner.description.replace("P1:", "P1 validation (inside train):"), {},
        inner.source, inner.positions,
    )  # fmt: skip


# -- P2 / P3 ---------------------------------------------------------------------------------
def split_p2(data: Dataset, *, by_time: bool | None = None) -> Split:
    """P2: leave-one-out per user — last event → test, second-to-last → valid, rest → train.

    Parameters
    ----------
    data : Dataset
    by_time : bool, optional
        Order each user's events by timestamp (ties keep input order). Default: when the
        data has timestamps; otherwise input (file) order, the S3-Rec convention.

    Returns
    -------
    Split
        Implicit feedback; one test event per user with ≥ 2 events. Users with fewer
        than 3 events follow RecBole's leave-one-out: one event → train only; two → train
        + test, no valid. ``extras["history_repeats"]`` counts test targets that already
        occur in the user's history (repeat consumption, e.g. Yelp: 2,027). As in S3-Rec's
        full-ranking evaluation, the history (train_full) is masked when ranking, so such
        targets count as misses; they are kept, not dropped, and
        :meth:`Split.check_no_overlap` reports them.
    """
    base = data.binarize()
    rank, count = _user_ranks(base, by_time)
    from_end = count - 1 - rank
    test = (from_end == 0) & (count >= 2)
    valid = (from_end == 1) & (count >= 3)
    pos = {
        "train": np.flatnonzero(~(test | valid)),
        "valid": np.flatnonzero(valid),
        "test": np.flatnonzero(test),
    }
    order = "time" if _use_time(base, by_time) else "event"
    desc = (
        f"P2: leave-one-out in {order} order per user: last event -> test, second-to-last -> "
        "valid, rest -> train; rank against all items with the user's history masked"
    )
    hist = _in_history(base, pos["test"], np.concatenate([pos["train"], pos["valid"]]))
    extras = {"history_repeats": hist, "by_time": order == "time"}
    return _make(base, pos, "p2", None, desc, extras)


def split_p3(
    data: Dataset, seed: int | None = 0, cold_fraction: float = 0.1, *, by_time: bool | None = None
) -> Split:
    """P3 cold items: P2, with ``round(cold_fraction · n_items)`` items made cold.

    The cold items are drawn with ``np.random.default_rng(seed).choice(n_items, n, replace
    =False)``; every event with a cold item leaves train and valid; test = the P2 test
    events whose target is cold (only those users are evaluated).

    Returns
    -------
    Split
        ``extras["cold_items"]``: sorted int32 item indices; ``extras["n_cold_items"]``.
    """
    _check_fraction(cold_fraction, "cold_fraction")
    p2 = split_p2(data, by_time=by_time)
    base, pos = p2.source, p2.positions
    assert base is not None and pos is not None
    n_cold = round(cold_fraction * base.n_items)
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(base.n_items, size=n_cold, replace=False)).astype(np.int32)
    is_cold = np.zeros(base.n_items, dtype=bool)
    is_cold[cold] = True
    ev = is_cold[base.item_idx]
    new = {k: v[~ev[v]] for k, v in pos.items() if k != "test"}
    new["test"] = pos["test"][ev[pos["test"]]]
    desc = (
        f"P3 cold items: {n_cold} of {base.n_items} items ({cold_fraction:.0%}, seed {seed}) "
        "removed from train and valid; test = P2 targets that are cold items"
    )
    return _make(base, new, "p3", seed, desc, {"cold_items": cold, "n_cold_items": n_cold})


def split_p3_users(
    data: Dataset,
    seed: int | None = 0,
    fraction: float = 0.1,
    keep_first: int = 1,
    *,
    by_time: bool | None = None,
) -> Split:
    """P3 cold users: ``round(fraction · n_users)`` users keep only their first
    ``keep_first`` events in train/valid; test = those users' P2 targets.

    Returns
    -------
    Split
        ``extras["cold_users"]``: sorted int32 user indices; ``extras["keep_first"]``.
    """
    _check_fraction(fraction, "fraction")
    if keep_first < 0:
        msg = f"keep_first must be >= 0 (got {keep_first})"
        raise ConfigError(msg)
    p2 = split_p2(data, by_time=by_time)
    base, pos = p2.source, p2.positions
    assert base is not None and pos is not None
    n_cold = round(fraction * base.n_users)
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(base.n_users, size=n_cold, replace=False)).astype(np.int32)
    is_cold = np.zeros(base.n_users, dtype=bool)
    is_cold[cold] = True
    rank, _ = _user_ranks(base, by_time)
    hidden = is_cold[base.user_idx] & (rank >= keep_first)
    new = {k: v[~hidden[v]] for k, v in pos.items() if k != "test"}
    new["test"] = pos["test"][is_cold[base.user_idx[pos["test"]]]]
    desc = (
        f"P3 cold users: {n_cold} of {base.n_users} users ({fraction:.0%}, seed {seed}) keep "
        f"only their first {keep_first} event(s); test = their P2 targets"
    )
    extras = {"cold_users": cold, "keep_first": keep_first}
    return _make(base, new, "p3-users", seed, desc, extras)


# -- P4 --------------------------------------------------------------------------------------
def split_p4(
    data: Dataset,
    seed: int | None = 0,
    *,
    min_rating: float = 3.0,
    min_user: int = 10,
    min_item: int = 10,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
) -> Split:
    """P4: RecBole's general-recommendation protocol (ML-1M benchmark configuration).

    Keep rating ≥ ``min_rating`` (``val_interval``), iterative (``min_user``, ``min_item``)
    core (:func:`filter_kcore`), compact vocabulary, shuffle all events
    (``np.random.default_rng(seed).permutation``; RecBole's ``order: RO``), then per user
    in shuffled order: the first ``cnt[0]`` → train, next ``cnt[1]`` → valid, rest → test,
    with ``cnt`` from :func:`recbole_split_counts` (RecBole ``split: {RS: [0.8,0.1,0.1]}``,
    ``group_by: user``). Implicit feedback.

    Returns
    -------
    Split
        Parts share the compact vocabulary; ``extras`` holds the filtered sizes.
    """
    if data.ratings is None:
        msg = f"P4 keeps ratings >= {min_rating}, but {data.name!r} has no ratings"
        raise DataError(msg)
    kept = data.subset(data.ratings >= min_rating)
    base = filter_kcore(kept, min_user, min_item).binarize()
    rng = np.random.default_rng(seed)
    perm = rng.permutation(base.n_events)
    grouped = perm[np.argsort(base.user_idx[perm], kind="stable")]
    users = base.user_idx[grouped]
    count = np.bincount(base.user_idx, minlength=base.n_users)
    start = np.cumsum(count) - count
    rank = np.arange(base.n_events) - start[users]
    cnt = recbole_split_counts(count, ratios)
    bounds = np.cumsum(cnt, axis=1)[users]
    part = (rank[:, None] >= bounds[:, :-1]).sum(axis=1)
    pos = {k: np.sort(grouped[part == j]) for j, k in enumerate(("train", "valid", "test"))}
    desc = (
        f"P4 (RecBole general): rating >= {min_rating:g}, ({min_user}, {min_item})-core -> "
        f"{base.n_users} users, {base.n_items} items, {base.n_events} events; shuffled "
        f"(seed {seed}), per-user {'/'.join(f'{r:g}' for r in ratios)} split"
    )
    extras = {"n_users": base.n_users, "n_items": base.n_items, "n_events": base.n_events}
    return _make(base, pos, "p4", seed, desc, extras)


# -- internals -------------------------------------------------------------------------------
def _ms_stratified(groups: NDArray[np.int32], ratio: float, seed: int | None) -> NDArray[np.bool_]:
    """Train mask of MS ``_do_stratification(is_random=True)`` for one split ratio."""
    rand = np.random.RandomState(seed).rand(groups.shape[0])
    order = np.lexsort((rand, groups))
    count = np.bincount(groups)
    sorted_groups = groups[order]
    start = np.cumsum(count) - count
    rank = (np.arange(groups.shape[0]) - start[sorted_groups] + 1) / count[sorted_groups]
    mask = np.empty(groups.shape[0], dtype=bool)
    mask[order] = rank <= ratio
    return mask


def _user_ranks(data: Dataset, by_time: bool | None) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Position of each event within its user's (time-)ordered history, and history length."""
    key = data.timestamps if _use_time(data, by_time) else np.arange(data.n_events)
    order = np.lexsort((np.arange(data.n_events), key, data.user_idx))
    count = np.bincount(data.user_idx, minlength=data.n_users)
    start = np.cumsum(count) - count
    rank = np.empty(data.n_events, dtype=np.int64)
    rank[order] = np.arange(data.n_events) - start[data.user_idx[order]]
    return rank, count[data.user_idx]


def _use_time(data: Dataset, by_time: bool | None) -> bool:
    if by_time and data.timestamps is None:
        msg = f"by_time=True needs timestamps, but {data.name!r} has none"
        raise DataError(msg)
    return data.timestamps is not None if by_time is None else by_time


def _in_history(data: Dataset, targets: Positions, history: Positions) -> int:
    n = max(data.n_items, 1)
    hist = data.user_idx[history].astype(np.int64) * n + data.item_idx[history]
    tgt = data.user_idx[targets].astype(np.int64) * n + data.item_idx[targets]
    return int(np.isin(tgt, hist).sum())


def _dedupe(data: Dataset) -> Dataset:
    key = data.user_idx.astype(np.int64) * max(data.n_items, 1) + data.item_idx
    _, last = np.unique(key[::-1], return_index=True)
    if last.size == data.n_events:
        return data
    log.info(
        "dropping %d repeated (user, item) events (keeping the last)", data.n_events - last.size
    )
    return data.subset(np.sort(data.n_events - 1 - last))


def _check_stratify(stratify: str, base: Dataset) -> NDArray[np.int32]:
    if stratify != "item":
        msg = f"stratify must be 'user' or 'item' (got {stratify!r})"
        raise ConfigError(msg)
    return base.item_idx
