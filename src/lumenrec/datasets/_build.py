"""Shared helpers for the dataset loaders: parse text tables with clear errors, build a Dataset."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lumenrec.data.dataset import Dataset
from lumenrec.data.vocab import IdIndex
from lumenrec.errors import DataError

__all__ = ["build_dataset", "read_delimited"]

log = logging.getLogger(__name__)


def read_delimited(
    path: Path,
    sep: str,
    names: list[str],
    *,
    encoding: str = "utf-8",
    dtype: type | dict[str, type] | None = str,
) -> pd.DataFrame:
    """Read a header-less delimited text file with exactly ``len(names)`` fields per line.

    Multi-character separators (MovieLens ``::``) are rewritten to tabs first so that the
    fast C parser can be used. Quoting is off: MovieLens titles contain bare quotes.

    Raises
    ------
    DataError
        The file cannot be decoded or a line has the wrong number of fields; the message
        names the file.
    """
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        msg = f"{path} is not valid {encoding} (byte {err.start}); is it the published file?"
        raise DataError(msg) from err
    if len(sep) > 1:
        text = text.replace(sep, "\t")
        sep = "\t"
    if not text.strip():
        msg = f"{path} is empty; expected lines of {len(names)} {sep!r}-separated fields"
        raise DataError(msg)
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            names=names,
            dtype=dtype,
            quoting=csv.QUOTE_NONE,
            keep_default_na=False,
            na_values=[] if dtype is str else [""],
            engine="c",
        )
    except (ValueError, pd.errors.ParserError) as err:
        msg = f"{path}: could not parse as {len(names)} fields {names} ({err})"
        for lineno, line in enumerate(text.splitlines(), 1):
            n = len(line.split(sep)) if line else len(names)
            if n != len(names):
                msg = f"{path}: line {lineno} has {n} fields, expected {len(names)} {names}"
                break
        raise DataError(msg) from err
    if len(df) and df.iloc[:, -1].isna().any():
        row = int(np.flatnonzero(df.iloc[:, -1].isna().to_numpy())[0])
        msg = f"{path}: line {row + 1} has fewer than {len(names)} fields {names}"
        raise DataError(msg)
    return df


def build_dataset(
    user_ids: NDArray[np.integer],
    item_ids: NDArray[np.integer],
    *,
    ratings: NDArray[np.floating] | None = None,
    timestamps: NDArray[np.integer] | None = None,
    catalog: pd.DataFrame | None = None,
    user_attributes: pd.DataFrame | None = None,
    name: str,
) -> Dataset:
    """A Dataset whose vocabularies are the integer ids that occur, sorted numerically.

    Parameters
    ----------
    user_ids, item_ids : ndarray of shape (n_events,), int
        Published integer ids of each event, in the order the events were read.
    ratings : ndarray of shape (n_events,), float, optional
    timestamps : ndarray of shape (n_events,), int64, optional
        Unix seconds.
    catalog, user_attributes : DataFrame, optional
        Indexed by the integer id; re-indexed to the vocabulary (rows for ids without
        events are dropped; ids without a row get missing values) and re-keyed by the
        string id, named ``item_id`` / ``user_id``.
    name : str
        Dataset label.

    Notes
    -----
    Sorting ids numerically makes dense index = id − 1 for files with contiguous
    1-based ids (all S3-Rec sequence files and MovieLens users), which eases comparison
    with reference code.
    """
    uniq_u, u_idx = np.unique(np.asarray(user_ids, dtype=np.int64), return_inverse=True)
    uniq_i, i_idx = np.unique(np.asarray(item_ids, dtype=np.int64), return_inverse=True)
    users = IdIndex(uniq_u.tolist(), name="user")
    items = IdIndex(uniq_i.tolist(), name="item")
    return Dataset(
        users,
        items,
        u_idx.astype(np.int32).ravel(),
        i_idx.astype(np.int32).ravel(),
        ratings,
        timestamps,
        catalog=_align(catalog, uniq_i, items, "item_id"),
        user_attributes=_align(user_attributes, uniq_u, users, "user_id"),
        name=name,
    )


def _align(
    df: pd.DataFrame | None, ids: NDArray[np.int64], vocab: IdIndex, key: str
) -> pd.DataFrame | None:
    if df is None:
        return None
    if df.index.has_duplicates:
        dup = df.index[df.index.duplicated()][0]
        msg = f"side table for {key} has the id {dup!r} twice"
        raise DataError(msg)
    attrs = dict(df.attrs)
    out = df.reindex(pd.Index(ids))
    out.index = pd.Index(vocab.ids, name=key)
    out.attrs.update(attrs)
    return out
