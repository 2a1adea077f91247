"""Exact item-side unlearning of :class:`~lumenrec.models.als.ImplicitALS` (a mixin).

``forget_users`` removes users and re-solves every item factor exactly without them, by
Sherman–Morrison downdates of per-item inverses kept beside the model
(:mod:`lumenrec.models._kernels.als_unlearn`); see docs/privacy.md, "Erasure".
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from lumenrec._params import check_is_fitted
from lumenrec.errors import FitError
from lumenrec.models._kernels.als_cg import least_squares_exact

if TYPE_CHECKING:
    from collections.abc import Callable

    import scipy.sparse as sp

    from lumenrec.types import IndexArray

__all__ = ["ALSUnlearning"]

log = logging.getLogger(__name__)


class ALSUnlearning:
    """``forget_users``, ``prepare_unlearning`` and ``item_halfstep`` for ImplicitALS.

    Expects the host to define ``n_factors``, ``regularization``, ``alpha``, ``_values`` and
    the fitted ``user_factors_``, ``item_factors_``, ``seen_``, ``n_items_``.
    """

    _INVERSES_FILE: ClassVar[str] = "als-item-inverses.npy"
    _SOLUTION_FILE: ClassVar[str] = "als-item-solution.npy"
    item_inverses_: Any
    item_solution_: Any
    unlearning_steps_: int
    user_factors_: Any
    item_factors_: Any
    seen_: Any
    n_items_: int
    n_factors: int
    regularization: float
    alpha: float
    _values: Callable[[sp.csr_matrix], sp.csr_matrix]

    def forget_users(self, users: IndexArray) -> None:
        """Remove users: drop their factor rows and refit every item factor exactly.

        The item factors become the exact item half-step without the users —
        ``(X'ᵀX' + λI + X'ᵀ(C_i − I)X') y_i = X'ᵀ C_i p_i`` over the *remaining* users'
        factors ``X'``. The first erasure after a fit or load prepares every item's inverse
        ``A_i⁻¹`` (:meth:`prepare_unlearning`, about one item half-step); each user then
        leaves by a Sherman–Morrison downdate of those inverses, O(n_items · f²) and no solve
        (:mod:`lumenrec.models._kernels.als_unlearn`). The inverses are saved with the model.
        The result holds no term of the forgotten users' data or factors; it equals the
        "warm retrain" that ends with that half-step (same final user factors), not a
        retrain from a random start: the other users' factors were fitted against item
        factors that had seen the users, a second-order influence this step does not undo
        (benchmarks/bench_erasure.py measures the gap to a full retrain).

        Parameters
        ----------
        users : array-like of shape (n,), int
            Dense user indices in ``[0, n_users_)``.
        """
        from lumenrec.models._kernels.als_unlearn import REFRESH_EVERY, downdate_user
        from lumenrec.privacy._forget_rows import (
            check_forget_users,
            drop_rows,
            finish_forget,
        )

        idx = check_forget_users(self, users)
        if not len(idx):
            return
        f = int(self.n_factors)
        inverses = getattr(self, "item_inverses_", None)
        if (
            inverses is None
            or inverses.shape != (self.n_items_, f, f)
            or self.unlearning_steps_ >= REFRESH_EVERY
        ):
            self.prepare_unlearning()
        inverses, solution = self.item_inverses_, self.item_solution_
        rows = self._values(self.seen_[idx])
        try:
            for a, u in enumerate(idx):
                lo, hi = rows.indptr[a], rows.indptr[a + 1]
                downdate_user(
                    inverses,
                    solution,
                    self.user_factors_[u],
                    rows.indices[lo:hi],
                    rows.data[lo:hi],
                    float(self.alpha),
                )
            self.unlearning_steps_ += len(idx)
        except FitError:  # a corrupt state: solve the half-step from scratch instead
            log.warning("ALS unlearning state was inconsistent; re-solving the item half-step")
            self.item_inverses_ = None
        self.user_factors_ = drop_rows(self.user_factors_, idx)
        finish_forget(self, idx)
        if self.item_inverses_ is None:
            self.prepare_unlearning()
        self.item_factors_ = np.ascontiguousarray(self.item_solution_, dtype=np.float32)

    def prepare_unlearning(self) -> None:
        """Compute every item's ``A_i⁻¹`` and exact solution, so erasures are downdates.

        Sets ``item_inverses_`` (shape (n_items_, f, f), float32) and ``item_solution_``
        (shape (n_items_, f), float64). Costs about one exact item half-step;
        :meth:`forget_users` calls it when needed, and again every ``REFRESH_EVERY`` (1000)
        erasures so float32 rounding in the inverses cannot accumulate.
        """
        from lumenrec.models._kernels.als_unlearn import item_inverses

        check_is_fitted(self)
        ciu = self._item_rows()
        self.item_inverses_, self.item_solution_ = item_inverses(
            ciu.indptr,
            ciu.indices,
            ciu.data,
            self.user_factors_,
            self.regularization,
            self.alpha,
        )
        self.unlearning_steps_ = 0

    def _get_files(self) -> dict[str, bytes]:
        from lumenrec.privacy._forget_rows import npy_bytes

        if getattr(self, "item_inverses_", None) is None:
            return {}
        return {
            self._INVERSES_FILE: npy_bytes(self.item_inverses_),
            self._SOLUTION_FILE: npy_bytes(self.item_solution_),
        }

    def _set_files(self, files: dict[str, bytes]) -> None:
        from lumenrec.privacy._forget_rows import npy_load

        if self._INVERSES_FILE in files and self._SOLUTION_FILE in files:
            inverses = npy_load(files[self._INVERSES_FILE], self._INVERSES_FILE)
            solution = npy_load(files[self._SOLUTION_FILE], self._SOLUTION_FILE)
            # writable copies: erasure downdates them in place
            self.item_inverses_ = np.array(inverses, dtype=np.float32, order="C")
            self.item_solution_ = np.array(solution, dtype=np.float64, order="C")
            self.unlearning_steps_ = 0  # the refresh count restarts at load

    def item_halfstep(self) -> NDArray[np.float32]:
        """The exact item half-step: item factors solved against ``user_factors_`` and ``seen_``.

        Returns
        -------
        ndarray of shape (n_items_, n_factors), float32
            Zero rows for items without interactions.
        """
        check_is_fitted(self)
        ciu = self._item_rows()
        y = least_squares_exact(
            ciu.indptr,
            ciu.indices,
            ciu.data,
            self.user_factors_,
            self.regularization,
            self.alpha,
        )
        return np.ascontiguousarray(y, dtype=np.float32)

    def _item_rows(self) -> sp.csr_matrix:
        """Items × users CSR of the model's values over ``seen_`` (sorted indices)."""
        ciu = self._values(self.seen_).T.tocsr()
        ciu.sort_indices()
        return ciu
