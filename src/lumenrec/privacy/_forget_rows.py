"""Row bookkeeping shared by every model's ``forget_users``: validating the forgotten users,
dropping their rows from ``seen_`` and per-user arrays, and small ``.npy`` blobs for the
statistics that exact unlearning keeps beside a model (no pickle)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import check_is_fitted
from lumenrec.errors import ArtifactError, DataError
from lumenrec.types import IndexArray

__all__ = [
    "check_forget_users",
    "drop_rows",
    "drop_user_arrays",
    "finish_forget",
    "npy_bytes",
    "npy_load",
]


def check_forget_users(model: Any, users: Any) -> IndexArray:
    """Validated, sorted, distinct dense user indices of a fitted model (not all of them).

    Parameters
    ----------
    model : BaseRecommender
        A fitted model.
    users : array-like of shape (n,), int
        Dense user indices in ``[0, model.n_users_)``.

    Returns
    -------
    ndarray of shape (m,), int64
        Sorted distinct indices (``m <= n``).

    Raises
    ------
    DataError
        Bad dtype/shape, an index out of range, or every user of the model (a model must keep
        at least one training row).
    """
    check_is_fitted(model)
    idx = np.unique(model._check_indices(users, model.n_users_, "users").astype(np.int64))
    if len(idx) >= model.n_users_:
        msg = f"cannot forget all {model.n_users_} users of a model; train a new one instead"
        raise DataError(msg)
    return idx


def drop_rows(matrix: Any, rows: IndexArray) -> Any:
    """``matrix`` without ``rows`` (other rows keep their order).

    Parameters
    ----------
    matrix : csr_matrix or ndarray of shape (n, ...)
    rows : ndarray of shape (m,), int
        Sorted distinct row indices to remove.

    Returns
    -------
    csr_matrix or ndarray of shape (n - m, ...), same dtype
        A CSR input keeps sorted indices and its stored values (a canonical copy).
    """
    n = matrix.shape[0]
    keep = np.ones(n, dtype=bool)
    keep[rows] = False
    if sp.issparse(matrix):
        csr = sp.csr_matrix(matrix)
        # copy the runs between the removed rows (slices, not a boolean mask over every entry)
        starts, stops = csr.indptr[rows], csr.indptr[np.asarray(rows) + 1]
        run_lo = np.concatenate(([0], stops))
        run_hi = np.concatenate((starts, [csr.indptr[-1]]))
        runs = [(lo, hi) for lo, hi in zip(run_lo.tolist(), run_hi.tolist(), strict=True)]
        data = np.concatenate([csr.data[lo:hi] for lo, hi in runs])
        indices = np.concatenate([csr.indices[lo:hi] for lo, hi in runs])
        lengths = np.diff(csr.indptr)[keep]
        indptr = np.concatenate(([0], np.cumsum(lengths))).astype(csr.indptr.dtype)
        out = sp.csr_matrix((data, indices, indptr), shape=(int(keep.sum()), csr.shape[1]))
        out.has_sorted_indices = csr.has_sorted_indices
        return out
    return np.ascontiguousarray(np.asarray(matrix)[keep])


def drop_user_arrays(model: Any, users: IndexArray, names: tuple[str, ...]) -> list[str]:
    """Drop the ``users`` rows of the named per-user arrays (those with ``n_users_`` rows).

    Returns
    -------
    list of str
        The arrays that were changed.
    """
    changed = []
    for name in names:
        value = getattr(model, name, None)
        if value is None or not hasattr(value, "shape") or not value.shape:
            continue
        if value.shape[0] != model.n_users_:
            continue
        setattr(model, name, drop_rows(value, users))
        changed.append(name)
    return changed


def finish_forget(model: Any, users: IndexArray) -> None:
    """Drop the users' ``seen_`` rows and shrink ``n_users_`` (the last step of every model)."""
    model.seen_ = drop_rows(model.seen_, users)
    model.n_users_ = int(model.n_users_) - len(users)


def removed_rows(model: Any, users: IndexArray) -> sp.csr_matrix:
    """The forgotten users' training rows as the model prepares them for fitting.

    Returns
    -------
    csr_matrix of shape (len(users), n_items_), float32
    """
    if len(users) == 0:
        return sp.csr_matrix((0, model.n_items_), dtype=np.float32)
    rows = model.seen_[users]
    prepare = getattr(model, "_prepare", None)
    return prepare(rows) if prepare is not None else sp.csr_matrix(rows, dtype=np.float32)


def npy_bytes(array: NDArray[Any]) -> bytes:
    """An array as ``.npy`` bytes (``allow_pickle=False``)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def npy_load(blob: bytes, name: str) -> NDArray[Any]:
    """Read ``.npy`` bytes written by :func:`npy_bytes` (no pickle).

    Raises
    ------
    ArtifactError
        The bytes are not a plain ``.npy`` array.
    """
    try:
        return np.load(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError) as err:
        msg = f"{name} is corrupt: {err}"
        raise ArtifactError(msg) from err
