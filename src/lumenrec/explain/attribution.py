"""Which history items made a score: exact decompositions where the model is linear in the
history, implicit's decomposition for ALS, and measured occlusion for everything else.

- **exact**: EASE and ItemKNN (``score = Σ_j x_uj · W_ji``) and the content profile
  (``score = Σ_j w_uj (e_j · e_i) / ‖Σ_j w_uj e_j‖``): the terms sum to the served score.
- **als**: ALS's fold-in ``y_iᵀ (YᵀC_uY + λI)⁻¹ Yᵀ C_u p_u`` split per history item, as
  implicit's ``explain`` does; the terms sum to the fold-in score of the history.
- **occlusion**: every other model (hybrids, BPR, Mult-VAE, LightGCN, SASRec): each history
  item is removed in turn and the history re-scored in one batched fold-in; the score drop is
  the item's contribution. Histories longer than ``max_occlusion`` are measured on their
  ``max_occlusion`` highest-valued entries (the most recent for SASRec, whose row values
  order the sequence), and the note says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.types import IndexArray

__all__ = ["Attribution", "history_attribution", "occlusion_attribution"]

_EXACT = {"EASE": "exact", "ItemKNN": "exact", "ContentRecommender": "exact", "ImplicitALS": "als"}


@dataclass(frozen=True, slots=True)
class Attribution:
    """Per-history-item contributions to one item's score.

    Attributes
    ----------
    items : ndarray of shape (h,), int32
        History items, by descending contribution.
    contributions : ndarray of shape (h,), float64
    method : {"exact", "als", "occlusion"}
    explained_score : float or None
        What the contributions sum to (exact and ALS methods), else None.
    note : str or None
    """

    items: IndexArray
    contributions: NDArray[np.float64]
    method: str
    explained_score: float | None = None
    note: str | None = None


def _row(history: Any, n_items: int) -> sp.csr_matrix:
    row = sp.csr_matrix(history if sp.issparse(history) else np.atleast_2d(history))
    if row.shape[1] < n_items:
        row = sp.csr_matrix((row.data, row.indices, row.indptr), shape=(1, n_items))
    row = row[:, :n_items].tocsr()
    row.sum_duplicates()
    row.eliminate_zeros()
    return row


def _sorted(items: np.ndarray, contrib: np.ndarray) -> tuple[IndexArray, NDArray[np.float64]]:
    order = np.lexsort((items, -contrib))
    return items[order].astype(np.int32), contrib[order].astype(np.float64)


def history_attribution(
    model: Any,
    items: IndexArray,
    *,
    history: sp.csr_matrix | None = None,
    user: int | None = None,
    max_occlusion: int = 64,
) -> list[Attribution]:
    """Contributions of each history item to the score of each of ``items``.

    Parameters
    ----------
    model : fitted Recommender
    items : ndarray of shape (m,), int
        The recommended items to explain.
    history : sparse matrix of shape (1, n_items), optional
        The history the list was scored from (fold-in); default: the training row of ``user``.
    user : int, optional
        A training user: exact models then decompose the served score of that user.
    max_occlusion : int
        Most history items occluded per request (occlusion method only).

    Returns
    -------
    list of Attribution, one per item (empty contributions when the history is empty)
    """
    items = np.asarray(items, dtype=np.int32)
    if history is None and user is None:
        return [Attribution(np.empty(0, np.int32), np.empty(0), "none") for _ in items]
    found = contribution_matrix(model, items, history=history, user=user)
    if found is not None:
        kind, cols, matrix = found
        out = []
        for contrib in matrix:
            cited, contrib = _sorted(cols, contrib)
            out.append(Attribution(cited, contrib, kind, float(contrib.sum())))
        return out
    row = history if history is not None else _served_row(model, int(user))
    return occlusion_attribution(model, _row(row, model.n_items_), items, max_occlusion)


def _served_row(model: Any, user: int) -> sp.csr_matrix:
    """The history row whose fold-in gives a training user's served score.

    For a hybrid whose text component keeps recency weights and whose other components
    binarise their input, that is the recency-weighted row (the raw row would weight the
    text part by rating, and a capped occlusion would keep the highest-rated items instead of
    the most recent).
    """
    comps = getattr(model, "components", None) or {}
    text = comps.get(getattr(model, "text", None))
    weights = getattr(text, "history_weights_", None)
    others = [c for name, c in comps.items() if c is not text]
    if weights is not None and others and all(getattr(c, "binarize", False) for c in others):
        return weights[user]
    return model.seen_[user]


def contribution_matrix(
    model: Any,
    items: IndexArray,
    *,
    history: sp.csr_matrix | None = None,
    user: int | None = None,
) -> tuple[str, IndexArray, NDArray[np.float64]] | None:
    """All exact contributions at once, for models with an exact decomposition.

    Parameters
    ----------
    model : fitted Recommender
    items : ndarray of shape (m,), int
    history, user
        As in :func:`history_attribution`.

    Returns
    -------
    (method, history_items, contributions) or None
        ``history_items`` of shape (h,), int32, in column order; ``contributions`` of shape
        (m, h), float64, row ``j`` summing to ``items[j]``'s score. None when the model has no
        exact decomposition (use occlusion).
    """
    kind = _EXACT.get(type(model).__name__)
    items = np.asarray(items, dtype=np.int32)
    if kind is None or (history is None and user is None):
        return None
    if len(items) and int(items.max()) >= _width(model):
        return None
    row = _exact_row(model, history, user)
    cols = row.indices.astype(np.int32)
    if row.nnz == 0:
        return kind, cols, np.zeros((len(items), 0))
    # every exact model decomposes a list's scores in one call (ALS: one factorisation)
    cols, matrix = model.explain_many(row, items)
    return kind, np.asarray(cols, np.int32), np.asarray(matrix, np.float64)


def _width(model: Any) -> int:
    emb = getattr(model, "item_embeddings_", None)
    return int(emb.shape[0]) if emb is not None else int(model.n_items_)


def _exact_row(model: Any, history: sp.csr_matrix | None, user: int | None) -> sp.csr_matrix:
    """The row the exact decomposition runs on: the training row (recency weights for the
    content model) of a training user, or the folded-in history."""
    n = _width(model)
    if history is not None:
        return _row(history, n)
    weights = getattr(model, "history_weights_", None)
    source = weights if weights is not None else model.seen_
    if not source.has_canonical_format:
        return _row(source[int(user)], n)
    # a canonical CSR row straight from the arrays: scipy's row slicing costs more than the
    # decomposition itself on the serving path
    start, end = source.indptr[int(user)], source.indptr[int(user) + 1]
    data, cols = source.data[start:end], source.indices[start:end]
    keep = (cols < n) & (data != 0)
    return sp.csr_matrix((data[keep], cols[keep], np.array([0, int(keep.sum())])), shape=(1, n))


def occlusion_attribution(
    model: Any, history: sp.csr_matrix, items: IndexArray, max_occlusion: int = 64
) -> list[Attribution]:
    """Leave-one-out contributions by batched fold-in (``score_history``).

    Parameters
    ----------
    model : fitted Recommender with ``score_history``
    history : sparse matrix of shape (1, n_items_)
    items : ndarray of shape (m,), int32
    max_occlusion : int

    Returns
    -------
    list of Attribution (method ``"occlusion"``)
    """
    h = history.nnz
    if h == 0 or not hasattr(model, "score_history"):
        return [Attribution(np.empty(0, np.int32), np.empty(0), "occlusion") for _ in items]
    cols, vals = history.indices, history.data
    note = None
    chosen = np.arange(h)
    if h > max_occlusion:
        chosen = np.lexsort((cols, -vals))[:max_occlusion]
        note = f"contributions measured on {max_occlusion} of {h} history items"
    # row 0: the full history; row r: the history without its chosen[r-1]-th entry
    n_rows = len(chosen) + 1
    data = np.tile(vals, n_rows).astype(np.float32)
    indices = np.tile(cols, n_rows)
    keep = np.ones(n_rows * h, bool)
    keep[np.arange(1, n_rows) * h + chosen] = False
    counts = np.full(n_rows, h)
    counts[1:] -= 1
    indptr = np.concatenate([[0], np.cumsum(counts)])
    rows = sp.csr_matrix((data[keep], indices[keep], indptr), shape=(n_rows, history.shape[1]))
    scores = np.asarray(model.score_history(rows, np.asarray(items, np.int32)), np.float64)
    drops = scores[0][None, :] - scores[1:]  # (len(chosen), m)
    drops = np.nan_to_num(drops, nan=0.0, posinf=0.0, neginf=0.0)
    out = []
    for j in range(len(items)):
        cited, contrib = _sorted(cols[chosen], drops[:, j])
        out.append(Attribution(cited, contrib, "occlusion", None, note))
    return out
