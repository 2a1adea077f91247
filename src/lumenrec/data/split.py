"""Seeded, exact train/valid/test protocols (P1–P4 of the benchmark plan) and leakage checks.

Every protocol returns a :class:`Split` whose parts share one vocabulary (P4: the compact
vocabulary of the filtered data), so indices line up between train, valid and test.

- **P1** (:func:`split_p1`): Microsoft Recommenders ``python_stratified_split``, exactly:
  ``np.random.seed(seed); r = np.random.rand(n)`` over the events in input order, sort by
  (group, r), rank = (position + 1) / group size, train = rank ≤ ratio. So a group of n
  keeps ``floor(0.75·n)`` events in train (up to float rounding, reproduced as MS computes
  it); a group of 1 goes to test. ``min_rating=1``: no group is dropped.
- **P2** (:func:`split_p2`): leave-one-out per user in event (or time) order; RecBole's
  rule for short histories (at least one event stays in train; test before valid).
- **P3** (:func:`split_p3`, :func:`split_p3_users`): cold items / cold users on top of P2.
- **P4** (:func:`split_p4`): RecBole "general" ML-1M: rating ≥ 3, iterative 10-core,
  global shuffle, per-user 80/10/10 with RecBole's ``_calcu_split_ids`` counts.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from lumenrec.data._protocols import (
    split_p1,
    split_p1_validation,
    split_p2,
    split_p3,
    split_p3_users,
    split_p4,
)
from lumenrec.data._split_core import (
    Split,
    _check_fraction,
    _make,
    check_no_overlap,
    compact,
    filter_kcore,
    recbole_split_counts,
)
from lumenrec.data.dataset import Dataset
from lumenrec.errors import ConfigError, DataError

__all__ = [
    "PROTOCOLS",
    "Split",
    "check_no_overlap",
    "compact",
    "filter_kcore",
    "protocol_split",
    "recbole_split_counts",
    "split_p1",
    "split_p1_validation",
    "split_p2",
    "split_p3",
    "split_p3_users",
    "split_p4",
    "temporal_split",
]

log = logging.getLogger(__name__)


def temporal_split(data: Dataset, test_fraction: float = 0.2) -> Split:
    """Global time split: events at or after the cutoff time are test.

    The cutoff is the timestamp of the event at position ``n − round(test_fraction·n)`` in
    time order; all events sharing that timestamp go to test, so no second is split across
    train and test. Ratings are kept. Test may contain users/items unseen in train.
    """
    if data.timestamps is None:
        msg = f"temporal_split needs timestamps, but {data.name!r} has none"
        raise DataError(msg)
    _check_fraction(test_fraction, "test_fraction")
    n_test = round(test_fraction * data.n_events)
    if n_test == 0 or n_test == data.n_events:
        msg = f"test_fraction {test_fraction} leaves an empty part of {data.n_events} events"
        raise DataError(msg)
    order = np.argsort(data.timestamps, kind="stable")
    cutoff = data.timestamps[order[data.n_events - n_test]]
    test = data.timestamps >= cutoff
    pos = {"train": np.flatnonzero(~test), "test": np.flatnonzero(test)}
    desc = f"temporal: events at or after t={int(cutoff)} ({test_fraction:.0%} by count) -> test"
    return _make(data, pos, "temporal", None, desc, {"cutoff": int(cutoff)})


#: Names accepted by :func:`protocol_split`.
#: ``p1-item`` is the split the Microsoft Recommenders benchmark notebook actually ran for its
#: published ML-100K table (``python_stratified_split(..., filter_by="item")``, seed 42):
#: stratified per *item*, not per user as BENCHMARKS.md describes P1.
PROTOCOLS = ("p1", "p1-item", "p2", "p3", "p3-users", "p4", "temporal")


def protocol_split(data: Dataset, protocol: str, seed: int | None = 0, **kwargs: Any) -> Split:
    """Dispatch to a protocol by name (case-insensitive): one of :data:`PROTOCOLS`.

    ``kwargs`` go to the protocol function.
    """
    key = protocol.strip().lower()
    if key == "p1":
        return split_p1(data, seed, **kwargs)
    if key == "p1-item":
        return split_p1(data, seed, stratify="item", **kwargs)
    if key == "p2":
        return split_p2(data, **kwargs)
    if key == "p3":
        return split_p3(data, seed, **kwargs)
    if key == "p3-users":
        return split_p3_users(data, seed, **kwargs)
    if key == "p4":
        return split_p4(data, seed, **kwargs)
    if key == "temporal":
        return temporal_split(data, **kwargs)
    msg = f"unknown protocol {protocol!r}; valid: {list(PROTOCOLS)}"
    raise ConfigError(msg)
