"""Text templates: which catalogue fields make an item's text, and how a user profile reads."""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lumenrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["DEFAULT_ITEM_FIELDS", "ItemTextTemplate", "UserProfileTemplate", "format_value"]

log = logging.getLogger(__name__)

#: Fields used when ``ItemTextTemplate(fields=None)`` and the catalogue names none itself.
DEFAULT_ITEM_FIELDS = ("title", "categories", "brand")


def format_value(value: Any) -> str | None:
    """One catalogue cell as text, or None when it is missing or empty.

    Strings are stripped; NaN/None/NA are missing; a list of lists (Amazon category paths)
    becomes ``"A > B; A > C"``, a flat list ``"a, b"``; integral floats lose their ``.0``.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else f"{float(value):g}"
    if isinstance(value, list | tuple | np.ndarray):
        parts = []
        for part in value:
            if isinstance(part, list | tuple | np.ndarray):
                path = [t for t in (format_value(x) for x in part) if t]
                if path:
                    parts.append(" > ".join(path))
            else:
                text = format_value(part)
                if text:
                    parts.append(text)
        nested = any(isinstance(p, list | tuple | np.ndarray) for p in value)
        return ("; " if nested else ", ").join(parts) or None
    return str(value).strip() or None


def _label(name: str, names: Mapping[str, str] | None) -> str:
    return (names or {}).get(name, name.replace("_", " "))


def _catalog_of(data: Any) -> pd.DataFrame:
    catalog = getattr(data, "catalog", data)
    if catalog is None:
        msg = "this dataset has no item catalogue; pass items=... when reading it"
        raise DataError(msg)
    if not isinstance(catalog, pd.DataFrame):
        msg = f"expected a catalogue DataFrame or a Dataset (got {type(data).__name__})"
        raise DataError(msg)
    return catalog


@dataclass(frozen=True)
class ItemTextTemplate:
    """Renders one text per item from catalogue fields, e.g. ``"title: X. brand: Y"``.

    Parameters
    ----------
    fields : sequence of str, optional
        Catalogue columns in the order they appear in the text. None (default) takes
        ``catalog.attrs["text_fields"]`` when the loader set it, else those of
        :data:`DEFAULT_ITEM_FIELDS` (title, categories, brand) that the catalogue has.
        Explicit fields must all exist.
    with_names : bool
        Prefix each value with its field label (``"title: ..."``).
    separator : str
        Between fields.
    name_separator : str
        Between a label and its value.
    names : mapping of str to str, optional
        Labels to use instead of the column names (default: the name, ``_`` → space).

    Examples
    --------
    >>> import pandas as pd
    >>> cat = pd.DataFrame({"title": ["Heat", None], "brand": ["A", "B"]}, index=["i1", "i2"])
    >>> ItemTextTemplate(fields=["title", "brand"]).render(cat)
    ['title: Heat. brand: A', 'brand: B']

    Stability: stable.
    """

    fields: tuple[str, ...] | None = None
    with_names: bool = True
    separator: str = ". "
    name_separator: str = ": "
    names: Mapping[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.fields is not None:
            if isinstance(self.fields, str) or not all(isinstance(f, str) for f in self.fields):
                msg = f"fields must be a list of column names (got {self.fields!r})"
                raise ConfigError(msg)
            if not self.fields:
                msg = "fields is empty; give at least one catalogue column"
                raise ConfigError(msg)
            object.__setattr__(self, "fields", tuple(self.fields))

    def resolve_fields(self, catalog: pd.DataFrame) -> list[str]:
        """The columns :meth:`render` will use for ``catalog`` (see ``fields``)."""
        available = [str(c) for c in catalog.columns]
        if self.fields is not None:
            missing = [f for f in self.fields if f not in catalog.columns]
            if missing:
                msg = f"catalogue has no column(s) {missing}; available: {available}"
                raise DataError(msg)
            return list(self.fields)
        preset = catalog.attrs.get("text_fields")
        if preset:
            return [f for f in preset if f in catalog.columns]
        chosen = [f for f in DEFAULT_ITEM_FIELDS if f in catalog.columns]
        if not chosen:
            msg = (
                f"catalogue has none of the default text fields {list(DEFAULT_ITEM_FIELDS)}; "
                f"pass fields=[...] from: {available}"
            )
            raise DataError(msg)
        return chosen

    def render_row(self, row: Mapping[str, Any], fields: Sequence[str]) -> str:
        """Text of one item from a mapping of field → value."""
        parts = []
        for name in fields:
            text = format_value(row.get(name))
            if text is None:
                continue
            if self.with_names:
                text = f"{_label(name, self.names)}{self.name_separator}{text}"
            parts.append(text)
        return self.separator.join(parts)

    def render(self, catalog: pd.DataFrame | Dataset) -> list[str]:
        """One text per catalogue row, in row order (a Dataset's catalogue is item-aligned).

        Parameters
        ----------
        catalog : DataFrame or Dataset
            Items as rows; missing/empty values are skipped, so an item with no text
            renders as ``""``.

        Returns
        -------
        list of str, length n_items

        Raises
        ------
        DataError
            No catalogue, or an explicit field is not a column.
        """
        frame = _catalog_of(catalog)
        fields = self.resolve_fields(frame)
        columns = [frame[f].to_numpy(dtype=object) for f in fields]
        return (
            [
                self.render_row(dict(zip(fields, values, strict=True)), fields)
                for values in zip(*columns, strict=True)
            ]
            if columns
            else [""] * len(frame)
        )


@dataclass(frozen=True)
class UserProfileTemplate:
    """Renders a user as text: attributes, then titles of their most recent items.

    ``"age: 25. gender: F. recently: Toy Story; Heat"`` — recent titles are most recent
    first, each item once, skipping items without a title.

    Parameters
    ----------
    attributes : sequence of str, optional
        ``user_attributes`` columns to include, in order. None (default) takes every column
        except id-like ones (``id`` and names ending in ``_id``); ``[]`` includes none.
    n_recent : int
        How many recent item titles to include (0 for none).
    title_field : str
        Catalogue column holding the item title.
    with_names : bool
        Prefix attribute values with their names (and the titles with ``recent_label``).
    separator, name_separator : str
        Between parts; between a label and its value.
    recent_label : str
        Label of the recent-items part.
    recent_separator : str
        Between titles.
    names : mapping of str to str, optional
        Attribute labels to use instead of the column names.

    Stability: stable.
    """

    attributes: tuple[str, ...] | None = None
    n_recent: int = 5
    title_field: str = "title"
    with_names: bool = True
    separator: str = ". "
    name_separator: str = ": "
    recent_label: str = "recently"
    recent_separator: str = "; "
    names: Mapping[str, str] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.attributes is not None:
            if isinstance(self.attributes, str):
                msg = f"attributes must be a list of column names (got {self.attributes!r})"
                raise ConfigError(msg)
            object.__setattr__(self, "attributes", tuple(self.attributes))
        if (
            isinstance(self.n_recent, bool)
            or not isinstance(self.n_recent, int)
            or self.n_recent < 0
        ):
            msg = f"n_recent must be a non-negative int (got {self.n_recent!r})"
            raise ConfigError(msg)

    # -- public ----------------------------------------------------------------------------
    def render(self, data: Dataset, users: Sequence[int] | np.ndarray | None = None) -> list[str]:
        """Profiles of dataset users from their attributes and event history.

        Recency follows ``data.timestamps`` when present (ties keep event order), else the
        event order of the log (which is time order for sequence datasets).

        Parameters
        ----------
        data : Dataset
        users : array-like of int, optional
            Dense user indices; default all users.

        Returns
        -------
        list of str, one per user
        """
        n_users = data.n_users
        idx = np.arange(n_users) if users is None else np.asarray(users)
        if idx.ndim != 1 or (idx.size and (not np.issubdtype(idx.dtype, np.integer))):
            msg = (
                f"users must be a 1-D array of int indices (got dtype {idx.dtype}, ndim {idx.ndim})"
            )
            raise DataError(msg)
        if idx.size and (idx.min() < 0 or idx.max() >= n_users):
            msg = f"users must lie in [0, {n_users}) (got {int(idx.min())}..{int(idx.max())})"
            raise DataError(msg)
        titles = self._titles(data.catalog) if self.n_recent else None
        if self.n_recent:
            order = np.arange(data.n_events)
            if data.timestamps is not None:
                order = np.argsort(data.timestamps, kind="stable")
            by_user = order[np.argsort(data.user_idx[order], kind="stable")]
            items_sorted = data.item_idx[by_user]
            bounds = np.searchsorted(data.user_idx[by_user], np.arange(n_users + 1))
        attrs = self._attribute_rows(data.user_attributes, n_users)
        out = []
        for u in idx.tolist():
            recent: list[str] = []
            if titles is not None:
                recent = self._recent(items_sorted[bounds[u] : bounds[u + 1]][::-1], titles)
            out.append(self._compose(attrs[u] if attrs else {}, recent))
        return out

    def render_histories(
        self,
        histories: Sequence[Sequence[Hashable]],
        *,
        catalog: pd.DataFrame | None = None,
        attributes: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None,
    ) -> list[str]:
        """Profiles from explicit pieces (e.g. users that are not in a Dataset yet).

        Parameters
        ----------
        histories : sequence of sequences of item ids
            Per user, external item ids from oldest to newest; ids not in ``catalog`` are
            skipped.
        catalog : DataFrame, optional
            Indexed by item id (or with an ``item_id`` column); needed when ``n_recent > 0``.
        attributes : DataFrame or sequence of mappings, optional
            One row per history, in the same order.

        Returns
        -------
        list of str, one per history
        """
        n = len(histories)
        rows: list[Mapping[str, Any]] = [{}] * n
        if attributes is not None:
            rows = self._attribute_rows(attributes, n) or rows
        lookup: dict[str, str | None] = {}
        if self.n_recent:
            frame = _catalog_of(catalog)
            if "item_id" in frame.columns:
                frame = frame.set_index("item_id")
            values = self._titles(frame)
            lookup = dict(zip((str(i) for i in frame.index), values, strict=True))
        out = []
        for hist, row in zip(histories, rows, strict=True):
            recent: list[str] = []
            if self.n_recent:
                seen: set[str] = set()
                for item in reversed(list(hist)):
                    key = str(item)
                    title = lookup.get(key)
                    if title is None or key in seen:
                        continue
                    seen.add(key)
                    recent.append(title)
                    if len(recent) == self.n_recent:
                        break
            out.append(self._compose(row, recent))
        return out

    # -- internals -------------------------------------------------------------------------
    def _titles(self, catalog: pd.DataFrame | None) -> list[str | None]:
        frame = _catalog_of(catalog)
        if self.title_field not in frame.columns:
            msg = (
                f"catalogue has no column {self.title_field!r} for recent-item titles; "
                f"available: {[str(c) for c in frame.columns]} (or set n_recent=0)"
            )
            raise DataError(msg)
        return [format_value(v) for v in frame[self.title_field].to_numpy(dtype=object)]

    def _recent(self, newest_first: np.ndarray, titles: list[str | None]) -> list[str]:
        out: list[str] = []
        seen: set[int] = set()
        for item in newest_first.tolist():
            if item in seen or titles[item] is None:
                continue
            seen.add(item)
            out.append(titles[item])  # type: ignore[arg-type]
            if len(out) == self.n_recent:
                break
        return out

    def _attribute_rows(
        self, attributes: pd.DataFrame | Sequence[Mapping[str, Any]] | None, n: int
    ) -> list[Mapping[str, Any]]:
        if self.attributes is not None and not self.attributes:
            return []
        if attributes is None:
            if self.attributes:
                msg = (
                    f"attributes {list(self.attributes)} were requested but there are no "
                    "user attributes"
                )
                raise DataError(msg)
            return []
        frame = (
            attributes if isinstance(attributes, pd.DataFrame) else pd.DataFrame(list(attributes))
        )
        if len(frame) != n:
            msg = f"user attributes have {len(frame)} rows but there are {n} users"
            raise DataError(msg)
        cols = self._attribute_columns(frame)
        return frame[cols].to_dict("records") if cols else [{}] * n

    def _attribute_columns(self, frame: pd.DataFrame) -> list[str]:
        if self.attributes is None:
            return [str(c) for c in frame.columns if not (c == "id" or str(c).endswith("_id"))]
        missing = [a for a in self.attributes if a not in frame.columns]
        if missing:
            msg = f"user attributes have no column(s) {missing}; available: {[str(c) for c in frame.columns]}"
            raise DataError(msg)
        return list(self.attributes)

    def _compose(self, attrs: Mapping[str, Any], recent: list[str]) -> str:
        parts = []
        for name, value in attrs.items():
            text = format_value(value)
            if text is None:
                continue
            parts.append(
                f"{_label(name, self.names)}{self.name_separator}{text}"
                if self.with_names
                else text
            )
        if recent:
            titles = self.recent_separator.join(recent)
            parts.append(
                f"{self.recent_label}{self.name_separator}{titles}" if self.with_names else titles
            )
        return self.separator.join(parts)
