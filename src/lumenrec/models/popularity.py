"""MostPopular: rank items by how many users interacted with them (the baseline floor)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

from lumenrec.models.base import BaseRecommender
from lumenrec.types import IndexArray, ScoreMatrix

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["MostPopular"]


class MostPopular(BaseRecommender):
    """Non-personalised popularity: score(u, i) = number of users with an interaction on i.

    Stability: stable.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> m = MostPopular().fit(sp.csr_matrix([[1, 0, 1], [0, 0, 1]]))
    >>> m.recommend([0], k=2, filter_seen=False).items.tolist()
    [[2, 0]]
    """

    _fitted_arrays = ("item_counts_",)
    #: How :meth:`forget_users` unlearns (see docs/privacy.md, "Erasure").
    _unlearning: ClassVar[str] = "exact"

    def __init__(self) -> None:
        pass

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        self.item_counts_ = np.bincount(user_items.indices, minlength=user_items.shape[1]).astype(
            np.float32
        )

    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        counts = self.item_counts_ if items is None else self.item_counts_[items]
        return np.broadcast_to(counts, (len(users), counts.shape[0]))

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix:
        """Popularity does not depend on history: the same row for every user."""
        counts = self.item_counts_ if items is None else self.item_counts_[np.asarray(items)]
        return np.broadcast_to(counts, (histories.shape[0], counts.shape[0])).astype(np.float32)

    def forget_users(self, users: IndexArray) -> None:
        """Remove users and their effect on the model, exactly (no refit).

        The users' interactions are subtracted from ``item_counts_`` (integer counts, so the
        result is bit-identical to a refit without them); their rows leave ``seen_`` and the
        other users are renumbered in order.

        Parameters
        ----------
        users : array-like of shape (n,), int
            Dense user indices in ``[0, n_users_)``.
        """
        from lumenrec.privacy._forget_rows import check_forget_users, finish_forget

        idx = check_forget_users(self, users)
        if not len(idx):
            return
        rows = self.seen_[idx]
        removed = np.bincount(rows.indices, minlength=self.n_items_).astype(np.float32)
        self.item_counts_ = (self.item_counts_ - removed).astype(np.float32)
        finish_forget(self, idx)
