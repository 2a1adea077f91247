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
from lumenrec.models._kernels.knn_unlearn import (
    assemble_lists,
    list_thresholds,
    merge_lists,
    rebuild_lists,
)

__all__ = ["ease_downdate", "knn_downdate"]

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
    neighbours: sp.csr_matrix | None = None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
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
    neighbours : csr_matrix of shape (n, n), float32, optional
        ``similarity.T`` in CSR (row i = item i's list) when the caller kept it from the
        previous erasure; computed otherwise.

    Returns
    -------
    similarity : csr_matrix of shape (n, n), float32
        The similarity a refit without ``rows`` gives (sorted indices).
    neighbours : csr_matrix of shape (n, n), float32
        The same lists row-major (for the next erasure).
    """
    n = gram.shape[0]
    k = int(n_neighbors)
    touched = np.unique(rows.indices).astype(np.int64)
    if len(touched) == 0:
        return similarity, (similarity.T.tocsr() if neighbours is None else neighbours)
    sub = rows[:, touched].toarray().astype(np.float64)
    monotone = bool((rows.data >= 0).all())
    gram[np.ix_(touched, touched)] -= (sub.T @ sub).astype(np.float32)
    norms = np.sqrt(np.maximum(np.diagonal(gram).astype(np.float64), 0.0))
    # row i = the kept neighbours of item i (csr_tocsc: sorted)
    neigh = similarity.T.tocsr() if neighbours is None else neighbours
    counts = np.diff(neigh.indptr)
    ent_rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    ent_cols = neigh.indices.astype(np.int64)
    pos = np.full(n, -1, np.int64)
    pos[touched] = np.arange(len(touched))
    col_t = pos[ent_cols] >= 0  # entries whose neighbour is a touched item: value changed
    rebuild = np.zeros(n, bool)
    rebuild[touched] = True
    if monotone:
        # the smallest kept raw value of each full list (touched values only grow); every
        # kept touched neighbour is >= the threshold, so more of them above it means an entrant
        touched_mask = pos >= 0
        thresh, n_kept = list_thresholds(
            neigh.indptr.astype(np.int64),
            ent_cols,
            neigh.data,
            touched_mask,
            gram,
            norms,
            k,
            float(shrinkage),
            bool(normalize),
            _MARGIN,
        )
        # the touched lists are rebuilt in the same pass over their Gram rows
        n_above, counts_f, cols_f, vals_f = rebuild_lists(
            gram, norms, touched, thresh, k, float(shrinkage)
        )
        rebuild |= n_above > n_kept
    else:  # a negative value may shrink a kept similarity: rebuild every touched list
        rebuild |= (_raw_rows(gram, norms, touched, shrinkage) != 0).any(axis=0)
    redo = np.flatnonzero(rebuild)
    count_new = np.zeros(n, np.int64)
    if monotone:
        full_rows = touched
    else:
        full_rows = redo
        no_bar = np.full(n, np.inf)
        _, counts_f, cols_f, vals_f = rebuild_lists(
            gram, norms, full_rows, no_bar, k, float(shrinkage)
        )
    count_new[full_rows] = counts_f
    new_c, new_vals = cols_f, vals_f
    if monotone:  # an untouched list: only its members and the touched items can make it
        extra = redo[pos[redo] < 0]
        ptr = neigh.indptr.astype(np.int64)
        counts_m, cols_m, vals_m = merge_lists(
            gram, norms, extra, ptr, ent_cols, touched, k, float(shrinkage)
        )
        count_new[extra] = counts_m
        order = np.concatenate([full_rows, extra])
        new_c = np.concatenate([new_c, cols_m])
        new_vals = np.concatenate([new_vals, vals_m])
    else:
        order = full_rows
    start_new = np.zeros(n, np.int64)  # offset of each rebuilt list in new_c / new_vals
    start_new[order] = np.concatenate(([0], np.cumsum(count_new[order])[:-1]))
    stay = ~rebuild[ent_rows]
    if normalize:  # every list with a touched neighbour is renormalised: recompute it whole
        row_changed = np.zeros(n, bool)
        row_changed[ent_rows[col_t]] = True
        change = stay & row_changed[ent_rows]
    else:
        change = stay & col_t
    values = neigh.data.astype(np.float64)
    values[change] = _raw(gram, norms, ent_rows[change], ent_cols[change], shrinkage)
    out_ptr, out_cols, out_vals, fresh = assemble_lists(
        neigh.indptr.astype(np.int64),
        ent_cols,
        values,
        change,
        rebuild,
        start_new,
        count_new,
        new_c,
        new_vals,
    )
    if normalize:
        out_rows = np.repeat(np.arange(n), np.diff(out_ptr))
        total = np.bincount(out_rows[fresh], weights=np.abs(out_vals[fresh]), minlength=n)
        scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
        out_vals[fresh] = out_vals[fresh] * scale[out_rows[fresh]]
    new_neigh = sp.csr_matrix(
        (out_vals.astype(np.float32), out_cols.astype(np.int32), out_ptr.astype(np.int32)),
        shape=(n, n),
    )
    sim = new_neigh.T.tocsr()  # csr_tocsc writes each row's columns in increasing order
    sim.has_sorted_indices = True
    new_neigh.has_sorted_indices = True
    return sim, new_neigh


def check_positive_definite(diag: NDArray[np.float64]) -> None:
    """Sanity check of a stored ``diag(P)`` (all entries must be positive and finite)."""
    if not (np.isfinite(diag).all() and (diag > 0).all()):
        msg = "EASE's stored diag(P) is not positive; the model state is corrupt"
        raise FitError(msg)
