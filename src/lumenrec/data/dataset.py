"""Dataset: an immutable interaction log with id maps, item catalogue and user attributes."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.data.vocab import IdIndex
from lumenrec.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Dataset"]


class Dataset:
    """Interactions (users × items) plus the id maps and side information around them.

    The event log keeps every input row in input order (time order for sequence data),
    which sequential protocols need. :attr:`matrix` is the canonical CSR view: one entry
    per (user, item); when a pair occurs more than once **the last event's value wins**
    (use :func:`lumenrec.data.io.from_pandas` ``duplicates=`` to choose another policy
    at read time).

    Parameters
    ----------
    users, items : IdIndex
        Vocabularies; every split of a dataset shares them, so indices line up.
    user_idx, item_idx : ndarray of shape (n_events,), int32
        Dense indices of each event.
    ratings : ndarray of shape (n_events,), float32, optional
        Explicit values; None means implicit feedback (value 1).
    timestamps : ndarray of shape (n_events,), int64, optional
        Unix seconds.
    catalog : DataFrame, optional
        Item side information indexed by item id (aligned to ``items`` order).
    user_attributes : DataFrame, optional
        User side information indexed by user id (aligned to ``users`` order).
    name : str
        A label for reports.
    """

    def __init__(
        self,
        users: IdIndex,
        items: IdIndex,
        user_idx: NDArray[np.integer],
        item_idx: NDArray[np.integer],
        ratings: NDArray[np.floating] | None = None,
        timestamps: NDArray[np.integer] | None = None,
        *,
        catalog: pd.DataFrame | None = None,
        user_attributes: pd.DataFrame | None = None,
        name: str = "dataset",
    ) -> None:
        self.users = users
        self.items = items
        self.user_idx = _frozen(np.asarray(user_idx, dtype=np.int32))
        self.item_idx = _frozen(np.asarray(item_idx, dtype=np.int32))
        n = self.user_idx.shape[0]
        if self.item_idx.shape != (n,):
            msg = f"user_idx has {n} entries but item_idx has {self.item_idx.shape[0]}"
            raise DataError(msg)
        self.ratings = None if ratings is None else _frozen(np.asarray(ratings, np.float32))
        self.timestamps = None if timestamps is None else _frozen(np.asarray(timestamps, np.int64))
        for label, arr in (("ratings", self.ratings), ("timestamps", self.timestamps)):
            if arr is not None and arr.shape != (n,):
                msg = f"{label} has {arr.shape[0]} entries but there are {n} events"
                raise DataError(msg)
        if n and (self.user_idx.min() < 0 or self.user_idx.max() >= len(users)):
            msg = f"user_idx must lie in [0, {len(users)})"
            raise DataError(msg)
        if n and (self.item_idx.min() < 0 or self.item_idx.max() >= len(items)):
            msg = f"item_idx must lie in [0, {len(items)})"
            raise DataError(msg)
        if self.ratings is not None and not np.isfinite(self.ratings).all():
            msg = "ratings contain NaN or inf; drop or fill those rows first"
            raise DataError(msg)
        self.catalog = catalog
        self.user_attributes = user_attributes
        self.name = name
        self._matrix: sp.csr_matrix | None = None

    # -- sizes -----------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_events(self) -> int:
        return int(self.user_idx.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
            f"n_events={self.n_events}, ratings={self.ratings is not None}, "
            f"timestamps={self.timestamps is not None})"
        )

    # -- views -----------------------------------------------------------------------------
    @property
    def matrix(self) -> sp.csr_matrix:
        """CSR of shape (n_users, n_items), float32, sorted indices, one entry per pair."""
        if self._matrix is None:
            self._matrix = events_to_csr(
                self.user_idx, self.item_idx, self.ratings, (self.n_users, self.n_items)
            )
        return self._matrix

    def fingerprint(self) -> str:
        """sha256 over the event arrays and vocabularies (a data checksum for reports)."""
        h = hashlib.sha256()
        for arr in (self.user_idx, self.item_idx, self.ratings, self.timestamps):
            h.update(b"-" if arr is None else np.ascontiguousarray(arr).tobytes())
        h.update("\x1f".join(self.users.ids).encode())
        h.update("\x1f".join(self.items.ids).encode())
        return h.hexdigest()

    def subset(
        self, mask: NDArray[np.bool_] | NDArray[np.integer], name: str | None = None
    ) -> Dataset:
        """A Dataset with the selected events (boolean mask or positions), same vocabularies."""
        sel = np.asarray(mask)
        if sel.dtype == bool and sel.shape != (self.n_events,):
            msg = f"mask has shape {sel.shape} but there are {self.n_events} events"
            raise DataError(msg)
        return Dataset(
            self.users,
            self.items,
            self.user_idx[sel],
            self.item_idx[sel],
            None if self.ratings is None else self.ratings[sel],
            None if self.timestamps is None else self.timestamps[sel],
            catalog=self.catalog,
            user_attributes=self.user_attributes,
            name=self.name if name is None else name,
        )

    def binarize(self, threshold: float | None = None) -> Dataset:
        """Implicit-feedback copy: keep events with rating ≥ ``threshold`` (all if None), value 1."""
        keep = np.ones(self.n_events, dtype=bool)
        if threshold is not None:
            if self.ratings is None:
                msg = "binarize(threshold=...) needs ratings, but this dataset has none"
                raise DataError(msg)
            keep = self.ratings >= threshold
        out = self.subset(keep)
        out.ratings = None
        out._matrix = None
        return out

    def to_frame(self) -> pd.DataFrame:
        """Events as a DataFrame with external ids: user_id, item_id[, rating][, timestamp]."""
        import pandas as pd

        cols = {
            "user_id": self.users.ids[self.user_idx],
            "item_id": self.items.ids[self.item_idx],
        }
        if self.ratings is not None:
            cols["rating"] = self.ratings
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        return pd.DataFrame(cols)

    def item_text(
        self, fields: list[str] | None = None, template: Literal["fields"] = "fields"
    ) -> list[str]:
        """One text per item (``"field: value. field: value"``) from catalogue columns."""
        import pandas as pd

        if self.catalog is None:
            msg = "this dataset has no item catalogue; pass items=... when reading it"
            raise DataError(msg)
        cols = (
            fields
            or self.catalog.attrs.get("text_fields")
            or [
                c
                for c in self.catalog.columns
                if self.catalog[c].dtype == object or pd.api.types.is_string_dtype(self.catalog[c])
            ]
        )
        missing = [c for c in cols if c not in self.catalog.columns]
        if missing:
            msg = f"catalogue has no column(s) {missing}; available: {list(self.catalog.columns)}"
            raise DataError(msg)
        texts = []
        for row in self.catalog[cols].itertuples(index=False):
            parts = [
                f"{c}: {v}" for c, v in zip(cols, row, strict=True) if isinstance(v, str) and v
            ]
            texts.append(". ".join(parts))
        return texts


def events_to_csr(
    user_idx: NDArray[np.int32],
    item_idx: NDArray[np.int32],
    values: NDArray[np.float32] | None,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """CSR (float32, sorted indices) with one entry per pair; the last event's value wins."""
    n_users, n_items = shape
    key = user_idx.astype(np.int64) * max(n_items, 1) + item_idx
    # last occurrence of each key: unique on the reversed array
    rev_unique, rev_pos = np.unique(key[::-1], return_index=True)
    last = len(key) - 1 - rev_pos
    vals = np.ones(len(last), np.float32) if values is None else values[last].astype(np.float32)
    rows = (rev_unique // max(n_items, 1)).astype(np.int32)
    cols = (rev_unique % max(n_items, 1)).astype(np.int32)
    mat = sp.csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float32)
    mat.sort_indices()
    return mat


def _frozen(arr: NDArray) -> NDArray:
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return arr
