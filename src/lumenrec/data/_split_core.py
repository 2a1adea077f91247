"""Split results and the checks and filters the protocols share (see :mod:`lumenrec.data.split`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lumenrec.data.dataset import Dataset
from lumenrec.data.vocab import IdIndex
from lumenrec.errors import ConfigError, DataError

__all__ = ["Split", "check_no_overlap", "compact", "filter_kcore", "recbole_split_counts"]

log = logging.getLogger(__name__)
Positions = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Split:
    """A train / (valid) / test split of one dataset.

    Attributes
    ----------
    train, test : Dataset
        Share the vocabularies (same ``users`` / ``items``), so indices align.
    valid : Dataset or None
        Tuning split; tune on (train → valid), then refit on :attr:`train_full` → test.
    protocol : str
        ``"p1"``, ``"p2"``, ... or ``"custom"``.
    seed : int or None
        The seed that produced it (None for deterministic protocols).
    description : str
        One paragraph stating the exact rules, for reports.
    extras : dict
        Protocol outputs, e.g. ``cold_items`` (int32 array) for P3.
    source : Dataset or None
        The (processed) dataset whose events the parts are taken from.
    positions : dict of str to ndarray of int64, or None
        Event positions in ``source`` of ``"train"``, ``"valid"``, ``"test"``.
    """

    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    protocol: str = "custom"
    seed: int | None = None
    description: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    source: Dataset | None = field(default=None, repr=False)
    positions: dict[str, Positions] | None = field(default=None, repr=False)

    @property
    def train_full(self) -> Dataset:
        """Train ∪ valid events (for the final fit before test), in source event order."""
        if self.valid is None:
            return self.train
        name = f"{self.train.name.rsplit('-', 1)[0]}-train_full"
        if self.source is not None and self.positions is not None:
            pos = np.sort(np.concatenate([self.positions["train"], self.positions["valid"]]))
            return self.source.subset(pos, name=name)
        return _concat(self.train, self.valid, name)

    def check_no_overlap(self) -> None:
        """Raise DataError on leakage: valid pairs in train, or test pairs in train_full.

        See :func:`check_no_overlap`; the message counts the pairs and shows examples.
        """
        if self.valid is not None:
            check_no_overlap(self.train, self.valid, names=("train", "valid"))
        check_no_overlap(self.train_full, self.test, names=("train_full", "test"))

    def sizes(self) -> dict[str, int]:
        """Event and user counts per part (for logs and reports)."""
        out = {"train": self.train.n_events, "test": self.test.n_events}
        if self.valid is not None:
            out["valid"] = self.valid.n_events
        out["test_users"] = int(np.unique(self.test.user_idx).size)
        return out


# -- checks and vocabulary helpers -----------------------------------------------------------
def check_no_overlap(
    train: Dataset, test: Dataset, *, names: tuple[str, str] = ("train", "test")
) -> None:
    """Raise DataError if any (user, item) pair occurs in both ``train`` and ``test``.

    Pairs are compared by external ids, so the two datasets need not share vocabularies.
    Sequential data with repeat consumption (Yelp) legitimately has test targets in the
    history; see :func:`split_p2` for how the protocol treats them.
    """
    if train.users == test.users and train.items == test.items:
        n_items = max(train.n_items, 1)
        a = train.user_idx.astype(np.int64) * n_items + train.item_idx
        b = test.user_idx.astype(np.int64) * n_items + test.item_idx
        common = np.intersect1d(a, b)
        pairs = [(train.users.ids[k // n_items], train.items.ids[k % n_items]) for k in common[:3]]
    else:
        left = set(
            zip(train.users.ids[train.user_idx], train.items.ids[train.item_idx], strict=True)
        )
        right = zip(test.users.ids[test.user_idx], test.items.ids[test.item_idx], strict=True)
        common = sorted({p for p in right if p in left})
        pairs = list(common[:3])
    if len(common):
        msg = (
            f"{len(common)} (user, item) pair(s) occur in both {names[0]} and {names[1]}, "
            f"e.g. {pairs}; drop duplicates before splitting (or, for sequential data with "
            "repeat consumption, expect it: those targets are masked as history)"
        )
        raise DataError(msg)


def compact(data: Dataset, name: str | None = None) -> Dataset:
    """Drop users/items without events; indices re-assigned in the old vocabulary order.

    ``catalog`` and ``user_attributes`` are subset to match.
    """
    users = np.unique(data.user_idx)
    items = np.unique(data.item_idx)
    u_map = np.full(data.n_users, -1, np.int32)
    u_map[users] = np.arange(users.size, dtype=np.int32)
    i_map = np.full(data.n_items, -1, np.int32)
    i_map[items] = np.arange(items.size, dtype=np.int32)
    return Dataset(
        IdIndex(data.users.ids[users], name=data.users.name),
        IdIndex(data.items.ids[items], name=data.items.name),
        u_map[data.user_idx],
        i_map[data.item_idx],
        data.ratings,
        data.timestamps,
        catalog=None if data.catalog is None else data.catalog.iloc[items],
        user_attributes=None if data.user_attributes is None else data.user_attributes.iloc[users],
        name=data.name if name is None else name,
    )


def filter_kcore(data: Dataset, min_user: int = 10, min_item: int = 10) -> Dataset:
    """Iterative k-core: drop users with < ``min_user`` and items with < ``min_item`` events
    until stable (RecBole ``user/item_inter_num_interval="[k,inf)"``), then :func:`compact`.

    Each round bans users and items from the same counts, as RecBole's
    ``_filter_by_inter_num`` does; the fixed point (the k-core) does not depend on order.
    """
    alive = np.ones(data.n_events, dtype=bool)
    while True:
        u_cnt = np.bincount(data.user_idx[alive], minlength=data.n_users)
        i_cnt = np.bincount(data.item_idx[alive], minlength=data.n_items)
        bad = alive & ((u_cnt[data.user_idx] < min_user) | (i_cnt[data.item_idx] < min_item))
        if not bad.any():
            break
        alive &= ~bad
    if not alive.any():
        msg = f"no events survive a ({min_user}, {min_item})-core filter of {data!r}"
        raise DataError(msg)
    return compact(data.subset(alive))


def recbole_split_counts(tot: NDArray[np.integer], ratios: Sequence[float]) -> NDArray[np.int64]:
    """Per-group part sizes exactly as RecBole's ``Dataset._calcu_split_ids``.

    ``cnt[i] = int(ratio_i · tot)`` for the later parts, the first part takes the rest; then,
    for i = 1.. (from the last part backwards) while the first part has > 1 event, a part
    whose ``ratio·tot`` lies in (0, 1) gets one event from the first part.

    Returns
    -------
    ndarray of shape (n_groups, len(ratios)), int64
    """
    tot = np.asarray(tot, dtype=np.int64)
    total = sum(ratios)
    ratios = [r / total for r in ratios]
    cnt = np.stack([np.floor(r * tot.astype(np.float64)) for r in ratios], axis=1).astype(np.int64)
    cnt[:, 0] = tot - cnt[:, 1:].sum(axis=1)
    active = np.ones(tot.shape, dtype=bool)
    for i in range(1, len(ratios)):
        active &= cnt[:, 0] > 1
        x = ratios[-i] * tot.astype(np.float64)
        bump = active & (x > 0) & (x < 1)
        cnt[bump, -i] += 1
        cnt[bump, 0] -= 1
    return cnt


# -- internals -------------------------------------------------------------------------------
def _make(
    base: Dataset, pos: dict[str, Positions], protocol: str, seed: int | None, desc: str,
    extras: dict[str, Any],
) -> Split:  # fmt: skip
    parts = {k: base.subset(v, name=f"{base.name}/{protocol}-{k}") for k, v in pos.items()}
    log.info("%s split of %s: %s", protocol, base.name, {k: len(v) for k, v in pos.items()})
    return Split(
        parts["train"], parts["test"], parts.get("valid"), protocol, seed, desc, extras, base, pos
    )


def _check_fraction(value: float, name: str) -> None:
    if not (isinstance(value, int | float) and 0 < value < 1 and math.isfinite(value)):
        msg = f"{name} must lie in (0, 1) (got {value!r})"
        raise ConfigError(msg)


def _concat(a: Dataset, b: Dataset, name: str) -> Dataset:
    if a.users != b.users or a.items != b.items:
        msg = "train and valid must share vocabularies to be merged"
        raise DataError(msg)

    def cat(x: NDArray | None, y: NDArray | None) -> NDArray | None:
        return None if x is None or y is None else np.concatenate([x, y])

    return Dataset(
        a.users, a.items, np.concatenate([a.user_idx, b.user_idx]),
        np.concatenate([a.item_idx, b.item_idx]), cat(a.ratings, b.ratings),
        cat(a.timestamps, b.timestamps), catalog=a.catalog, user_attributes=a.user_attributes,
        name=name,
    )  # fmt: skip
