"""Readers: pandas DataFrames, CSV and Parquet files → :class:`Dataset`, with clear errors.

Default columns are ``user_id, item_id, rating, timestamp``; rename them with ``col_*``.
``rating`` and ``timestamp`` are optional. Duplicate (user, item) rows follow
``duplicates``: ``"keep"`` (default: every event stays in the log, the matrix takes the
last value), ``"last"``/``"first"`` (drop the other rows), ``"sum"``/``"max"`` (merge the
values) or ``"error"``. The column checks are in :mod:`lumenrec.data._io_clean`.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from lumenrec.data._io_clean import _clean_ids, _clean_ratings, _clean_timestamps
from lumenrec.data.dataset import Dataset
from lumenrec.data.vocab import IdIndex
from lumenrec.errors import DataError
from lumenrec.types import PathLike

__all__ = ["from_pandas", "read_catalog", "read_interactions", "read_table"]

log = logging.getLogger(__name__)
Duplicates = Literal["keep", "last", "first", "sum", "max", "error"]
_DUPLICATES = ("keep", "last", "first", "sum", "max", "error")


def from_pandas(
    df: pd.DataFrame,
    *,
    col_user: str = "user_id",
    col_item: str = "item_id",
    col_rating: str | None = "rating",
    col_timestamp: str | None = "timestamp",
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    duplicates: Duplicates = "keep",
    source: str = "<DataFrame>",
    name: str = "dataset",
) -> Dataset:
    """Build a :class:`Dataset` from a DataFrame of events.

    Parameters
    ----------
    df : DataFrame
        One row per event; ``col_user`` and ``col_item`` are required. ``col_rating`` and
        ``col_timestamp`` are used when present (set them to None to ignore).
    items : DataFrame, optional
        Item catalogue with an ``item_id`` column (or index) plus text/metadata columns.
        Catalogue items that never occur in ``df`` are added to the vocabulary (they are
        the cold items a content model can still recommend).
    users : DataFrame, optional
        User attributes with a ``user_id`` column (or index).
    duplicates : {"keep", "last", "first", "sum", "max", "error"}
        Policy for repeated (user, item) rows (see module docs).
    source : str
        File name used in error messages.

    Raises
    ------
    DataError
        Missing columns, empty data, NaN ids, non-finite ratings, unparsable timestamps.
    """
    if duplicates not in _DUPLICATES:
        msg = f"duplicates must be one of {list(_DUPLICATES)} (got {duplicates!r})"
        raise DataError(msg)
    if not isinstance(df, pd.DataFrame):
        if hasattr(df, "to_pandas"):
            df = df.to_pandas()
        else:
            msg = f"{source}: expected a pandas DataFrame (got {type(df).__name__})"
            raise DataError(msg)
    required = [col_user, col_item]
    missing = [c for c in required if c not in df.columns]
    if missing:
        msg = (
            f"{source}: missing column(s) {missing}; found columns {list(map(str, df.columns))}. "
            f"Rename them or pass col_user=/col_item= (CLI: --col-user/--col-item)"
        )
        raise DataError(msg)
    if len(df) == 0:
        msg = f"{source}: no rows; an interactions file needs at least one event"
        raise DataError(msg)
    has_rating = col_rating is not None and col_rating in df.columns
    has_time = col_timestamp is not None and col_timestamp in df.columns
    columns = list(map(str, df.columns))
    user_ids = _clean_ids(df[col_user], col_user, source, columns)
    item_ids = _clean_ids(df[col_item], col_item, source, columns)
    ratings = _clean_ratings(df[col_rating], col_rating, source, columns) if has_rating else None
    times = (
        _clean_timestamps(df[col_timestamp], col_timestamp, source, columns) if has_time else None
    )

    frame = pd.DataFrame({"u": user_ids, "i": item_ids})
    if ratings is not None:
        frame["r"] = ratings
    if times is not None:
        frame["t"] = times
    frame = _apply_duplicates(frame, duplicates, source)

    catalog = _index_frame(items, "item_id", "items") if items is not None else None
    user_attrs = _index_frame(users, "user_id", "users") if users is not None else None
    user_vocab = IdIndex(pd.unique(frame["u"]), name="user")
    extra_items = [] if catalog is None else list(catalog.index)
    item_vocab = IdIndex(
        pd.unique(pd.concat([frame["i"], pd.Series(extra_items, dtype=object)])), name="item"
    )
    if catalog is not None:
        catalog = catalog.reindex(pd.Index(item_vocab.ids, name="item_id"))
    if user_attrs is not None:
        user_attrs = user_attrs.reindex(pd.Index(user_vocab.ids, name="user_id"))
    u_idx = pd.Index(user_vocab.ids).get_indexer(frame["u"]).astype(np.int32)
    i_idx = pd.Index(item_vocab.ids).get_indexer(frame["i"]).astype(np.int32)
    return Dataset(
        user_vocab,
        item_vocab,
        u_idx,
        i_idx,
        frame["r"].to_numpy(np.float32) if "r" in frame else None,
        frame["t"].to_numpy(np.int64) if "t" in frame else None,
        catalog=catalog,
        user_attributes=user_attrs,
        name=name,
    )


def read_table(path: PathLike, *, what: str = "file", sep: str | None = None) -> pd.DataFrame:
    """Read a CSV/TSV (delimiter sniffed, UTF-8 with or without BOM) or Parquet file."""
    p = Path(os.fspath(path))
    if not p.exists():
        msg = f"{what} {p} does not exist; check the path"
        raise DataError(msg)
    if p.is_dir():
        msg = f"{what} {p} is a directory; pass a .csv, .tsv or .parquet file"
        raise DataError(msg)
    suffix = "".join(p.suffixes[-2:]).lower()
    if p.stat().st_size == 0:
        msg = f"{what} {p} is empty; it needs a header row and at least one event"
        raise DataError(msg)
    try:
        if suffix.endswith(".parquet") or suffix.endswith(".pq"):
            return pd.read_parquet(p)
        if sep is None:
            sep = "\t" if ".tsv" in suffix else _sniff_delimiter(p)
        return pd.read_csv(
            p,
            sep=sep,
            engine="python",
            encoding="utf-8-sig",
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
    except UnicodeDecodeError as err:
        msg = f"{what} {p} is not valid UTF-8 (byte {err.start}); re-save it as UTF-8"
        raise DataError(msg) from err
    except pd.errors.EmptyDataError as err:
        msg = f"{what} {p} is empty; it needs a header row and at least one event"
        raise DataError(msg) from err
    except (pd.errors.ParserError, csv.Error, ValueError, OSError) as err:
        msg = f"{what} {p} could not be parsed ({type(err).__name__}: {err}); is it CSV/TSV or Parquet?"
        raise DataError(msg) from err


def _sniff_delimiter(path: Path) -> str:
    """Guess the delimiter among , \\t ; | (an unrestricted sniff may pick a letter)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        sample = fh.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return ","  # a single column: nothing to split on


def read_interactions(
    path: PathLike,
    *,
    items: PathLike | pd.DataFrame | None = None,
    users: PathLike | pd.DataFrame | None = None,
    **kwargs: object,
) -> Dataset:
    """Read an interactions file (CSV/TSV/Parquet) and optional item/user files into a Dataset."""
    df = read_table(path, what="interactions file")
    item_df = read_catalog(items) if isinstance(items, str | os.PathLike) else items
    user_df = (
        read_table(users, what="users file") if isinstance(users, str | os.PathLike) else users
    )
    kwargs.setdefault("name", Path(os.fspath(path)).stem)
    return from_pandas(df, items=item_df, users=user_df, source=str(path), **kwargs)  # type: ignore[arg-type]


def read_catalog(path: PathLike) -> pd.DataFrame:
    """Read an item catalogue file; it must have an ``item_id`` column."""
    df = read_table(path, what="items file")
    if "item_id" not in df.columns:
        msg = f"items file {path}: missing column 'item_id'; found columns {list(df.columns)}"
        raise DataError(msg)
    return df


def _apply_duplicates(frame: pd.DataFrame, policy: str, source: str) -> pd.DataFrame:
    dup = frame.duplicated(["u", "i"], keep=False)
    if not dup.any() or policy == "keep":
        return frame
    if policy == "error":
        row = frame[dup].iloc[0]
        msg = (
            f"{source}: duplicate (user, item) rows, e.g. user {row['u']!r} item {row['i']!r}; "
            "choose duplicates='last', 'first', 'sum' or 'max'"
        )
        raise DataError(msg)
    if policy in ("last", "first"):
        return frame.drop_duplicates(["u", "i"], keep=policy).reset_index(drop=True)
    if "r" not in frame:
        return frame.drop_duplicates(["u", "i"], keep="last").reset_index(drop=True)
    agg = {"r": policy}
    if "t" in frame:
        agg["t"] = "max"
    order = frame.drop_duplicates(["u", "i"], keep="last")[["u", "i"]]
    merged = frame.groupby(["u", "i"], sort=False, as_index=False).agg(agg)
    return order.merge(merged, on=["u", "i"], how="left").reset_index(drop=True)


def _index_frame(df: pd.DataFrame, key: str, what: str) -> pd.DataFrame:
    if key in df.columns:
        df = df.set_index(key)
    elif df.index.name != key:
        msg = f"{what} table needs a {key!r} column; found columns {list(df.columns)}"
        raise DataError(msg)
    df = df.copy()
    df.index = df.index.astype(str)
    if df.index.has_duplicates:
        dup = df.index[df.index.duplicated()][0]
        msg = f"{what} table has duplicate {key} {dup!r}"
        raise DataError(msg)
    df.index.name = key
    return df
