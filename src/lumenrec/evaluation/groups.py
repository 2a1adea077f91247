"""Every metric per user group, with the gap and a significance test; item exposure per group.

User groups come from training activity (:func:`activity_groups`: quantiles, or the top
5% most active vs the rest as in Li et al., WWW 2021) or from user attributes
(:func:`attribute_groups`: MovieLens gender, age band, occupation). :func:`group_metrics`
takes per-user metric values (``EvalResult.per_user``, a dict of arrays or a DataFrame)
and one group label per row and returns a JSON-able dict: per group the mean and the number
of users, the gap (max − min group mean; with two groups also the signed difference) and a
test of "the group means are equal" (Welch's t-test for two groups, Kruskal–Wallis for
more). :func:`item_exposure` reports the share of top-k exposure per item group (popularity
buckets from :func:`popularity_buckets`, or providers) through
:func:`lumenrec.evaluation.beyond.exposure_by_group`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lumenrec.errors import ConfigError, DataError
from lumenrec.evaluation.beyond import exposure_by_group

if TYPE_CHECKING:
    import pandas as pd

    from lumenrec.data.dataset import Dataset
    from lumenrec.evaluation.protocol import EvalResult

__all__ = [
    "AGE_BANDS",
    "GROUP_BY_NAMES",
    "activity_groups",
    "age_band",
    "attribute_groups",
    "group_metrics",
    "group_report",
    "item_exposure",
    "popularity_buckets",
    "significance_test",
    "user_groups",
]

#: Names accepted by :func:`user_groups` (and ``lumenrec evaluate --group-by``).
GROUP_BY_NAMES = ("activity", "active", "gender", "age", "occupation")

#: ML-1M's age bands (lower bound, label); numeric ages (ML-100K) are binned into them.
AGE_BANDS = (
    (0, "Under 18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-49"),
    (50, "50-55"), (56, "56+"),
)  # fmt: skip


def _counts(activity: Dataset | Any) -> NDArray[np.float64]:
    matrix = getattr(activity, "matrix", None)
    if matrix is not None:
        return np.diff(matrix.indptr).astype(np.float64)
    if hasattr(activity, "indptr"):
        return np.diff(activity.tocsr().indptr).astype(np.float64)
    counts = np.asarray(activity, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or not np.isfinite(counts).all():
        msg = f"activity counts must be a non-empty finite 1-D array (got shape {counts.shape})"
        raise DataError(msg)
    return counts


def activity_groups(
    activity: Dataset | ArrayLike,
    *,
    quantiles: int = 4,
    top_fraction: float | None = None,
) -> NDArray[np.object_]:
    """Group users by how many training interactions they have.

    Parameters
    ----------
    activity : Dataset, sparse matrix or array of shape (n_users,)
        The training part (its per-user event counts are used) or the counts themselves.
    quantiles : int, default 4
        Number of activity quantiles (quartiles): group ``"q1"`` holds the least active
        users, ``"q<quantiles>"`` the most active. User ``u`` is in the first group whose
        upper edge ``np.quantile(counts, j / quantiles)`` is ≥ ``counts[u]``, so tied counts
        always share a group (groups may be uneven, or empty and then absent).
    top_fraction : float, optional
        When given (e.g. 0.05), two groups instead: ``"active"`` = the
        ``floor(top_fraction * n_users)`` (at least 1) users with the most interactions
        (ties by lower user index, as a stable sort), ``"inactive"`` = everyone else.

    Returns
    -------
    ndarray of shape (n_users,), object
        A label per user.
    """
    counts = _counts(activity)
    if top_fraction is not None:
        if not 0.0 < float(top_fraction) < 1.0:
            msg = f"top_fraction must lie in (0, 1) (got {top_fraction!r})"
            raise ConfigError(msg)
        n_top = max(int(math.floor(float(top_fraction) * counts.size)), 1)
        order = np.argsort(-counts, kind="stable")
        labels = np.full(counts.size, "inactive", dtype=object)
        labels[order[:n_top]] = "active"
        return labels
    if isinstance(quantiles, bool) or not isinstance(quantiles, int) or quantiles < 2:
        msg = f"quantiles must be an int >= 2 (got {quantiles!r})"
        raise ConfigError(msg)
    edges = np.quantile(counts, np.arange(1, quantiles) / quantiles)
    codes = np.searchsorted(edges, counts, side="left")
    return np.asarray([f"q{c + 1}" for c in codes], dtype=object)


def age_band(age: float | None) -> str | None:
    """The :data:`AGE_BANDS` label of a numeric age (None for a missing age)."""
    if age is None or (isinstance(age, float) and math.isnan(age)):
        return None
    label = AGE_BANDS[0][1]
    for lower, name in AGE_BANDS:
        if age >= lower:
            label = name
    return label


def attribute_groups(data: Dataset, attribute: str) -> NDArray[np.object_]:
    """Group users by a column of ``data.user_attributes`` (numeric ages become bands).

    Parameters
    ----------
    data : Dataset
        Any part of a split (parts share the user vocabulary and attributes).
    attribute : str
        Column name, e.g. ``"gender"``, ``"age"``, ``"occupation"``.

    Returns
    -------
    ndarray of shape (n_users,), object
        The attribute value per user as a string; None where it is missing.

    Raises
    ------
    ConfigError
        The dataset has no user attributes or no such column.
    """
    table = data.user_attributes
    if table is None or attribute not in table.columns:
        have = [] if table is None else [str(c) for c in table.columns]
        msg = (
            f"--group-by {attribute}: dataset {data.name!r} has no user attribute "
            f"{attribute!r} (it has {have or 'none'}); use ml-100k or ml-1m, or drop "
            f"{attribute!r} from --group-by"
        )
        raise ConfigError(msg)
    import pandas as pd

    column = table[attribute]
    if len(column) != data.n_users:
        msg = f"user_attributes has {len(column)} rows but the dataset has {data.n_users} users"
        raise DataError(msg)
    numeric = attribute == "age" and pd.api.types.is_numeric_dtype(column)
    out = np.full(len(column), None, dtype=object)
    for i, value in enumerate(column.to_numpy(dtype=object)):
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            continue
        out[i] = age_band(float(value)) if numeric else str(value)
    return out


def user_groups(
    name: str, data: Dataset, *, train: Dataset | None = None, top_fraction: float = 0.05
) -> NDArray[np.object_]:
    """Labels for one :data:`GROUP_BY_NAMES` entry.

    ``"activity"``: training-activity quartiles; ``"active"``: the ``top_fraction`` most
    active users vs the rest; ``"gender"``, ``"age"``, ``"occupation"``: user attributes.

    Parameters
    ----------
    name : str
    data : Dataset
        Carries the user attributes and vocabulary.
    train : Dataset, optional
        Where activity is counted (default ``data``); never the test part.
    top_fraction : float, default 0.05

    Returns
    -------
    ndarray of shape (n_users,), object
    """
    key = name.strip().lower()
    if key not in GROUP_BY_NAMES:
        msg = f"unknown group {name!r} in --group-by; valid: {', '.join(GROUP_BY_NAMES)}"
        raise ConfigError(msg)
    source = data if train is None else train
    if key == "activity":
        return activity_groups(source)
    if key == "active":
        return activity_groups(source, top_fraction=top_fraction)
    return attribute_groups(data, key)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def significance_test(samples: Sequence[ArrayLike], method: str = "auto") -> dict[str, Any]:
    """Test whether the groups' means (or distributions) are equal.

    Parameters
    ----------
    samples : sequence of array-like
        One 1-D sample per group (NaN dropped); groups with fewer than 2 values are left out.
    method : {"auto", "welch", "kruskal", "anova"}, default "auto"
        ``auto`` = ``welch`` (:func:`scipy.stats.ttest_ind`, ``equal_var=False``) for two
        groups, ``kruskal`` (:func:`scipy.stats.kruskal`, rank-based: per-user NDCG is far
        from normal) for more. ``anova`` is :func:`scipy.stats.f_oneway`.

    Returns
    -------
    dict
        ``test`` (the method used), ``statistic`` and ``p_value`` (None when undefined:
        fewer than two usable groups, or no variance at all).
    """
    from scipy import stats

    groups = [np.asarray(s, dtype=np.float64) for s in samples]
    groups = [g[~np.isnan(g)] for g in groups]
    groups = [g for g in groups if g.size >= 2]
    if method not in ("auto", "welch", "kruskal", "anova"):
        msg = f"method must be auto, welch, kruskal or anova (got {method!r})"
        raise ConfigError(msg)
    if method == "auto":
        method = "welch" if len(groups) == 2 else "kruskal"
    out: dict[str, Any] = {"test": method, "statistic": None, "p_value": None}
    if len(groups) < 2 or (method == "welch" and len(groups) != 2):
        return out
    pooled = np.concatenate(groups)
    if np.ptp(pooled) == 0 or all(np.ptp(g) == 0 for g in groups):
        return out
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if method == "welch":
            res = stats.ttest_ind(groups[0], groups[1], equal_var=False)
        elif method == "kruskal":
            res = stats.kruskal(*groups)
        else:
            res = stats.f_oneway(*groups)
    out["statistic"] = _finite(float(res.statistic))
    out["p_value"] = _finite(float(res.pvalue))
    return out


def _label_order(labels: NDArray[np.object_], order: Sequence[str] | None) -> list[str]:
    present = sorted({str(v) for v in labels if v is not None})
    if order is None:
        return present
    return [str(g) for g in order if str(g) in present]


def group_metrics(
    per_user: Mapping[str, ArrayLike] | pd.DataFrame,
    groups: ArrayLike,
    *,
    order: Sequence[str] | None = None,
    method: str = "auto",
) -> dict[str, Any]:
    """Per-group mean of every per-user metric, the gap and a significance test.

    Parameters
    ----------
    per_user : mapping of str to array of shape (n,), or DataFrame with n rows
        Metric values per evaluated user (NaN = undefined for that user, skipped), e.g.
        ``EvalResult.per_user``. Non-numeric DataFrame columns are ignored.
    groups : array-like of shape (n,)
        The group label of each row; None leaves the user out.
    order : sequence of str, optional
        Group order in the output (default: sorted labels). With two groups the signed
        ``difference`` is ``order[0] − order[1]``.
    method : str, default "auto"
        Passed to :func:`significance_test`.

    Returns
    -------
    dict
        ``{"groups": [label, ...], "n_users": {label: n}, "metrics": {metric: {"mean":
        {label: float}, "n": {label: int}, "gap": float, "max_group": label, "min_group":
        label, "difference": float (two groups only), "test": {...}}}}``. NaN becomes None.
    """
    columns: dict[str, NDArray[np.float64]] = {}
    items = per_user.items() if isinstance(per_user, Mapping) else per_user.items()
    for name, values in items:
        arr = np.asarray(values)
        if arr.dtype.kind in "biuf":
            columns[str(name)] = arr.astype(np.float64)
    labels = np.asarray(groups, dtype=object)
    n = labels.shape[0]
    bad = [name for name, arr in columns.items() if arr.shape != (n,)]
    if labels.ndim != 1 or bad:
        msg = f"groups has shape {labels.shape} but metric(s) {bad} do not have {n} rows"
        raise DataError(msg)
    names = _label_order(labels, order)
    str_labels = np.asarray([None if v is None else str(v) for v in labels], dtype=object)
    masks = {g: str_labels == g for g in names}
    out: dict[str, Any] = {
        "groups": names,
        "n_users": {g: int(m.sum()) for g, m in masks.items()},
        "metrics": {},
    }
    for metric, values in columns.items():
        samples = {g: values[m][~np.isnan(values[m])] for g, m in masks.items()}
        means = {g: float(s.mean()) if s.size else math.nan for g, s in samples.items()}
        usable = {g: v for g, v in means.items() if math.isfinite(v)}
        entry: dict[str, Any] = {
            "mean": {g: _finite(v) for g, v in means.items()},
            "n": {g: int(s.size) for g, s in samples.items()},
            "gap": None,
            "max_group": None,
            "min_group": None,
        }
        if usable:
            top = max(usable, key=usable.__getitem__)
            low = min(usable, key=usable.__getitem__)
            entry.update(gap=usable[top] - usable[low], max_group=top, min_group=low)
        if len(names) == 2:
            entry["difference"] = _finite(means[names[0]] - means[names[1]])
        entry["test"] = significance_test(list(samples.values()), method)
        out["metrics"][metric] = entry
    return out


def group_report(
    result: EvalResult,
    user_labels: ArrayLike,
    *,
    order: Sequence[str] | None = None,
    method: str = "auto",
) -> dict[str, Any]:
    """:func:`group_metrics` of an :class:`EvalResult` (accuracy and per-user beyond metrics).

    Parameters
    ----------
    result : EvalResult
    user_labels : array-like of shape (n_users_total,)
        A label for every user of the vocabulary (dense index), e.g. from :func:`user_groups`;
        it is indexed with ``result.users``.
    order, method
        As in :func:`group_metrics`.

    Returns
    -------
    dict
    """
    labels = np.asarray(user_labels, dtype=object)
    users = np.asarray(result.users)
    if labels.ndim != 1 or (users.size and users.max() >= labels.shape[0]):
        msg = f"user_labels has shape {labels.shape}; it needs one label per user of the data"
        raise DataError(msg)
    columns = {**result.per_user, **dict(result.beyond_per_user)}
    return group_metrics(columns, labels[users], order=order, method=method)


def popularity_buckets(popularity: ArrayLike, head_fraction: float = 0.2) -> NDArray[np.object_]:
    """Short head (the ``floor(head_fraction * n_items)`` most popular items) vs long tail.

    Parameters
    ----------
    popularity : array of shape (n_items,)
        Training interaction count per item.
    head_fraction : float, default 0.2

    Returns
    -------
    ndarray of shape (n_items,), object
        ``"short_head"`` or ``"long_tail"`` (ties by lower item index, stable sort).
    """
    pop = np.asarray(popularity, dtype=np.float64)
    if pop.ndim != 1 or pop.size == 0:
        msg = f"popularity must be a non-empty 1-D array (got shape {pop.shape})"
        raise DataError(msg)
    if not 0.0 < float(head_fraction) < 1.0:
        msg = f"head_fraction must lie in (0, 1) (got {head_fraction!r})"
        raise ConfigError(msg)
    n_head = max(int(math.floor(float(head_fraction) * pop.size)), 1)
    labels = np.full(pop.size, "long_tail", dtype=object)
    labels[np.argsort(-pop, kind="stable")[:n_head]] = "short_head"
    return labels


def item_exposure(
    ranked: ArrayLike,
    item_labels: ArrayLike,
    k: int,
    *,
    position_weighted: bool = False,
) -> dict[str, Any]:
    """Share of top-k exposure per item group (popularity bucket, provider, ...).

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order, -1 = padding.
    item_labels : array-like of shape (n_items,)
        Group label per item (None: ``"(none)"``).
    k : int
    position_weighted : bool, default False
        Weight rank ``r`` by ``1 / log2(r + 1)`` (see :func:`exposure_by_group`).

    Returns
    -------
    dict
        ``{"share": {label: float}, "catalogue_share": {label: float}}``: exposure share and
        the group's share of the catalogue, for comparison.
    """
    labels = np.asarray([("(none)" if v is None else str(v)) for v in item_labels], dtype=object)
    names, codes = np.unique(labels, return_inverse=True)
    share = exposure_by_group(
        ranked, codes.astype(np.int64), k, position_weighted, n_groups=names.size
    )
    catalogue = np.bincount(codes, minlength=names.size) / max(labels.size, 1)
    return {
        "share": {str(g): _finite(float(v)) for g, v in zip(names, share, strict=True)},
        "catalogue_share": {str(g): float(v) for g, v in zip(names, catalogue, strict=True)},
    }
