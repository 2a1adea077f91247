"""Beyond-accuracy metrics of top-k lists: coverage, exposure concentration, novelty, diversity.

All functions are vectorised over users; ``-1`` entries of ``ranked`` are padding and ignored.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

from lumenrec.errors import ConfigError, DataError
from lumenrec.evaluation.metrics import _as_ranked, _check_k

__all__ = [
    "catalog_coverage",
    "exposure_by_group",
    "gini_exposure",
    "intra_list_diversity",
    "novelty",
    "popularity_bias",
]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        msg = f"{name} must be a positive int (got {value!r})"
        raise ConfigError(msg)
    return int(value)


def _top_k(ranked: ArrayLike, k: int, n_items: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Validated ``ranked[:, :k]`` and its mask of real (non-padding) entries."""
    k = _check_k(k)
    arr = _as_ranked(ranked, n_items)[:, :k]
    return arr, arr >= 0


def _popularity(item_popularity: ArrayLike) -> NDArray[np.float64]:
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.ndim != 1 or pop.size == 0:
        msg = f"item_popularity must be a non-empty 1-D array, got shape {pop.shape}"
        raise DataError(msg)
    if not np.isfinite(pop).all() or (pop < 0).any():
        msg = "item_popularity must be finite and non-negative"
        raise DataError(msg)
    return pop


def _row_mean(values: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Mean of ``values`` over ``mask`` per row; NaN for rows with no masked entry."""
    count = mask.sum(axis=1).astype(np.float64)
    total = np.where(mask, values, 0.0).sum(axis=1)
    out = np.full(count.shape, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def catalog_coverage(ranked: ArrayLike, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list.

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order, -1 = padding.
    n_items : int
        Catalogue size (> 0); item indices must be < n_items.
    k : int
        Cut-off (> 0).

    Returns
    -------
    float
        ``|distinct items in ranked[:, :k]| / n_items``, in [0, 1].
    """
    n_items = _positive_int(n_items, "n_items")
    items, valid = _top_k(ranked, k, n_items)
    return float(np.unique(items[valid]).size / n_items)


def gini_exposure(ranked: ArrayLike, n_items: int, k: int) -> float:
    """Gini coefficient of item exposure counts in the top-k lists.

    Every item of the catalogue takes part, including never-recommended ones (count 0).
    With counts sorted ascending ``x_1 <= ... <= x_n`` (n = n_items)::

        G = sum_i (2 i - n - 1) x_i / (n * sum_i x_i)

    0 means perfectly equal exposure; the maximum ``(n - 1) / n`` (-> 1) means all exposure
    goes to a single item.

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order, -1 = padding.
    n_items : int
        Catalogue size (> 0).
    k : int
        Cut-off (> 0).

    Returns
    -------
    float
        The Gini coefficient, or NaN if nothing was recommended at all.
    """
    n_items = _positive_int(n_items, "n_items")
    items, valid = _top_k(ranked, k, n_items)
    counts = np.sort(np.bincount(items[valid], minlength=n_items).astype(np.float64))
    total = counts.sum()
    if total == 0:
        return float("nan")
    i = np.arange(1, n_items + 1, dtype=np.float64)
    return float(((2.0 * i - n_items - 1.0) @ counts) / (n_items * total))


def novelty(
    ranked: ArrayLike, item_popularity: ArrayLike, k: int, *, n_users: int
) -> NDArray[np.float64]:
    """Mean self-information of the recommended items, per user.

    ``novelty_u = mean_{i in top-k(u)} -log2(p_i)`` with ``p_i = max(count_i, 1) / n_users``,
    the fraction of training users who interacted with item ``i``. Items never seen in
    training have their count clipped to 1 (as if one user had seen them) so the value
    stays finite.

    Parameters
    ----------
    ranked : ndarray of shape (n_rows, k_max), int
        Item indices in rank order, -1 = padding.
    item_popularity : ndarray of shape (n_items,)
        Number of distinct training users per item (each <= ``n_users``).
    k : int
        Cut-off (> 0).
    n_users : int
        Number of training users (> 0).

    Returns
    -------
    ndarray of shape (n_rows,), float64
        Per-row novelty in bits (>= 0); NaN for rows with no recommended item.
    """
    n_users = _positive_int(n_users, "n_users")
    pop = _popularity(item_popularity)
    if pop.max() > n_users:
        msg = f"item_popularity holds a count {pop.max():g} larger than n_users={n_users}"
        raise DataError(msg)
    items, valid = _top_k(ranked, k, pop.size)
    info = -np.log2(np.maximum(pop, 1.0) / n_users)
    return _row_mean(info[np.where(valid, items, 0)], valid)


def intra_list_diversity(
    ranked: ArrayLike, item_embeddings: ArrayLike | sp.spmatrix | sp.sparray, k: int
) -> NDArray[np.float64]:
    """Intra-list diversity: 1 - mean pairwise cosine similarity of each top-k list.

    Rows of ``item_embeddings`` are L2-normalised internally (a zero row stays zero and has
    similarity 0 to everything). With ``m`` real items in a list (padding ignored; a repeated
    item counts as another item, with similarity 1 to its twin), the mean is over the
    ``m (m - 1)`` ordered pairs, computed without forming the pairs via
    ``sum_{i != j} v_i . v_j = ||sum_i v_i||^2 - sum_i ||v_i||^2``.

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order, -1 = padding.
    item_embeddings : ndarray or scipy.sparse matrix of shape (n_items, n_features)
        Dense embeddings or sparse item features (e.g. co-occurrence columns).
    k : int
        Cut-off (> 0).

    Returns
    -------
    ndarray of shape (n_users,), float64
        Per-user diversity in [0, 2] (in [0, 1] for non-negative features); NaN for lists
        with fewer than 2 items.
    """
    if sp.issparse(item_embeddings):
        emb: Any = sp.csr_matrix(item_embeddings, dtype=np.float64)
        if not np.isfinite(emb.data).all():
            msg = "item_embeddings contains NaN or infinite values"
            raise DataError(msg)
        norms = np.sqrt(np.asarray(emb.multiply(emb).sum(axis=1)).ravel())
    else:
        emb = np.asarray(item_embeddings, dtype=np.float64)
        if emb.ndim != 2 or not np.isfinite(emb).all():
            msg = f"item_embeddings must be a finite 2-D array, got shape {emb.shape}"
            raise DataError(msg)
        norms = np.linalg.norm(emb, axis=1)
    if emb.ndim != 2 or emb.shape[0] == 0:
        msg = f"item_embeddings must have shape (n_items, n_features), got {emb.shape}"
        raise DataError(msg)
    items, valid = _top_k(ranked, k, emb.shape[0])
    inv = np.zeros_like(norms)
    np.divide(1.0, norms, out=inv, where=norms > 0)
    unit = sp.diags(inv) @ emb if sp.issparse(emb) else emb * inv[:, None]
    n_rows = items.shape[0]
    rows, cols = np.nonzero(valid)
    pick = sp.csr_matrix(
        (np.ones(rows.size), (rows, items[rows, cols])), shape=(n_rows, emb.shape[0])
    )
    summed = pick @ unit
    if sp.issparse(summed):
        sq_sum = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
    else:
        sq_sum = np.einsum("ij,ij->i", summed, summed)
    self_sim = pick @ (norms > 0).astype(np.float64)
    m = valid.sum(axis=1).astype(np.float64)
    pairs = m * (m - 1.0)
    out = np.full(n_rows, np.nan)
    np.divide(sq_sum - self_sim, pairs, out=out, where=pairs > 0)
    return 1.0 - out


def popularity_bias(ranked: ArrayLike, item_popularity: ArrayLike, k: int) -> NDArray[np.float64]:
    """Mean popularity percentile of the recommended items, per user.

    The percentile of item ``i`` is rank-based: ``(rank_i - 1) / (n_items - 1)`` where
    ``rank_i`` is its 1-based rank by ascending popularity with ties averaged; so the least
    popular item scores 0, the most popular 1, and tied items share a value (a one-item
    catalogue scores 0.5).

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order, -1 = padding.
    item_popularity : ndarray of shape (n_items,)
        Any non-negative popularity measure (e.g. training interaction counts).
    k : int
        Cut-off (> 0).

    Returns
    -------
    ndarray of shape (n_users,), float64
        Values in [0, 1]; NaN for users with no recommended item.
    """
    pop = _popularity(item_popularity)
    items, valid = _top_k(ranked, k, pop.size)
    n = pop.size
    pct = (rankdata(pop, method="average") - 1.0) / (n - 1) if n > 1 else np.full(1, 0.5)
    return _row_mean(pct[np.where(valid, items, 0)], valid)


def exposure_by_group(
    ranked: ArrayLike,
    item_groups: ArrayLike,
    k: int,
    position_weighted: bool = False,
    *,
    n_groups: int | None = None,
) -> NDArray[np.float64]:
    """Share of top-k exposure received by each item group.

    Each recommended item contributes weight 1, or ``1 / log2(rank + 1)`` (rank 1-based) when
    ``position_weighted`` is true, to the exposure of its group.

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order, -1 = padding.
    item_groups : ndarray of shape (n_items,), int
        Group id (>= 0) of every item.
    k : int
        Cut-off (> 0).
    position_weighted : bool, default False
        Discount exposure by rank as in DCG.
    n_groups : int, optional
        Number of groups; default ``item_groups.max() + 1``.

    Returns
    -------
    ndarray of shape (n_groups,), float64
        Exposure shares summing to 1 (all NaN if nothing was recommended).
    """
    groups = np.asarray(item_groups)
    if groups.ndim != 1 or groups.size == 0 or not np.issubdtype(groups.dtype, np.integer):
        msg = (
            f"item_groups must be a non-empty 1-D integer array, got {groups.dtype} {groups.shape}"
        )
        raise DataError(msg)
    if groups.min() < 0:
        msg = "item_groups must be non-negative group ids"
        raise DataError(msg)
    top = int(groups.max()) + 1
    if n_groups is None:
        n_groups = top
    elif _positive_int(n_groups, "n_groups") < top:
        msg = f"n_groups={n_groups} but item_groups holds group id {top - 1}"
        raise ConfigError(msg)
    items, valid = _top_k(ranked, k, groups.size)
    if position_weighted:
        weights = 1.0 / np.log2(np.arange(2, items.shape[1] + 2, dtype=np.float64))
    else:
        weights = np.ones(items.shape[1])
    w = np.broadcast_to(weights, items.shape)[valid]
    exposure = np.bincount(groups[items[valid]], weights=w, minlength=n_groups)
    total = exposure.sum()
    if total == 0:
        return np.full(n_groups, np.nan)
    return exposure / total


def longtail_share(
    ranked: ArrayLike, item_popularity: ArrayLike, k: int, head: float = 0.2
) -> float:
    """Share of top-k slots given to long-tail items (outside the ``head`` most popular share).

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
        Item indices in rank order, -1 = padding.
    item_popularity : array of shape (n_items,)
        Training interaction count per item.
    k : int
    head : float
        Share of the catalogue (most popular first, ties by lower index) that is the head.

    Returns
    -------
    float
        NaN when no slot is filled.
    """
    pop = _popularity(item_popularity)
    n_head = max(int(np.floor(head * pop.size)), 1)
    tail = np.ones(pop.size, np.int64)
    tail[np.argsort(-pop, kind="stable")[:n_head]] = 0
    return float(exposure_by_group(ranked, tail, k, False, n_groups=2)[1])


def provider_gini(ranked: ArrayLike, providers: ArrayLike, k: int) -> float:
    """Gini of position-weighted exposure over providers (brands); items of unknown provider
    (-1) are left out. 0 = every provider equally exposed, → 1 = one provider gets it all.

    Parameters
    ----------
    ranked : ndarray of shape (n_users, k_max), int
    providers : array of shape (n_items,), int
        Provider code per item, -1 unknown.
    k : int
    """
    codes = np.asarray(providers, dtype=np.int64)
    n = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 0
    if n == 0:
        return float("nan")
    groups = np.where(codes >= 0, codes, n)
    share = np.sort(exposure_by_group(ranked, groups, k, True, n_groups=n + 1)[:n])
    total = share.sum()
    if not np.isfinite(total) or total == 0:
        return float("nan")
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(((2.0 * i - n - 1.0) @ share) / (n * total))
