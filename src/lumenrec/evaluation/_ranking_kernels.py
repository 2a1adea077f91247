"""Per-user ranking metric kernels of :mod:`lumenrec.evaluation.metrics`, vectorised over
users: precision, recall, F1, NDCG, AP, reciprocal rank and hit rate at a cut-off ``k``, each
computed from a boolean hit matrix and the number of relevant items per user (NaN where a
user has no relevant item), plus ``_KERNELS``, the name → kernel table used by the public
metric functions and :func:`~lumenrec.evaluation.metrics.evaluate_rankings`."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["_KERNELS"]


def _top_k(hits: NDArray[np.bool_], k: int) -> NDArray[np.bool_]:
    """First ``k`` columns of ``hits``; ranks beyond k_max are implicit misses."""
    return hits[:, : min(k, hits.shape[1])]


def _safe_div(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    """num / den with NaN where den == 0 (no warnings)."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _discounts(n: int) -> NDArray[np.float64]:
    """1 / log2(i + 1) for ranks i = 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _k_hits(hits: NDArray[np.bool_], k: int) -> NDArray[np.float64]:
    return _top_k(hits, k).sum(axis=1).astype(np.float64)


def _mask_no_relevant(values: NDArray[np.float64], n_rel: NDArray[np.int64]) -> NDArray[np.float64]:
    values = values.astype(np.float64, copy=False)
    values[n_rel == 0] = np.nan
    return values


def _precision(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return _mask_no_relevant(_k_hits(hits, k) / k, n_rel)


def _recall(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return _safe_div(_k_hits(hits, k), n_rel.astype(np.float64))


def _f1(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    p = _precision(hits, n_rel, k)
    r = _recall(hits, n_rel, k)
    both = p + r
    out = np.zeros_like(p)
    np.divide(2.0 * p * r, both, out=out, where=both > 0)
    return _mask_no_relevant(out, n_rel)


def _ndcg(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    top = _top_k(hits, k)
    dcg = top.astype(np.float64) @ _discounts(top.shape[1])
    n_ideal = np.minimum(n_rel, k)
    ideal_cum = np.concatenate(([0.0], np.cumsum(_discounts(int(n_ideal.max(initial=0))))))
    return _safe_div(dcg, ideal_cum[n_ideal])


def _map(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    top = _top_k(hits, k)
    ranks = np.arange(1, top.shape[1] + 1, dtype=np.float64)
    prec_at_i = np.cumsum(top, axis=1) / ranks
    ap_sum = np.where(top, prec_at_i, 0.0).sum(axis=1)
    return _safe_div(ap_sum, np.minimum(n_rel, k).astype(np.float64))


def _mrr(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    top = _top_k(hits, k)
    out = np.zeros(top.shape[0], dtype=np.float64)
    if top.shape[1]:
        any_hit = top.any(axis=1)
        out[any_hit] = 1.0 / (np.argmax(top[any_hit], axis=1) + 1.0)
    return _mask_no_relevant(out, n_rel)


def _hr(hits: NDArray[np.bool_], n_rel: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return _mask_no_relevant(_top_k(hits, k).any(axis=1).astype(np.float64), n_rel)


_KERNELS = {
    "precision": _precision,
    "recall": _recall,
    "f1": _f1,
    "ndcg": _ndcg,
    "map": _map,
    "mrr": _mrr,
    "hr": _hr,
}
