"""ItemKNN: item-item neighbourhood model on a top-k pruned cosine (or BM25-weighted cosine) similarity."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from lumenrec._params import Interval, Options, check_is_fitted
from lumenrec.models._item_item import ItemItemRecommender
from lumenrec.types import IndexArray, Recommendations, ScoreMatrix

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["ItemKNN", "bm25_weight"]

log = logging.getLogger(__name__)

#: Upper bound on the entries of one block of the item-item product (memory bound of ``fit``).
_MAX_BLOCK_ENTRIES = 1 << 23


def bm25_weight(user_items: sp.csr_matrix, k1: float = 1.2, b: float = 0.75) -> sp.csr_matrix:
    """BM25-weight a users × items matrix, as ``implicit``'s ``bm25_weight(user_items.T).T``.

    Items are the "documents" and users the "terms": a user's idf is
    ``log(n_items) - log1p(n_items_of_user)`` and an item's length is its column sum.

    Parameters
    ----------
    user_items : csr_matrix of shape (n_users, n_items), float
    k1, b : float
        BM25 saturation and length-normalisation constants.

    Returns
    -------
    csr_matrix of shape (n_users, n_items), float32
        Same sparsity pattern, weighted values.
    """
    x = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
    n_users, n_items = x.shape
    rows = np.repeat(np.arange(n_users), np.diff(x.indptr))
    idf = np.log(n_items) - np.log1p(np.diff(x.indptr))
    item_len = np.asarray(x.sum(axis=0)).ravel()
    length_norm = (1.0 - b) + b * item_len / item_len.mean()
    x.data = x.data * (k1 + 1.0) / (k1 * length_norm[x.indices] + x.data) * idf[rows]
    return x.astype(np.float32)


def _prune_rows(block: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest stored entries of each row (ties: lowest column index)."""
    counts = np.diff(block.indptr)
    keep = np.ones(block.nnz, dtype=bool)
    for r in np.flatnonzero(counts > k):
        lo, hi = block.indptr[r], block.indptr[r + 1]
        vals = block.data[lo:hi]
        kth = -np.partition(-vals, k - 1)[k - 1]
        row_keep = vals > kth
        ties = np.flatnonzero(vals == kth)[: k - int(row_keep.sum())]
        row_keep[ties] = True
        keep[lo:hi] = row_keep
    rows = np.repeat(np.arange(block.shape[0]), counts)[keep]
    return sp.csr_matrix((block.data[keep], (rows, block.indices[keep])), shape=block.shape)


class ItemKNN(ItemItemRecommender):
    """Item-based nearest neighbours: ``score(u, i) = Σ_j x_uj · S_ji`` over i's top-k neighbours j.

    ``S`` is the cosine similarity between item columns of the (binarised, optionally
    BM25-weighted) users × items matrix, ``S_ij = x_i·x_j / (‖x_i‖‖x_j‖ + shrinkage)``, with a
    zero diagonal. Each column ``S[:, i]`` keeps only the ``n_neighbors`` largest entries: the
    neighbours of item ``i`` that may vote for it. Similarities are computed sparsely in blocks
    of items, so memory stays bounded by the pruned matrix plus one block.

    Stability: stable.

    Parameters
    ----------
    n_neighbors : int, default 100
        Neighbours kept per item (column of ``similarity_``); >= 1.
    similarity : {"cosine", "bm25"}, default "cosine"
        ``"bm25"`` BM25-weights ``user_items`` first (K1=1.2, B=0.75, as ``implicit``'s
        ``bm25_weight``), then takes the cosine. Scoring always uses the (binarised) history.
    shrinkage : float, default 0.0
        Added to the norm product; lowers the similarity of pairs of rarely seen items.
    normalize : bool, default False
        After pruning, rescale each column of ``similarity_`` to sum of absolute values 1, so
        a score is the share of item ``i``'s neighbourhood the user's history covers
        (Deshpande & Karypis 2004). Scores stay linear in the history.
    binarize : bool, default True
        Treat every stored interaction as 1 (for similarities, scoring and fold-in).
    keep_gram : bool, default False
        Keep the co-occurrence matrix ``XᵀX`` (dense float32, ``4·n_items²`` bytes, saved as
        ``itemknn-gram.npy``) so :meth:`forget_users` downdates it and rebuilds only the
        affected neighbour lists (milliseconds on ML-1M) instead of recomputing the
        similarity. Cosine only (BM25 weights depend on every user, so ``"bm25"`` always
        recomputes).

    Attributes
    ----------
    similarity_ : csr_matrix of shape (n_items, n_items), float32
        Pruned item-item weights; ``S[j, i]`` is how much history item ``j`` adds to item ``i``.
    gram_ : ndarray of shape (n_items, n_items), float32
        ``XᵀX`` of the prepared matrix; only with ``keep_gram=True`` and cosine similarity.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> x = sp.csr_matrix([[1, 1, 0], [1, 1, 0], [0, 1, 1]])
    >>> m = ItemKNN(n_neighbors=1).fit(x)
    >>> m.similar_items([0], k=2).items.tolist()
    [[1, -1]]
    """

    _param_constraints: ClassVar[dict[str, Any]] = {
        "n_neighbors": Interval(int, 1, None),
        "similarity": Options(("cosine", "bm25")),
        "shrinkage": Interval(float, 0.0, None),
        "normalize": Options((True, False)),
        "binarize": Options((True, False)),
        "keep_gram": Options((True, False)),
    }
    _fitted_arrays = ("similarity_",)
    #: How :meth:`forget_users` unlearns (see docs/privacy.md, "Erasure").
    _unlearning: ClassVar[str] = "exact"
    _GRAM_FILE: ClassVar[str] = "itemknn-gram.npy"

    def __init__(
        self,
        n_neighbors: int = 100,
        similarity: str = "cosine",
        shrinkage: float = 0.0,
        normalize: bool = False,
        binarize: bool = True,
        keep_gram: bool = False,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.similarity = similarity
        self.shrinkage = shrinkage
        self.normalize = normalize
        self.binarize = binarize
        self.keep_gram = keep_gram

    # -- fitting ---------------------------------------------------------------------------
    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        x = self._prepare(user_items)
        self.__dict__.pop("gram_", None)
        if self.similarity == "bm25":
            x = bm25_weight(x)
        elif self.keep_gram:
            from lumenrec.models.ease import _gram

            self.gram_ = np.ascontiguousarray(
                _gram(x, exact_float32=self.binarize), dtype=np.float32
            )
        n_items = x.shape[1]
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel())
        xt = x.T.tocsr()  # items x users
        step = max(1, _MAX_BLOCK_ENTRIES // n_items)
        blocks = []
        for start in range(0, n_items, step):
            stop = min(start + step, n_items)
            # rows = items j in the block, columns = all items i: row j holds column j of S
            dots = (xt[start:stop] @ x).tocsr()
            dots.sort_indices()
            rows = np.repeat(np.arange(start, stop), np.diff(dots.indptr))
            dots.data = dots.data / (norms[rows] * norms[dots.indices] + self.shrinkage)
            dots.data[dots.indices == rows] = 0.0
            dots.eliminate_zeros()
            blocks.append(_prune_rows(dots, int(self.n_neighbors)))
            log.debug("similarity block %d:%d of %d items", start, stop, n_items)
        neighbours = sp.vstack(blocks, format="csr")  # row i = neighbours of item i
        if self.normalize:
            total = np.asarray(abs(neighbours).sum(axis=1)).ravel()
            scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
            neighbours = sp.csr_matrix(neighbours.multiply(scale[:, None]))
        sim = neighbours.T.tocsr().astype(np.float32)
        sim.sort_indices()
        self.similarity_ = sim

    # -- unlearning ------------------------------------------------------------------------
    def forget_users(self, users: IndexArray) -> None:
        """Remove users and their effect on the model, exactly.

        With ``keep_gram`` (cosine): the users' co-occurrences are subtracted from ``gram_``
        and only the neighbour lists of touched items, or of items a touched item may now
        enter, are rebuilt; every other list keeps its members with values recomputed from
        ``gram_`` (see :mod:`lumenrec.privacy._forget_linear`). Otherwise (BM25, or no
        ``gram_``) the similarity is recomputed from the remaining rows: exact, at the cost
        of a refit. Either way ``similarity_`` equals a refit without the users (bit for
        bit on binary data, float32 rounding otherwise). Their rows leave ``seen_``; the
        other users are renumbered in order.

        Parameters
        ----------
        users : array-like of shape (n,), int
            Dense user indices in ``[0, n_users_)``.
        """
        from lumenrec.privacy._forget_linear import knn_downdate
        from lumenrec.privacy._forget_rows import (
            check_forget_users,
            finish_forget,
            removed_rows,
        )

        idx = check_forget_users(self, users)
        if not len(idx):
            return
        gram = getattr(self, "gram_", None)
        if self.similarity != "cosine" or gram is None:
            finish_forget(self, idx)
            self._fit(self.seen_, np.random.default_rng(0), None)
            return
        if not (gram.flags.c_contiguous and gram.flags.writeable):
            gram = np.array(gram, dtype=np.float32, order="C")
        kept = self.__dict__.get("_neighbours")  # the row-major lists of the last erasure
        self.similarity_, neighbours = knn_downdate(
            self.similarity_,
            gram,
            removed_rows(self, idx),
            n_neighbors=int(self.n_neighbors),
            shrinkage=float(self.shrinkage),
            normalize=bool(self.normalize),
            neighbours=kept[1] if kept is not None and kept[0] is self.similarity_ else None,
        )
        self._neighbours = (self.similarity_, neighbours)
        self.gram_ = gram
        finish_forget(self, idx)

    def _get_files(self) -> dict[str, bytes]:
        from lumenrec.privacy._forget_rows import npy_bytes

        gram = getattr(self, "gram_", None)
        return {} if gram is None else {self._GRAM_FILE: npy_bytes(gram)}

    def _set_files(self, files: dict[str, bytes]) -> None:
        from lumenrec.privacy._forget_rows import npy_load

        if self._GRAM_FILE in files:
            self.gram_ = npy_load(files[self._GRAM_FILE], self._GRAM_FILE)

    # -- scoring ---------------------------------------------------------------------------
    def _weights(self, items: IndexArray | None) -> sp.csr_matrix:
        return self.similarity_ if items is None else self.similarity_[:, items]

    def similar_items(self, items: IndexArray, k: int = 10) -> Recommendations:
        """The kept neighbours of each item (its column of ``similarity_``), best first.

        Parameters
        ----------
        items : array-like of shape (n,), int
        k : int
            List length; padded with item -1 / score -inf past the stored neighbours.

        Returns
        -------
        Recommendations
            ``users`` holds the query items; the item itself is never returned.
        """
        check_is_fitted(self)
        it = self._check_indices(items, self.n_items_, "items")
        by_item = self.similarity_.T.tocsr()  # row i = neighbours of item i

        def rows(block: slice, cand: IndexArray | None) -> ScoreMatrix:
            part = by_item[it[block]]
            dense = np.full(part.shape, np.nan, np.float32)
            r = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
            dense[r, part.indices] = part.data
            return dense

        return self._rank(rows, it, k, None, None, None)
