"""Shared machinery of linear item-item models (score = history @ W): EASE and ItemKNN."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import check_is_fitted
from lumenrec.errors import DataError
from lumenrec.models.base import BaseRecommender
from lumenrec.types import IndexArray, ScoreMatrix

__all__ = ["ItemItemRecommender"]


class ItemItemRecommender(BaseRecommender):
    """A model whose score is linear in the user's history: ``score = x_u @ W[:, items]``.

    Subclasses set ``binarize`` and implement :meth:`_weights` (columns of the
    n_items × n_items weight matrix, dense or sparse). Scoring, fold-in and exact
    per-history-item contributions follow from that.
    """

    binarize: bool

    def _weights(self, items: IndexArray | None) -> NDArray[np.float32] | sp.csr_matrix:
        raise NotImplementedError

    def _prepare(self, user_items: sp.spmatrix) -> sp.csr_matrix:
        """The history matrix used for scoring: canonical, binarised when ``binarize``."""
        x = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
        x.sum_duplicates()
        x.eliminate_zeros()
        if self.binarize:
            x.data[:] = 1.0
        return x

    def _product(self, hist: sp.csr_matrix, items: IndexArray | None) -> ScoreMatrix:
        out = hist @ self._weights(items)
        return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float32)

    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        return self._product(self._prepare(self.seen_[users]), items)

    def _check_history(self, histories: Any) -> sp.csr_matrix:
        hist = sp.csr_matrix(histories, dtype=np.float32)
        if hist.ndim != 2 or hist.shape[1] != self.n_items_:
            msg = f"histories must have {self.n_items_} columns (got shape {hist.shape})"
            raise DataError(msg)
        return self._prepare(hist)

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix:
        """Fold-in scores for users known only by their histories (no refit).

        Parameters
        ----------
        histories : sparse matrix of shape (n, n_items_), float
            One row per user; binarised when ``binarize``.
        items : array-like of shape (m,), int, optional
            Items to score; all items when omitted.

        Returns
        -------
        ndarray of shape (n, m or n_items_), float32
            ``histories @ W``; equals :meth:`score` for a training user's row.
        """
        check_is_fitted(self)
        hist = self._check_history(histories)
        it = None if items is None else self._check_indices(items, self.n_items_, "items")
        return self._product(hist, it)

    def explain_contributions(
        self, user_history_row: Any, item: int
    ) -> tuple[IndexArray, NDArray[np.float64]]:
        """Split a score into per-history-item contributions ``x_uj · W_ji`` (they sum to it).

        Parameters
        ----------
        user_history_row : sparse matrix of shape (1, n_items_) or array-like of shape (n_items_,)
            The user's history (binarised when ``binarize``).
        item : int
            The scored item.

        Returns
        -------
        history_items : ndarray of shape (h,), int32
            The history items, by descending contribution (ties: lower index first).
        contributions : ndarray of shape (h,), float64
            Their contributions; ``contributions.sum()`` equals the item's score.
        """
        hist_items, contrib = self.explain_many(user_history_row, np.asarray([item]))
        order = np.lexsort((hist_items, -contrib[0]))
        return hist_items[order], contrib[0][order]

    def explain_many(
        self, user_history_row: Any, items: Any
    ) -> tuple[IndexArray, NDArray[np.float64]]:
        """:meth:`explain_contributions` for several items at once, in column order.

        Parameters
        ----------
        user_history_row : sparse matrix of shape (1, n_items_) or array-like of shape (n_items_,)
        items : array-like of shape (m,), int

        Returns
        -------
        history_items : ndarray of shape (h,), int32
            The history items, in column order.
        contributions : ndarray of shape (m, h), float64
            Row ``j`` sums to the score of ``items[j]``.
        """
        check_is_fitted(self)
        row = user_history_row if sp.issparse(user_history_row) else np.atleast_2d(user_history_row)
        hist = self._check_history(row)
        if hist.shape[0] != 1:
            msg = f"user_history_row must be a single row (got {hist.shape[0]} rows)"
            raise DataError(msg)
        it = self._check_indices(items, self.n_items_, "items")
        hist_items = hist.indices.astype(np.int32)
        block = self._weights(it)[hist_items]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        values = hist.data.astype(np.float64)[:, None]
        return hist_items, (values * block.astype(np.float64)).T
