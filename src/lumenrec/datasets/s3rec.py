"""S3-Rec sequence datasets (Amazon Beauty/Toys/Sports, Yelp, LastFM) with aligned item text.

Each ``<Name>.txt`` holds one line per user, ``user_id item_id item_id ...``, items in time
order. There are no ratings and no timestamps: the loaded Dataset keeps ``timestamps=None``
and the **event order is the file order** (user by user, each sequence in order), which is
what sequential protocols (P2) rely on. Repeated items (Yelp) stay as separate events.
Nothing is synthesised: a position-in-sequence "timestamp" would fake a global clock.

Item side information (``item_text.jsonl.gz``, ``datamaps.json``, ``item_asin_map.tsv``) is
joined on the S3-Rec item id, so ``catalog`` is aligned to the dataset's items. Text columns
(``title``, ``categories``, ``brand``) are ``object`` (picked by :meth:`Dataset.item_text`);
the identifier ``asin`` / ``reviewer_id`` columns use the pandas ``string`` dtype.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lumenrec.data.dataset import Dataset
from lumenrec.datasets._build import build_dataset, read_delimited
from lumenrec.errors import DataError

__all__ = ["SEQUENCE_FILES", "format_categories", "load_sequences", "read_sequences"]

log = logging.getLogger(__name__)

#: Dataset name → the S3-Rec sequence file in its folder.
SEQUENCE_FILES = {
    "amazon-beauty": "Beauty.txt",
    "amazon-toys": "Toys_and_Games.txt",
    "amazon-sports": "Sports_and_Outdoors.txt",
    "yelp": "Yelp.txt",
    "lastfm": "LastFM.txt",
}


def load_sequences(folder: Path, name: str) -> Dataset:
    """Load an S3-Rec sequence dataset and whatever item/user side files sit beside it.

    Parameters
    ----------
    folder : Path
        ``<data_dir>/<name>``.
    name : str
        A key of :data:`SEQUENCE_FILES`.

    Returns
    -------
    Dataset
        Events in file order, ``ratings=None``, ``timestamps=None``. ``catalog`` (when any
        side file is present): ``asin`` (string), ``title``, ``categories``, ``brand``
        (object; missing values are None/NaN); Yelp's business ``name`` is stored as
        ``title``. ``user_attributes``: ``reviewer_id`` where ``datamaps.json`` has it.
    """
    user_ids, item_ids = read_sequences(folder / SEQUENCE_FILES[name])
    maps = _read_datamaps(folder)
    catalog = _read_catalog(folder, maps)
    users = _read_users(maps)
    return build_dataset(user_ids, item_ids, catalog=catalog, user_attributes=users, name=name)


def read_sequences(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``uid iid iid ...`` lines into event arrays (file order).

    Returns
    -------
    user_ids, item_ids : ndarray of shape (n_events,), int64
    """
    users: list[int] = []
    items: list[int] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                ids = [int(p) for p in parts]
            except ValueError as err:
                msg = f"{path}: line {lineno} is not 'user_id item_id item_id ...' integers ({err})"
                raise DataError(msg) from err
            if len(ids) < 2:
                msg = f"{path}: line {lineno} has a user id but no items"
                raise DataError(msg)
            users.extend([ids[0]] * (len(ids) - 1))
            items.extend(ids[1:])
    if not users:
        msg = f"{path} is empty; expected one 'user_id item_id ...' line per user"
        raise DataError(msg)
    return np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)


def format_categories(value: Any) -> str | None:
    """Category field → one string.

    A list of category paths (Amazon) becomes ``"A > B > C; A > D"``; a flat list (Yelp)
    becomes ``"A, B, C"``; empty → None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    parts = []
    flat = []
    for entry in value:
        if isinstance(entry, list | tuple):
            path = " > ".join(str(x) for x in entry if x)
            if path:
                parts.append(path)
        elif entry:
            flat.append(str(entry))
    if flat:
        parts.append(", ".join(flat))
    return "; ".join(parts) or None


# -- side files ------------------------------------------------------------------------------
def _read_catalog(folder: Path, maps: dict[str, Any] | None) -> pd.DataFrame | None:
    asin_map = _read_asin_map(folder, maps)
    text_path = folder / "item_text.jsonl.gz"
    if not text_path.is_file():
        if asin_map is None:
            return None
        ids = np.fromiter(asin_map.keys(), dtype=np.int64, count=len(asin_map))
        only = pd.DataFrame({"asin": pd.array(list(asin_map.values()), dtype="string")}, index=ids)
        only.attrs["text_fields"] = []
        return only
    by_asin = {a: i for i, a in (asin_map or {}).items()}
    rows: dict[int, dict[str, Any]] = {}
    try:
        with gzip.open(text_path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rec = json.loads(line)
                item = _item_key(rec, by_asin, text_path, lineno)
                asin = rec.get("asin") or (asin_map or {}).get(item)
                if asin_map is not None and rec.get("asin") and asin_map.get(item) != rec["asin"]:
                    msg = (
                        f"{text_path}: line {lineno} says item {item} is {rec['asin']!r} but the "
                        f"id map says {asin_map.get(item)!r}; the files do not belong together"
                    )
                    raise DataError(msg)
                rows[item] = {
                    "asin": asin,
                    "title": rec.get("title", rec.get("name")),
                    "categories": format_categories(rec.get("categories")),
                    "brand": rec.get("brand"),
                }
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"{text_path} could not be read as gzip JSON lines ({type(err).__name__}: {err})"
        raise DataError(msg) from err
    for item, asin in (asin_map or {}).items():
        rows.setdefault(item, {"asin": asin})
    frame = pd.DataFrame.from_dict(rows, orient="index")
    out = pd.DataFrame(index=pd.Index(frame.index.to_numpy(np.int64)))
    if frame["asin"].notna().any():
        out["asin"] = pd.array(frame["asin"].to_numpy(dtype=object), dtype="string")
    text_fields = []
    for col in ("title", "categories", "brand"):
        if col in frame and frame[col].notna().any():
            out[col] = pd.Series(frame[col].to_numpy(dtype=object), index=out.index, dtype=object)
            text_fields.append(col)
    out.attrs["text_fields"] = text_fields
    return out


def _item_key(rec: dict[str, Any], by_asin: dict[str, int], path: Path, lineno: int) -> int:
    if rec.get("item_id") is not None:
        return int(rec["item_id"])
    if rec.get("asin") in by_asin:
        return by_asin[rec["asin"]]
    msg = f"{path}: line {lineno} has no item_id and its asin is not in the id map"
    raise DataError(msg)


def _read_asin_map(folder: Path, maps: dict[str, Any] | None) -> dict[int, str] | None:
    tsv = folder / "item_asin_map.tsv"
    if tsv.is_file():
        table = read_delimited(tsv, "\t", ["item_id", "asin"])
        if len(table) and table["item_id"].iloc[0] == "item_id":
            table = table.iloc[1:]
        return dict(zip(table["item_id"].astype(int), table["asin"].astype(str), strict=True))
    if maps is None or "id2item" not in maps:
        return None
    return {int(k): str(v) for k, v in maps["id2item"].items()}


def _read_users(maps: dict[str, Any] | None) -> pd.DataFrame | None:
    if maps is None or "id2user" not in maps:
        return None
    ids = np.fromiter((int(k) for k in maps["id2user"]), dtype=np.int64)
    values = pd.array([str(v) for v in maps["id2user"].values()], dtype="string")
    return pd.DataFrame({"reviewer_id": values}, index=ids)


def _read_datamaps(folder: Path) -> dict[str, Any] | None:
    path = folder / "datamaps.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"{path} is not valid JSON ({err}); is it P5's datamaps.json?"
        raise DataError(msg) from err
