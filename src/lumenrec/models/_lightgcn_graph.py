"""The graph side of :class:`~lumenrec.models.lightgcn.LightGCN`, in numpy/scipy: the
symmetrically normalised adjacency ``D^-1/2 A D^-1/2`` of the bipartite user–item graph, and
the propagation of ego embeddings over it (layer mean and the sum of the lower layers) that
gives the stored embeddings and the fold-in inputs after training. No torch needed."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["normalized_adjacency"]


def normalized_adjacency(user_items: sp.csr_matrix) -> tuple[sp.csr_matrix, NDArray[np.float64]]:
    """``D^-1/2 A D^-1/2`` of the bipartite graph ``A = [[0, R], [Rᵀ, 0]]``.

    Parameters
    ----------
    user_items : csr_matrix of shape (n_users, n_items)
        Binary interactions ``R``.

    Returns
    -------
    adjacency : csr_matrix of shape (n_users + n_items, n_users + n_items), float32
        Users first, then items. Isolated nodes have empty rows.
    degree : ndarray of shape (n_users + n_items,), float64
        Node degrees.
    """
    r = sp.csr_matrix(user_items, dtype=np.float32)
    a = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray(a.sum(axis=1), np.float64).ravel()
    inv = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    d = sp.diags(inv.astype(np.float32))
    norm = (d @ a @ d).tocsr()
    norm.sort_indices()
    return norm, degree


def _propagate_np(
    adjacency: sp.csr_matrix, ego: NDArray[np.float32], n_layers: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Layer mean ``(E0 + … + EK) / (K + 1)`` and the sum of layers 0..K-1."""
    layer, total = ego, ego.copy()
    below = np.zeros_like(ego)
    for _ in range(n_layers):
        below += layer
        layer = np.asarray(adjacency @ layer, np.float32)
        total += layer
    return total / (n_layers + 1), below
