"""Readers: pandas DataFrames, CSV and Parquet files → :class:`Dataset`, with clear errors.

Default columns are ``user_id, item_id, rating, timestamp``; rename them with ``col_*``.
``rating`` and ``timestamp`` are optional. Duplicate (user, item) rows follow
``duplicates``: ``"keep"`` (default: every event stays in the log, the matrix takes the
last value), ``"last"``/``"first"`` (drop the other rows), ``"sum"``/``"max"`` (merge the
values) or ``"error"``.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

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


# -- cleaning helpers ------------------------------------------------------------------------
_ID_HINT = (
    "ids must be strings or whole numbers, one per row; convert the column "
    "(e.g. df[col] = df[col].astype(str)) or pick another one with --col-user/--col-item"
)


def _columns_note(columns: list[str] | None) -> str:
    return "" if columns is None else f" (available columns: {columns})"


def _bad_id(
    source: str, name: str, columns: list[str] | None, what: str, value: object, row: int
) -> DataError:
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    msg = f"{source}: column {name!r} holds {what} (e.g. {text} at row {row}); {_ID_HINT}"
    return DataError(msg + _columns_note(columns))


def _kind(value: object) -> str:
    """Type name for messages; Parquet list columns arrive as numpy arrays: call them lists."""
    return "list" if isinstance(value, np.ndarray) else type(value).__name__


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _clean_ids(
    col: pd.Series, name: str, source: str, columns: list[str] | None = None
) -> pd.Series:
    """Check an id column and turn it into strings (whole floats lose their ``.0``).

    Accepted: strings and integers (any integer dtype, or floats whose values are all whole
    numbers, as Parquet stores integer columns with missing values). Refused with a
    :class:`DataError` naming the file, the column and the available columns: NaN, booleans,
    non-integral or infinite floats, datetimes, complex numbers, bytes, and list/dict/array
    values (Parquet nested columns).
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = _clean_ids(pd.Series(col.cat.categories), name, source, columns)
        codes = col.cat.codes.to_numpy()
        if (codes < 0).any():
            row = _first(codes < 0)
            msg = (
                f"{source}: column {name!r} has empty/NaN values "
                f"(first at row {row}); drop those rows"
            )
            raise DataError(msg + _columns_note(columns))
        return pd.Series(cats.to_numpy(object)[codes], index=col.index, dtype=object).astype(str)
    values = col.to_numpy(object) if col.dtype == object else None
    if values is not None:  # NaN check on objects without touching list values
        missing = np.fromiter(
            (v is None or (isinstance(v, float) and v != v) for v in values), bool, len(values)
        )
    else:
        missing = col.isna().to_numpy()
    if missing.any():
        msg = (
            f"{source}: column {name!r} has empty/NaN values "
            f"(first at row {_first(missing)}); drop those rows"
        )
        raise DataError(msg + _columns_note(columns))
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise _bad_id(source, name, columns, "booleans", col.iloc[0], 0)
    if (
        pd.api.types.is_integer_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        and (values is None)
    ):
        return col.astype(str)
    if pd.api.types.is_float_dtype(dtype):
        return _whole_floats(col, name, source, columns).astype(str)
    if values is None:  # datetimes, timedeltas, complex, periods, intervals, ...
        raise _bad_id(source, name, columns, f"{dtype} values", col.iloc[0], 0)
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind in ("string", "integer", "mixed-integer"):
        if kind == "mixed-integer":  # strings and ints only; anything else is refused
            ok = np.fromiter(
                (
                    isinstance(v, str | int | np.integer) and not isinstance(v, bool | np.bool_)
                    for v in values
                ),
                bool,
                len(values),
            )
            if not ok.all():
                row = _first(~ok)
                what = f"{type(values[row]).__name__} values"
                raise _bad_id(source, name, columns, what, values[row], row)
        return col.astype(str)
    if kind in ("floating", "mixed-integer-float", "integer-na"):
        numeric = pd.Series(pd.to_numeric(pd.Series(values), errors="raise"), index=col.index)
        return _whole_floats(numeric.astype(np.float64), name, source, columns).astype(str)
    ok = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
    row = _first(~ok) if not ok.all() else 0
    value = values[row]
    what = {
        "bytes": "bytes",
        "boolean": "booleans",
        "datetime": "datetimes",
        "date": "dates",
        "complex": "complex numbers",
    }.get(kind, f"{type(value).__name__} values")
    if isinstance(value, list | tuple | dict | set | np.ndarray):
        what = f"{_kind(value)} values (a nested column)"
    raise _bad_id(source, name, columns, what, value, row)


def _whole_floats(col: pd.Series, name: str, source: str, columns: list[str] | None) -> pd.Series:
    arr = col.to_numpy(np.float64)
    finite = np.isfinite(arr)
    bad = ~finite
    bad[finite] = arr[finite] % 1 != 0
    if bad.any():
        row = _first(bad)
        what = "non-integral numbers" if finite[row] else "infinite numbers"
        raise _bad_id(source, name, columns, what, float(arr[row]), row)
    return pd.Series(arr.astype(np.int64), index=col.index)


def _clean_ratings(
    col: pd.Series, name: str, source: str, columns: list[str] | None = None
) -> pd.Series:
    where = f"{source}: column {name!r}"
    if pd.api.types.is_complex_dtype(col.dtype):
        msg = f"{where} holds complex numbers; ratings must be real numbers"
        raise DataError(msg + _columns_note(columns))
    if col.dtype == object:
        nested = np.fromiter(
            (isinstance(v, list | tuple | dict | set | np.ndarray | bytes | complex) for v in col),
            bool,
            len(col),
        )
        if nested.any():
            row = _first(nested)
            msg = (
                f"{where} holds {_kind(col.iloc[row])} values (e.g. at row {row}); "
                "ratings must be one number per row (or pass --col-rating '' to ignore it)"
            )
            raise DataError(msg + _columns_note(columns))
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & col.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        msg = (
            f"{where} has a non-numeric value {col.iloc[row]!r} at row {row}; "
            "ratings must be numbers (or pass --col-rating '' to ignore the column)"
        )
        raise DataError(msg + _columns_note(columns))
    arr = values.to_numpy(np.float64)
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr))[0])
        msg = f"{where} has NaN/inf at row {row}; drop or fill those rows"
        raise DataError(msg + _columns_note(columns))
    return pd.Series(arr.astype(np.float32), index=col.index)


def _clean_timestamps(
    col: pd.Series, name: str, source: str, columns: list[str] | None = None
) -> pd.Series:
    where = f"{source}: column {name!r}"
    hint = "use Unix seconds or ISO 8601 (or pass --col-timestamp '' to ignore the column)"
    if col.dtype == object:
        nested = np.fromiter(
            (isinstance(v, list | tuple | dict | set | np.ndarray | bytes) for v in col),
            bool,
            len(col),
        )
        if nested.any():
            row = _first(nested)
            msg = f"{where} holds {_kind(col.iloc[row])} values (e.g. at row {row}); {hint}"
            raise DataError(msg + _columns_note(columns))
    if pd.api.types.is_complex_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        msg = f"{where} holds {col.dtype} values; {hint}"
        raise DataError(msg + _columns_note(columns))
    if col.isna().any():
        row = int(np.flatnonzero(col.isna().to_numpy())[0])
        msg = f"{where} has empty/NaN timestamps (first at row {row}); drop or fill those rows"
        raise DataError(msg + _columns_note(columns))
    if pd.api.types.is_datetime64_any_dtype(col):
        # datetime64 of any unit (pandas 3 defaults to "us"): convert to Unix seconds
        parsed = pd.to_datetime(col, utc=True)
        secs = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        return pd.Series(secs.to_numpy(np.int64), index=col.index)
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.notna().all():
        arr = numeric.to_numpy(np.float64)
        if not np.isfinite(arr).all():
            msg = f"{where} has inf values; {hint}"
            raise DataError(msg + _columns_note(columns))
        return pd.Series(arr.astype(np.int64), index=col.index)
    try:
        parsed = pd.to_datetime(col, errors="raise", utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError) as err:
        bad = pd.to_datetime(col, errors="coerce", utc=True, format="mixed").isna()
        row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
        msg = f"{where} has an unparsable timestamp {col.iloc[row]!r} at row {row}; {hint}"
        raise DataError(msg + _columns_note(columns)) from err
    secs = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return pd.Series(secs.to_numpy(np.int64), index=col.index)


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
