"""Evaluate one model on one split (full ranking, training items masked) and save what it ranked.

:func:`evaluate` fits a model on a :class:`~lumenrec.data.split.Split`, ranks every item for
each user with at least one held-out item, and scores the lists with
:mod:`lumenrec.evaluation.metrics` and :mod:`lumenrec.evaluation.beyond`.
:func:`recommendations_frame` and :func:`save_split` write the lists and the split with external
ids, and :func:`metrics_from_files` recomputes the accuracy metrics from those files alone (an
independent pandas/numpy implementation), so any printed number can be checked by a third party.
Those three (and ``_jsonable``) live in :mod:`lumenrec.evaluation._protocol_files` and are
re-exported here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.evaluation._protocol_files import _jsonable as _jsonable  # re-exported (runner.py)
from lumenrec.evaluation._protocol_files import (
    metrics_from_files,
    recommendations_frame,
    save_split,
)
from lumenrec.evaluation.beyond import (
    catalog_coverage,
    exposure_by_group,
    gini_exposure,
    longtail_share,
    novelty,
    popularity_bias,
    provider_gini,
)
from lumenrec.evaluation.metrics import evaluate_rankings, summarize
from lumenrec.types import IndexArray, Recommendations

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset
    from lumenrec.data.split import Split
    from lumenrec.models.base import Recommender

__all__ = [
    "EvalResult",
    "evaluate",
    "metrics_from_files",
    "popularity_deciles",
    "recommendations_frame",
    "save_split",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` measured for one model on one split.

    Stability: experimental.

    Attributes
    ----------
    per_user : dict of str to ndarray of shape (n_users,), float64
        Accuracy metric per evaluated user, keys like ``"ndcg@10"`` (row ``i`` is ``users[i]``).
    summary : dict
        Means of ``per_user`` over users (NaN skipped) plus ``"n_users"``.
    beyond : dict of str to float
        ``coverage@k``, ``gini@k`` (catalogue-level) and the user means of ``novelty@k``
        and ``popularity_bias@k``.
    users : ndarray of shape (n_users,), int32
        Dense indices of the evaluated users (those with at least one held-out item).
    recommendations : Recommendations
        The top-``max(ks)`` lists that were scored (``recommendations.users == users``).
    fit_time, eval_time : float
        Seconds spent in ``fit`` (0 when ``fit=False``) and in ranking plus scoring.
    k : int
        Main cut-off (beyond-accuracy metrics use it).
    ks : tuple of int
        Cut-offs of the accuracy metrics.
    evaluated_on : {"test", "valid"}
        Which part of the split held the relevant items.
    model : Recommender
        The fitted model (e.g. to explain its lists).
    long_tail : dict of str to list of float
        :func:`popularity_deciles` of the top-``k`` lists: ``popularity_share`` and
        ``exposure_share`` per item-popularity decile, most popular decile first.
    """

    per_user: dict[str, NDArray[np.float64]]
    summary: dict[str, float | int]
    beyond: dict[str, float]
    users: IndexArray
    recommendations: Recommendations
    fit_time: float
    eval_time: float
    k: int
    ks: tuple[int, ...]
    evaluated_on: str = "test"
    beyond_per_user: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    model: Any = field(default=None, repr=False, compare=False)
    long_tail: dict[str, list[float]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_users(self) -> int:
        """Number of users evaluated."""
        return int(self.users.shape[0])

    @property
    def metrics(self) -> dict[str, float]:
        """Accuracy means and beyond-accuracy values in one flat dict (no ``n_users``)."""
        acc = {name: float(v) for name, v in self.summary.items() if name != "n_users"}
        return {**acc, **self.beyond}


def _check_ks(k: int, ks: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    values = [k, *ks]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            msg = f"k and ks must be positive ints (got k={k!r}, ks={tuple(ks)!r})"
            raise ConfigError(msg)
    return int(k), tuple(sorted({int(x) for x in values}))


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Same sparsity pattern with every stored value set to 1 (every held-out event counts)."""
    rel = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    rel.data[:] = 1.0
    return rel


def evaluate(
    model: Recommender,
    split: Split,
    *,
    k: int = 10,
    ks: Sequence[int] = (5, 10, 20),
    fit: bool = True,
    use_valid: bool = False,
    candidates: ArrayLike | str | None = None,
) -> EvalResult:
    """Fit ``model`` on a split and score its full-ranking top-k lists.

    Every event of the held-out part counts as relevant (binary relevance). Users with no
    held-out event are not evaluated. Each user's training items are masked from the ranking
    (``filter_seen=True`` on the fitted matrix); all other items of the catalogue compete.

    Parameters
    ----------
    model : Recommender
        An unfitted model (or a fitted one with ``fit=False``).
    split : Split
        From :func:`lumenrec.data.split.protocol_split`.
    k : int, default 10
        Main cut-off; used for the beyond-accuracy metrics and always included in ``ks``.
    ks : sequence of int, default (5, 10, 20)
        Cut-offs of the accuracy metrics; the lists are ``max(ks)`` long.
    fit : bool, default True
        Fit ``model`` first. With False it must already be fitted on the matching training
        part (``split.train_full``, or ``split.train`` when ``use_valid``).
    use_valid : bool, default False
        Tuning mode: fit on ``split.train`` and evaluate on ``split.valid``. Otherwise fit on
        ``split.train_full`` (train ∪ valid) and evaluate on ``split.test``.

    Returns
    -------
    EvalResult

    Raises
    ------
    ConfigError
        Invalid ``k``/``ks``, or ``use_valid`` on a split without a validation part.
    DataError
        The held-out part is empty or does not match the model's catalogue.
    """
    k, all_ks = _check_ks(k, ks)
    if use_valid:
        if split.valid is None:
            msg = f"use_valid=True but protocol {split.protocol!r} has no validation part"
            raise ConfigError(msg)
        train, held_out, part = split.train, split.valid, "valid"
    else:
        train, held_out, part = split.train_full, split.test, "test"
    fit_time = 0.0
    if fit:
        start = time.perf_counter()
        model.fit(train)
        fit_time = time.perf_counter() - start
    n_items = int(getattr(model, "n_items_", held_out.n_items))
    if held_out.n_items != n_items or train.n_items != n_items:
        msg = (
            f"the model knows {n_items} items but the split has {train.n_items} (train) and "
            f"{held_out.n_items} ({part}); fit it on this split's training part"
        )
        raise DataError(msg)
    start = time.perf_counter()
    relevant = _binary(held_out.matrix)
    users = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int32)
    if users.size == 0:
        msg = f"the {part} part of the split has no events; nothing to evaluate"
        raise DataError(msg)
    cand = _candidates(candidates, split, n_items)
    recs = model.recommend(users, k=max(all_ks), filter_seen=True, candidates=cand)
    per_user = evaluate_rankings(recs.items, relevant[users], ks=all_ks)
    summary = summarize(per_user)
    train_matrix = train.matrix
    popularity = np.bincount(train_matrix.indices, minlength=n_items).astype(np.float64)
    n_train_users = max(int((np.diff(train_matrix.indptr) > 0).sum()), 1)
    beyond_per_user = {
        f"novelty@{k}": novelty(recs.items, popularity, k, n_users=n_train_users),
        f"popularity_bias@{k}": popularity_bias(recs.items, popularity, k),
    }
    beyond = {
        f"coverage@{k}": catalog_coverage(recs.items, n_items, k),
        f"gini@{k}": gini_exposure(recs.items, n_items, k),
        f"longtail_share@{k}": longtail_share(recs.items, popularity, k),
        **{name: _nanmean(values) for name, values in beyond_per_user.items()},
    }
    providers = _providers(train, n_items)
    if providers is not None:
        beyond[f"provider_gini@{k}"] = provider_gini(recs.items, providers, k)
    long_tail = popularity_deciles(recs.items, popularity, k)
    eval_time = time.perf_counter() - start
    name, ndcg = type(model).__name__, summary.get(f"ndcg@{k}", math.nan)
    msg = "evaluated %s on %d %s users: ndcg@%d=%.4f (fit %.2fs, eval %.2fs)"
    log.info(msg, name, users.size, part, k, ndcg, fit_time, eval_time)
    return EvalResult(
        per_user=per_user,
        summary=summary,
        beyond=beyond,
        users=users,
        recommendations=recs,
        fit_time=fit_time,
        eval_time=eval_time,
        k=k,
        ks=all_ks,
        evaluated_on=part,
        beyond_per_user=beyond_per_user,
        model=model,
        long_tail=long_tail,
    )


def popularity_deciles(
    ranked: ArrayLike, popularity: ArrayLike, k: int, n_bins: int = 10
) -> dict[str, list[float]]:
    """Training popularity vs top-k exposure per item-popularity decile (the long-tail plot).

    Items are sorted by training popularity (most popular first, ties by lower index) and cut
    into ``n_bins`` groups of (nearly) equal item count.

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Recommended item indices in rank order (-1 = padding).
    popularity : ndarray of shape (n_items,)
        Training interactions per item.
    k : int
        Cut-off of the lists.
    n_bins : int, default 10
        Number of popularity groups.

    Returns
    -------
    dict
        ``popularity_share`` (share of training interactions) and ``exposure_share`` (share
        of top-k slots) per group, each a list of ``n_bins`` floats summing to 1.
    """
    pop = np.asarray(popularity, dtype=np.float64)
    n_items = int(pop.size)
    bins = np.empty(n_items, dtype=np.int64)
    bins[np.argsort(-pop, kind="stable")] = np.arange(n_items, dtype=np.int64) * n_bins // n_items
    exposure = exposure_by_group(ranked, bins, k, n_groups=n_bins)
    total = pop.sum()
    pop_share = np.bincount(bins, weights=pop, minlength=n_bins) / (total if total > 0 else 1.0)
    return {
        "popularity_share": [round(float(v), 6) for v in pop_share],
        "exposure_share": [round(float(v), 6) if np.isfinite(v) else 0.0 for v in exposure],
    }


def _candidates(
    candidates: ArrayLike | str | None, split: Split, n_items: int
) -> IndexArray | None:
    """Resolve ``evaluate(candidates=...)``: None, item indices, or a ``split.extras`` key."""
    if candidates is None:
        return None
    value: Any = candidates
    if isinstance(candidates, str):
        extras = dict(split.extras or {})
        if candidates not in extras:
            msg = (
                f"candidates={candidates!r} is not in the split's extras "
                f"(protocol {split.protocol!r} has {sorted(extras)})"
            )
            raise ConfigError(msg)
        value = extras[candidates]
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
        msg = f"candidates must be a non-empty 1-D array of item indices (got shape {arr.shape})"
        raise ConfigError(msg)
    if arr.min() < 0 or arr.max() >= n_items:
        msg = f"candidates must lie in [0, {n_items}) (got {arr.min()}..{arr.max()})"
        raise DataError(msg)
    return np.unique(arr).astype(np.int32)


def _providers(train: Dataset, n_items: int) -> NDArray[np.int64] | None:
    """Provider (brand) code per item from the catalogue's ``brand``/``provider`` column."""
    import pandas as pd

    catalog = getattr(train, "catalog", None)
    column = next((c for c in ("brand", "provider") if catalog is not None and c in catalog), None)
    if column is None or len(catalog) != n_items:
        return None
    names = catalog[column].astype("string").str.strip()
    known = names.notna() & ~names.str.lower().isin(["", "unknown", "nan", "none", "n/a"])
    codes = np.full(n_items, -1, np.int64)
    if known.any():
        codes[known.to_numpy()] = pd.factorize(names[known])[0]
    return codes


def _nanmean(values: NDArray[np.float64]) -> float:
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else math.nan
