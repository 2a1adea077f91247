"""Exact unlearning kernels of the linear item-item models.

EASE keeps ``B = −P / diag(P)`` with ``P = (XᵀX + λI)⁻¹``. Forgetting rows ``X_f`` downdates
the Gram matrix by ``X_fᵀX_f``; by Woodbury,
``P' = P + Vᵀ (I − X_f V ᵀ)⁻¹ V`` with ``V = X_f P`` (k × n). ``P`` is never stored: since
``P = (I − B) diag(d)`` with ``d = diag(P)``, ``V[a] = d ⊙ (x_a − x_a B)`` needs only the
forgotten rows of ``B`` (O(k·h·n)), and ``B'`` follows from one column scaling and one rank-k
update of ``B`` in place (O(k·n²) flops, BLAS ``sgemm``), with ``d' = d + diag(Vᵀ M⁻¹ V)``.

ItemKNN keeps the co-occurrence Gram ``G = XᵀX`` (``keep_gram=True``). Forgetting rows
subtracts their outer products from ``G`` on the touched items ``T`` only; a similarity
``S_ji = G_ji / (‖x_j‖‖x_i‖ + shrinkage)`` changes only where ``i`` or ``j`` is in ``T``. Each
item's neighbour list (column of ``S``) is rebuilt from ``G`` when its item is in ``T`` or a
touched item may enter its top k; every other list keeps its members and gets its values
(and normalisation) recomputed from ``G``. With non-negative data, similarities of pairs with
one touched item only grow (the touched norm shrinks), so an untouched pair outside the top k
stays outside: the result equals the top-k pruned similarity refitted without the rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import blas

from lumenrec.errors import FitError

__all__ = ["ease_downdate", "knn_downdate", "topk_dense_rows"]

#: Relative margin under a list's smallest kept value within which a touched item counts as
#: a possible entrant (covers float32 rounding of the stored values; ties must be rebuilt).
_MARGIN = 1e-5


def ease_downdate(
    weights: NDArray[np.float32], diag: NDArray[np.float64], rows: sp.csr_matrix
) -> NDArray[np.float64]:
    """Remove ``rows`` from an EASE solution in place (exact Woodbury downdate).

    Parameters
    ----------
    weights : ndarray of shape (n, n), float32, C-contiguous
        ``B`` (zero diagonal); updated in place.
    diag : ndarray of shape (n,), float64
        ``diag(P)`` of the current solution.
    rows : csr_matrix of shape (k, n), float32
        The forgotten users' prepared (binarised) rows.

    Returns
    -------
    ndarray of shape (n,), float64
        ``diag(P')`` of the new solution.

    Raises
    ------
    FitError
        The downdated Gram matrix is not positive definite (cannot happen in exact
        arithmetic; signals a corrupt ``diag``).
    """
    n = weights.shape[0]
    if rows.nnz == 0:
        return diag
    x = sp.csr_matrix(rows, dtype=np.float64)
    # V[a] = P x_a = d ⊙ (x_a − x_a B), from the forgotten rows of B only
    xb = np.zeros((x.shape[0], n), np.float64)
    for a in range(x.shape[0]):
        cols = x.indices[x.indptr[a] : x.indptr[a + 1]]
        vals = x.data[x.indptr[a] : x.indptr[a + 1]]
        xb[a] = vals @ weights[cols].astype(np.float64)
    v = (x.toarray() - xb) * diag[None, :]
    m = np.eye(x.shape[0]) - x @ v.T
    try:
        chol = np.linalg.cholesky(m)
    except np.linalg.LinAlgError as err:
        msg = "EASE downdate: I − X_f P X_fᵀ is not positive definite (corrupt model state)"
        raise FitError(msg) from err
    w = np.linalg.solve(chol.T, np.linalg.solve(chol, v))  # M⁻¹ V, shape (k, n)
    new_diag = diag + np.einsum("an,an->n", v, w)
    scale = (diag / new_diag).astype(np.float32)
    weights *= scale[None, :]
    # Bᵀ (F-contiguous view) −= Z Vᵀ with Z[i, a] = W[a, i] / d'_i
    z = np.asfortranarray((w / new_diag[None, :]).T, dtype=np.float32)
    vt = np.asfortranarray(v, dtype=np.float32)
    view = weights.T
    out = blas.sgemm(-1.0, z, vt, beta=1.0, c=view, overwrite_c=True)
    if not np.shares_memory(out, weights):  # pragma: no cover - BLAS copied
        weights[...] = out.T
    weights[np.diag_indices(n)] = 0.0
    return new_diag


def topk_dense_rows(values: NDArray[np.float64], k: int) -> NDArray[np.bool_]:
    """Which entries ``ItemKNN``'s pruning keeps in each row of a dense block.

    Non-zero entries only; rows with more than ``k`` of them keep the ``k`` largest, ties at
    the k-th value going to the lowest column index (as ``_prune_rows`` does).

    Parameters
    ----------
    values : ndarray of shape (m, n), float64
    k : int

    Returns
    -------
    ndarray of shape (m, n), bool
    """
    nz = values != 0
    keep = nz.copy()
    counts = nz.sum(axis=1)
    over = np.flatnonzero(counts > k)
    if len(over):
        vals = np.where(nz[over], values[over], -np.inf)
        kth = -np.partition(-vals, k - 1, axis=1)[:, k - 1]
        greater = vals > kth[:, None]
        tie = vals == kth[:, None]
        need = k - greater.sum(axis=1)
        keep[over] = greater | (tie & (np.cumsum(tie, axis=1) <= need[:, None]))
    return keep


def _raw(
    gram: NDArray[np.float32],
    norms: NDArray[np.float64],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    shrinkage: float,
) -> NDArray[np.float64]:
    """Unpruned cosine values ``G_ji / (‖x_j‖‖x_i‖ + shrinkage)`` at (rows, cols); 0 where
    ``G`` is 0 or on the diagonal (the entries ``fit`` does not store)."""
    dots = gram[rows, cols]
    denom = norms[rows] * norms[cols] + shrinkage
    out = np.zeros(dots.shape, np.float64)
    ok = (dots != 0) & (rows != cols)
    np.divide(dots, denom, out=out, where=ok)
    return out


def _raw_rows(
    gram: NDArray[np.float32],
    norms: NDArray[np.float64],
    rows: NDArray[np.int64],
    shrinkage: float,
) -> NDArray[np.float64]:
    """Dense rows of the unpruned cosine matrix (zeros where ``fit`` stores nothing).

    Returns
    -------
    ndarray of shape (len(rows), n), float64
    """
    dots = gram[rows]
    denom = norms[rows][:, None] * norms[None, :] + shrinkage
    out = np.zeros(dots.shape, np.float64)
    np.divide(dots, denom, out=out, where=dots != 0)
    out[np.arange(len(rows)), rows] = 0.0
    return out


def knn_downdate(
    similarity: sp.csr_matrix,
    gram: NDArray[np.float32],
    rows: sp.csr_matrix,
    *,
    n_neighbors: int,
    shrinkage: float,
    normalize: bool,
) -> sp.csr_matrix:
    """Remove ``rows`` from ItemKNN's Gram (in place) and return the new pruned similarity.

    Parameters
    ----------
    similarity : csr_matrix of shape (n, n), float32
        Current ``S``; column ``i`` holds item ``i``'s kept neighbours.
    gram : ndarray of shape (n, n), float32
        ``XᵀX`` of the prepared training matrix; downdated in place.
    rows : csr_matrix of shape (k, n), float32
        The forgotten users' prepared rows.
    n_neighbors, shrinkage, normalize
        The model's parameters.

    Returns
    -------
    csr_matrix of shape (n, n), float32
        The similarity a refit without ``rows`` gives (sorted indices).
    """
    n = gram.shape[0]
    k = int(n_neighbors)
    touched = np.unique(rows.indices).astype(np.int64)
    if len(touched) == 0:
        return similarity
    sub = rows[:, touched].toarray().astype(np.float64)
    monotone = bool((rows.data >= 0).all())
    gram[np.ix_(touched, touched)] -= (sub.T @ sub).astype(np.float32)
    norms = np.sqrt(np.maximum(np.diagonal(gram).astype(np.float64), 0.0))
    neigh = similarity.T.tocsr()  # row i = the kept neighbours of item i (csr_tocsc: sorted)
    counts = np.diff(neigh.indptr)
    ent_rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    ent_cols = neigh.indices.astype(np.int64)
    pos = np.full(n, -1, np.int64)
    pos[touched] = np.arange(len(touched))
    col_t = pos[ent_cols] >= 0  # entries whose neighbour is a touched item: value changed
    # candidates from touched items: cand[t, i] = S_raw(touched[t], i) = entry (i, touched[t])
    cand = _raw_rows(gram, norms, touched, shrinkage)
    rebuild = np.zeros(n, bool)
    rebuild[touched] = True
    if monotone:
        # the smallest kept raw value of each full list (touched values only grow)
        vals = neigh.data.astype(np.float64)
        if normalize:  # undo the per-list scaling only to compare: ranks are unchanged
            vals = _raw(gram, norms, ent_rows, ent_cols, shrinkage)
        else:
            vals[col_t] = cand[pos[ent_cols[col_t]], ent_rows[col_t]]
        thresh = np.full(n, np.inf)  # a list that was not full kept every non-zero entry
        full = np.flatnonzero(counts >= k)
        if len(full):
            starts = neigh.indptr[:-1]
            thresh[full] = np.minimum.reduceat(vals, starts[counts > 0])[
                np.searchsorted(np.flatnonzero(counts > 0), full)
            ]
        # stored values are float32-rounded: a relative margin only rebuilds a few more lists
        thresh[full] -= _MARGIN * np.abs(thresh[full])
        # every kept touched neighbour is >= the threshold; more of them means an entrant
        n_above = np.count_nonzero(cand >= thresh[None, :], axis=0)
        n_kept = np.bincount(ent_rows[col_t], minlength=n)
        rebuild |= n_above > n_kept
    else:  # a negative value may shrink a kept similarity: rebuild every touched list
        rebuild |= (cand != 0).any(axis=0)
    redo = np.flatnonzero(rebuild)
    extra = redo[pos[redo] < 0]
    if len(extra):
        dense = np.empty((len(redo), n), np.float64)
        dense[np.searchsorted(redo, touched)] = cand
        dense[np.searchsorted(redo, extra)] = _raw_rows(gram, norms, extra, shrinkage)
    else:
        dense = cand
    keep = topk_dense_rows(dense, k)
    new_r, new_c = np.nonzero(keep)
    stay = ~rebuild[ent_rows]
    if normalize:  # every list with a touched neighbour is renormalised: recompute it whole
        row_changed = np.zeros(n, bool)
        row_changed[ent_rows[col_t]] = True
        change = stay & row_changed[ent_rows]
    else:
        change = stay & col_t
    values = neigh.data.astype(np.float64)
    values[change] = _raw(gram, norms, ent_rows[change], ent_cols[change], shrinkage)
    stay &= values != 0
    out_rows = np.concatenate([ent_rows[stay], redo[new_r]])
    out_cols = np.concatenate([ent_cols[stay], new_c.astype(np.int64)])
    out_vals = np.concatenate([values[stay], dense[new_r, new_c]])
    if normalize:
        fresh = np.concatenate([change[stay], np.ones(len(new_r), bool)])
        total = np.bincount(out_rows[fresh], weights=np.abs(out_vals[fresh]), minlength=n)
        scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
        out_vals[fresh] = out_vals[fresh] * scale[out_rows[fresh]]
    new_neigh = sp.csr_matrix((out_vals.astype(np.float32), (out_rows, out_cols)), shape=(n, n))
    sim = new_neigh.T.tocsr()  # csr_tocsc writes each row's columns in increasing order
    sim.has_sorted_indices = True
    return sim


def check_positive_definite(diag: NDArray[np.float64]) -> None:
    """Sanity check of a stored ``diag(P)`` (all entries must be positive and finite)."""
    if not (np.isfinite(diag).all() and (diag > 0).all()):
        msg = "EASE's stored diag(P) is not positive; the model state is corrupt"
        raise FitError(msg)
