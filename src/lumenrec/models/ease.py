"""EASE (Steck 2019): a closed-form linear item-item autoencoder with a zero diagonal."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import lapack

from lumenrec._params import Interval, Options, check_is_fitted
from lumenrec.errors import FitError
from lumenrec.models._item_item import ItemItemRecommender
from lumenrec.types import IndexArray, Recommendations, ScoreMatrix

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["EASE"]

log = logging.getLogger(__name__)


#: Use dense BLAS blocks for XᵀX when Σ_u |items of u|² exceeds this share of n_users·n_items²
#: (sparse products are single-threaded; dense ones are ~200x cheaper per term and threaded).
_DENSE_GRAM_RATIO = 0.003
#: Entries of one dense block of user rows when XᵀX is computed densely (64 MB in float32).
_DENSE_BLOCK_ENTRIES = 1 << 24


def _gram(x: sp.csr_matrix, *, exact_float32: bool) -> NDArray[np.float64]:
    """``XᵀX`` as a dense float64 array, by sparse product or dense blocks of users.

    Parameters
    ----------
    x : csr_matrix of shape (n_users, n_items), float32
    exact_float32 : bool
        ``x`` is binary, so ``XᵀX`` holds integer counts that float32 accumulates exactly
        (below 2**24 users); the products then run in float32, twice as fast.

    Returns
    -------
    ndarray of shape (n_items, n_items), float64
    """
    n_users, n_items = x.shape
    dtype = np.float32 if exact_float32 and n_users < 2**24 else np.float64
    sparse_terms = float(np.square(np.diff(x.indptr).astype(np.float64)).sum())
    ratio = _DENSE_GRAM_RATIO * (1 if dtype is np.float32 else 2)
    dense = sparse_terms > ratio * n_users * float(n_items) ** 2
    log.debug(
        "computing the %dx%d Gram matrix %s", n_items, n_items, "densely" if dense else "sparsely"
    )
    if not dense:
        xs = x.astype(dtype, copy=False)
        return (xs.T @ xs).toarray().astype(np.float64, copy=False)
    gram = np.zeros((n_items, n_items), dtype)
    step = max(1, _DENSE_BLOCK_ENTRIES // n_items)
    for start in range(0, n_users, step):
        block = x[start : start + step].toarray().astype(dtype, copy=False)
        gram += block.T @ block
    return gram.astype(np.float64, copy=False)


class EASE(ItemItemRecommender):
    """Embarrassingly Shallow Autoencoder: ``score(u, i) = Σ_j x_uj · B_ji``.

    ``B`` solves ``min ‖X − XB‖² + λ‖B‖²`` subject to ``diag(B) = 0``, in closed form:
    ``G = XᵀX + λI``, ``P = G⁻¹``, ``B = −P / diag(P)`` (column ``j`` divided by ``P_jj``),
    ``diag(B) = 0``. The Gram matrix and its inverse are float64 (a binarised ``XᵀX`` holds
    integer counts, so it is accumulated exactly in float32 first); ``P`` comes from LAPACK's
    Cholesky factorisation and Cholesky inverse (``dpotrf`` + ``dpotri``: ~n³ flops, half of
    ``np.linalg.inv``'s LU inverse, and no n×n identity right-hand side as ``cho_solve`` would
    need). ``B`` is stored in float32.
    Time is O(n_items³) and memory O(n_items²): fine up to ~20k items.

    Stability: stable.

    Parameters
    ----------
    regularization : float, default 500.0
        The L2 penalty λ (> 0) added to the Gram diagonal.
    binarize : bool, default True
        Treat every stored interaction as 1 (for fitting, scoring and fold-in).

    Attributes
    ----------
    item_weights_ : ndarray of shape (n_items, n_items), float32
        ``B``; ``B[j, i]`` is how much history item ``j`` adds to item ``i``'s score.
    item_diag_ : ndarray of shape (n_items,), float64
        ``diag(P)``, kept (in ``ease-diag.npy``) so :meth:`forget_users` can unlearn exactly.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> x = sp.csr_matrix([[1, 1, 0], [1, 1, 0], [0, 1, 1]])
    >>> m = EASE(regularization=1.0).fit(x)
    >>> m.recommend([2], k=1).items.tolist()
    [[0]]
    """

    _param_constraints: ClassVar[dict[str, Any]] = {
        "regularization": Interval(float, 0.0, None, low_open=True),
        "binarize": Options((True, False)),
    }
    _fitted_arrays = ("item_weights_",)
    #: How :meth:`forget_users` unlearns (see docs/privacy.md, "Erasure").
    _unlearning: ClassVar[str] = "exact"
    _DIAG_FILE: ClassVar[str] = "ease-diag.npy"

    def __init__(self, regularization: float = 500.0, binarize: bool = True) -> None:
        self.regularization = regularization
        self.binarize = binarize

    # -- fitting ---------------------------------------------------------------------------
    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        x = self._prepare(user_items)
        n_items = x.shape[1]
        gram = _gram(x, exact_float32=self.binarize)
        gram[np.diag_indices(n_items)] += float(self.regularization)
        # symmetric: hand LAPACK whichever of gram / gram.T is Fortran-ordered (no copy)
        gram = gram if gram.flags.f_contiguous else gram.T
        chol, info = lapack.dpotrf(gram, lower=False, clean=True, overwrite_a=True)
        if info == 0:
            inv, info = lapack.dpotri(chol, lower=False, overwrite_c=True)
        if info != 0:
            msg = (
                f"EASE could not invert the {n_items}x{n_items} Gram matrix (LAPACK info {info}); "
                "try a larger regularization"
            )
            raise FitError(msg)
        # dpotri fills the upper triangle only; the lower one is zero (clean=True)
        diag = inv.diagonal().copy()
        inv += inv.T
        inv[np.diag_indices(n_items)] = diag
        inv /= -diag[None, :]
        inv[np.diag_indices(n_items)] = 0.0
        self.item_weights_ = np.ascontiguousarray(inv, dtype=np.float32)
        self.item_diag_ = diag

    # -- unlearning ------------------------------------------------------------------------
    def forget_users(self, users: IndexArray) -> None:
        """Remove users and their effect on the model, exactly (no refit).

        A Woodbury downdate of ``P = (XᵀX + λI)⁻¹`` by the users' rows (see
        :mod:`lumenrec.privacy._forget_linear`): O(k·h·n) to form ``V = X_f P`` from the
        users' rows of ``item_weights_`` and one rank-k update of ``item_weights_`` in place
        (O(k·n²), BLAS), instead of the O(n³) refit. ``item_weights_`` then equals a refit
        without the users up to float32 rounding (test: 1e-5 on scores after 100 erasures).
        Their rows leave ``seen_``; the other users are renumbered in order. A model saved
        before ``item_diag_`` existed is refitted on the remaining rows instead (same result).

        Parameters
        ----------
        users : array-like of shape (n,), int
            Dense user indices in ``[0, n_users_)``.
        """
        from lumenrec.privacy._forget_linear import check_positive_definite, ease_downdate
        from lumenrec.privacy._forget_rows import (
            check_forget_users,
            finish_forget,
            removed_rows,
        )

        idx = check_forget_users(self, users)
        if not len(idx):
            return
        diag = getattr(self, "item_diag_", None)
        if diag is None:
            log.info("EASE without item_diag_ (older artifact): refitting on the kept rows")
            finish_forget(self, idx)
            self._fit(self.seen_, np.random.default_rng(0), None)
            return
        check_positive_definite(diag)
        rows = removed_rows(self, idx)
        weights = self.item_weights_
        if not (weights.flags.c_contiguous and weights.flags.writeable):
            weights = np.array(weights, dtype=np.float32, order="C")
        self.item_diag_ = ease_downdate(weights, np.asarray(diag, np.float64), rows)
        self.item_weights_ = weights
        finish_forget(self, idx)

    def _get_files(self) -> dict[str, bytes]:
        from lumenrec.privacy._forget_rows import npy_bytes

        diag = getattr(self, "item_diag_", None)
        return {} if diag is None else {self._DIAG_FILE: npy_bytes(np.asarray(diag, np.float64))}

    def _set_files(self, files: dict[str, bytes]) -> None:
        from lumenrec.privacy._forget_rows import npy_load

        if self._DIAG_FILE in files:
            self.item_diag_ = npy_load(files[self._DIAG_FILE], self._DIAG_FILE)

    # -- scoring ---------------------------------------------------------------------------
    def _weights(self, items: IndexArray | None) -> NDArray[np.float32]:
        return self.item_weights_ if items is None else self.item_weights_[:, items]

    def similar_items(self, items: IndexArray, k: int = 10) -> Recommendations:
        """Items that each item pushes most: its row of ``item_weights_``, best first.

        This is the top of ``score_history`` for a history holding only that item.

        Parameters
        ----------
        items : array-like of shape (n,), int
        k : int
            List length; padded with item -1 / score -inf when ``k >= n_items_``.

        Returns
        -------
        Recommendations
            ``users`` holds the query items; the item itself is never returned.
        """
        check_is_fitted(self)
        it = self._check_indices(items, self.n_items_, "items")

        def rows(block: slice, cand: IndexArray | None) -> ScoreMatrix:
            query = it[block]
            dense = self.item_weights_[query].copy()
            dense[np.arange(len(query)), query] = np.nan
            return dense

        return self._rank(rows, it, k, None, None, None)
