"""Small pieces of :mod:`lumenrec.models.debiased`: the torch MF module (built lazily: torch
is optional), sparse-cell extraction and the validation AUC."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.stats import rankdata

from lumenrec.errors import DataError

__all__ = ["auc", "cells", "make_mf"]

_INIT_STD = 0.1


def cells(mat: Any, shape: tuple[int, int], name: str) -> tuple[NDArray, NDArray, NDArray]:
    """``(users, items, values)`` of the stored cells of a sparse matrix of ``shape``."""
    m = sp.csr_matrix(mat, dtype=np.float64)
    if m.shape != shape:
        msg = f"{name} has shape {m.shape}; expected {shape} like the training matrix"
        raise DataError(msg)
    m.eliminate_zeros()
    m.sort_indices()
    rows = np.repeat(np.arange(shape[0]), np.diff(m.indptr))
    return rows.astype(np.int64), m.indices.astype(np.int64), m.data


def auc(labels: NDArray, scores: NDArray) -> float:
    """ROC-AUC of ``scores`` (n,) for labels (n,) > 0, ties averaged; NaN for one class.
    (The model's validation score; :func:`lumenrec.evaluation.p5.roc_auc` is the public one,
    kept separate so that models do not import the evaluation layer.)"""
    pos = labels > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def make_mf(torch: Any, shape: tuple[int, int], f: int, bias: bool) -> Any:
    """The torch module: ``x_ui = p_u · q_i + b_u + b_i + b`` (biases frozen at 0 unless
    ``bias``); ``imputed`` = σ(x) for binary labels, x for ratings."""

    class MF(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            n_u, n_i = shape
            self.user_f = torch.nn.Parameter(torch.randn(n_u, f) * _INIT_STD)
            self.item_f = torch.nn.Parameter(torch.randn(n_i, f) * _INIT_STD)
            self.user_b = torch.nn.Parameter(torch.zeros(n_u), requires_grad=bias)
            self.item_b = torch.nn.Parameter(torch.zeros(n_i), requires_grad=bias)
            self.global_b = torch.nn.Parameter(torch.zeros(1), requires_grad=bias)

        def logits(self, u: Any, i: Any) -> Any:
            dot = (self.user_f[u] * self.item_f[i]).sum(-1)
            return dot + self.user_b[u] + self.item_b[i] + self.global_b

        def imputed(self, u: Any, i: Any, task: str) -> Any:
            x = self.logits(u, i)
            return torch.sigmoid(x) if task == "binary" else x

    return MF()
