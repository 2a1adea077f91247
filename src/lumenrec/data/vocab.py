"""IdIndex: a frozen two-way map between external string ids and dense int32 indices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import DataError, UnknownIdError

__all__ = ["IdIndex"]


class IdIndex:
    """External ids (stored as ``str``) ↔ dense ``int32`` indices, in first-seen order.

    Parameters
    ----------
    ids : sequence of str or int
        Distinct ids; position ``i`` gets index ``i``. Ids are converted with ``str``.
    name : str
        What the ids are (``"user"``/``"item"``), used in error messages.
    """

    __slots__ = ("_ids", "_lookup", "name")

    def __init__(self, ids: Iterable[object], name: str = "id") -> None:
        arr = np.asarray([str(i) for i in ids], dtype=object)
        lookup = {v: i for i, v in enumerate(arr)}
        if len(lookup) != len(arr):
            dup = next(v for v in arr if (arr == v).sum() > 1)
            msg = f"{name} ids must be distinct (got duplicate {dup!r})"
            raise DataError(msg)
        self._ids: NDArray[np.object_] = arr
        self._ids.setflags(write=False)
        self._lookup = lookup
        self.name = name

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return str(external_id) in self._lookup

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdIndex) and np.array_equal(self._ids, other._ids)

    def __hash__(self) -> int:  # pragma: no cover - identity is by content
        return hash(tuple(self._ids))

    def __repr__(self) -> str:
        return f"IdIndex(name={self.name!r}, n={len(self)})"

    @property
    def ids(self) -> NDArray[np.object_]:
        """Read-only array of external ids, shape (n,), object (str)."""
        return self._ids

    def index(
        self, external_ids: object, *, missing: Literal["raise", "ignore"] = "raise"
    ) -> NDArray[np.int32]:
        """Indices of ``external_ids`` (shape (n,), int32).

        Unknown ids raise :class:`UnknownIdError` or, with ``missing="ignore"``, map to -1.
        """
        values = [external_ids] if isinstance(external_ids, str | int) else external_ids
        out = np.empty(len(values), dtype=np.int32)  # type: ignore[arg-type]
        get = self._lookup.get
        for pos, v in enumerate(values):  # type: ignore[arg-type]
            idx = get(str(v), -1)
            if idx < 0 and missing == "raise":
                msg = f"unknown {self.name} {str(v)!r} (not in the {len(self)} known {self.name}s)"
                raise UnknownIdError(msg)
            out[pos] = idx
        return out

    def lookup(self, indices: Sequence[int] | NDArray[np.integer]) -> NDArray[np.object_]:
        """External ids for dense ``indices``; -1 gives None."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.max() >= len(self) or idx.min() < -1):
            msg = f"{self.name} index out of range [0, {len(self)}): {idx.max()}"
            raise DataError(msg)
        out = self._ids[np.where(idx < 0, 0, idx)] if len(self) else np.empty(idx.shape, object)
        out = np.array(out, dtype=object)
        out[idx < 0] = None
        return out

    def extend(self, new_ids: Iterable[object]) -> IdIndex:
        """A new IdIndex with unseen ``new_ids`` appended (existing indices unchanged)."""
        extra = [str(i) for i in dict.fromkeys(str(x) for x in new_ids) if str(i) not in self]
        return IdIndex(list(self._ids) + extra, name=self.name)
