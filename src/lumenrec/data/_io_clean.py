"""Column cleaning for the readers of :mod:`lumenrec.data.io`: id columns checked and turned
into strings (strings and whole numbers accepted; NaN, booleans, fractional or infinite
floats, datetimes, bytes and nested list/dict/array values refused), ratings checked to be
one finite number per row, and timestamps turned into Unix seconds (numbers, datetime64 of
any unit, or parsable date strings). Every refusal is a :class:`~lumenrec.errors.DataError`
naming the file, the column, the first bad row and the available columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lumenrec.errors import DataError

__all__ = ["_clean_ids", "_clean_ratings", "_clean_timestamps"]

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
