"""Exact item-side unlearning for implicit ALS by Sherman–Morrison downdates.

The exact item half-step solves ``A_i y_i = b_i`` for every item ``i`` with

    A_i = XᵀX + λI + Σ_{u ∈ N(i)} α|r_ui| x_u x_uᵀ,    b_i = Σ_{u ∈ N(i), r_ui > 0} (1 + α|r_ui|) x_u

over the users' factors ``X``. Removing one user (factor ``x``) changes every ``A_i`` by
``−c_i x xᵀ`` (``c_i = 1`` from the Gram term, plus ``α|r_ui|`` where the user has item ``i``)
and ``b_i`` by ``−β_i x``. With ``H_i = A_i⁻¹``, ``h = H_i x``, ``s = xᵀh`` and ``t = xᵀy_i``:

    y_i' = y_i + h (c_i t − β_i) / (1 − c_i s),     H_i' = H_i + c_i h hᵀ / (1 − c_i s)

so a user leaves in one pass over the inverses (O(n_items · f²), no solve), and the result is
the exact half-step without that user. ``1 − c_i s > 0`` always holds in exact arithmetic
(``A_i' ⪰ λI``); anything else means a corrupt state.

Storage: each ``H_i`` is kept whole (``f × f``) in float32 — half the memory traffic of float64
and fixed-length loops that vectorise (a packed triangle measured 2–3× slower) — while the
solutions ``y_i`` stay float64. Rounding in ``H`` only perturbs each step's small correction,
and :class:`~lumenrec.models.als.ImplicitALS` recomputes the state from scratch every
``REFRESH_EVERY`` erasures so it cannot drift.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange
from numpy.typing import NDArray

from lumenrec.errors import FitError
from lumenrec.models._kernels.als_cg import gram, user_system

__all__ = ["REFRESH_EVERY", "downdate_user", "item_inverses"]

#: Downdates after which the model recomputes its inverses from scratch (float32 hygiene).
REFRESH_EVERY = 1000


def item_inverses(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    data: NDArray[np.floating],
    x: NDArray[np.floating],
    regularization: float,
    alpha: float,
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Every item's normal-equation inverse and its exact solution (the item half-step).

    Parameters
    ----------
    indptr, indices, data
        The items × users CSR of the model's values (as ``ImplicitALS._values`` gives them).
    x : ndarray of shape (n_users, f), float
        User factors.
    regularization, alpha : float
        The model's ``λ`` and ``α``.

    Returns
    -------
    inverses : ndarray of shape (n_items, f, f), float32
        ``A_i⁻¹`` (items without interactions hold ``(XᵀX + λI)⁻¹``).
    solution : ndarray of shape (n_items, f), float64
        ``y_i = A_i⁻¹ b_i`` (zero rows for items without positives).
    """
    f = x.shape[1]
    g = gram(x.astype(np.float64), regularization)
    n = len(indptr) - 1
    inverses = np.empty((n, f, f), np.float32)
    solution = np.zeros((n, f), np.float64)
    g_inv = np.linalg.inv(g)
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        if lo == hi:
            inverses[i] = g_inv
            continue
        a, b = user_system(indices[lo:hi], data[lo:hi], x, g, alpha)
        inv = np.linalg.inv(a)
        inverses[i] = inv
        solution[i] = inv @ b
    # compile the downdate kernel now, so the first erasure does not pay for it
    _downdate(inverses[:0], solution[:0], np.zeros(f), np.zeros(0), np.zeros(0), np.zeros(0, bool))
    return inverses, solution


@numba.njit(parallel=True, nogil=True, fastmath=True, cache=False)
def _downdate(
    inverses: NDArray[np.float32],
    solution: NDArray[np.float64],
    x: NDArray[np.float64],
    coef: NDArray[np.float64],
    beta: NDArray[np.float64],
    bad: NDArray[np.bool_],
) -> None:  # pragma: no cover - compiled
    n, f = solution.shape
    xs = x.astype(np.float32)
    for i in prange(n):
        h = inverses[i]
        hx = np.empty(f, np.float32)
        for a in range(f):  # full rows: fixed-length loops the compiler vectorises
            acc = np.float32(0.0)
            for b in range(f):
                acc += h[a, b] * xs[b]
            hx[a] = acc
        s = 0.0
        t = 0.0
        for a in range(f):
            s += x[a] * hx[a]
            t += x[a] * solution[i, a]
        c = coef[i]
        denom = 1.0 - c * s
        if not denom > 0.0:
            bad[i] = True
            continue
        step = (c * t - beta[i]) / denom
        for a in range(f):
            solution[i, a] += hx[a] * step
        scale = c / denom
        for a in range(f):
            ga = np.float32(scale * hx[a])
            for b in range(f):
                h[a, b] += ga * hx[b]


def downdate_user(
    inverses: NDArray[np.float32],
    solution: NDArray[np.float64],
    factor: NDArray[np.floating],
    cols: NDArray[np.integer],
    values: NDArray[np.floating],
    alpha: float,
) -> None:
    """Remove one user from the item systems, in place (see the module docstring).

    Parameters
    ----------
    inverses : ndarray of shape (n_items, f, f), float32
        ``A_i⁻¹``; updated in place.
    solution : ndarray of shape (n_items, f), float64
        ``y_i``; updated in place.
    factor : ndarray of shape (f,), float
        The user's factor ``x``.
    cols, values : ndarray of shape (nnz,)
        The user's stored items and values (as the model fitted them).
    alpha : float
        The model's ``α``.

    Raises
    ------
    FitError
        A downdate would leave a system that is not positive definite (corrupt state).
    """
    n = solution.shape[0]
    extra = alpha * np.abs(values.astype(np.float64))
    coef = np.ones(n, np.float64)
    coef[cols] += extra
    beta = np.zeros(n, np.float64)
    beta[cols] = np.where(values > 0, 1.0 + extra, 0.0)
    bad = np.zeros(n, np.bool_)
    _downdate(inverses, solution, factor.astype(np.float64), coef, beta, bad)
    if bad.any():
        msg = (
            f"ALS unlearning: {int(bad.sum())} item systems would not stay positive definite "
            "(corrupt unlearning state); refit the model"
        )
        raise FitError(msg)
