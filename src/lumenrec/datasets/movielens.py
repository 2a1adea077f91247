"""MovieLens loaders: ml-100k, ml-1m (GroupLens files as published) and ml-1m-processed.

Catalogue text columns (``title``, ``genres``) are ``object`` so that
:meth:`Dataset.item_text` picks them by default; identifier-like columns (``imdb_url``,
``zip_code``) use the pandas ``string`` dtype and are left out of the default text.
``catalog.attrs["text_fields"]`` names the fields meant for text encoders.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lumenrec.data.dataset import Dataset
from lumenrec.datasets._build import build_dataset, read_delimited
from lumenrec.errors import DataError

__all__ = [
    "ML1M_AGES",
    "ML1M_OCCUPATIONS",
    "ML100K_GENRES",
    "load_ml1m",
    "load_ml1m_processed",
    "load_ml100k",
]

log = logging.getLogger(__name__)

#: The 19 genre names of ml-100k ``u.genre`` (flag order of ``u.item``).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

#: ml-1m ``users.dat`` age codes → labels (ml-1m README, "USERS FILE DESCRIPTION").
ML1M_AGES = {
    1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+",
}  # fmt: skip

#: ml-1m ``users.dat`` occupation codes → labels (ml-1m README).
ML1M_OCCUPATIONS = {
    0: "other or not specified", 1: "academic/educator", 2: "artist", 3: "clerical/admin",
    4: "college/grad student", 5: "customer service", 6: "doctor/health care",
    7: "executive/managerial", 8: "farmer", 9: "homemaker", 10: "K-12 student", 11: "lawyer",
    12: "programmer", 13: "retired", 14: "sales/marketing", 15: "scientist",
    16: "self-employed", 17: "technician/engineer", 18: "tradesman/craftsman",
    19: "unemployed", 20: "writer",
}  # fmt: skip

_YEAR = re.compile(r"\((\d{4})\)\s*$")
_TEXT_FIELDS = ["title", "genres"]


def load_ml100k(folder: Path) -> Dataset:
    """MovieLens 100K from ``u.data``, ``u.item``, ``u.user`` (and ``u.genre`` if present).

    Returns
    -------
    Dataset
        943 users × 1,682 items, 100,000 events in ``u.data`` line order with ratings
        (float32, 1–5) and timestamps (int64 Unix seconds). ``catalog`` columns:
        ``title``, ``release_date`` (datetime64), ``genres`` (``"Action|Comedy"``),
        ``year`` (Int64, from the title, else the release date), ``imdb_url``.
        ``user_attributes``: ``age`` (int), ``gender``, ``occupation``, ``zip_code``.
    """
    events = read_delimited(
        folder / "u.data", "\t", ["user_id", "item_id", "rating", "timestamp"], dtype=np.int64
    )
    genres = _ml100k_genres(folder / "u.genre")
    flags = [f"g{k}" for k in range(len(genres))]
    raw = read_delimited(
        folder / "u.item",
        "|",
        ["item_id", "title", "release_date", "video_release_date", "imdb_url", *flags],
        encoding="latin-1",
    )
    flag_values = raw[flags].to_numpy(dtype=object) == "1"
    names = np.asarray(genres, dtype=object)
    release = pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce")
    catalog = pd.DataFrame(
        {
            "title": raw["title"].astype(object).to_numpy(),
            "release_date": release.to_numpy(),
            "genres": ["|".join(names[row]) for row in flag_values],
            "year": _years(raw["title"], release),
            "imdb_url": raw["imdb_url"].astype("string").to_numpy(),
        },
        index=_int_index(raw["item_id"], folder / "u.item"),
    )
    _as_object(catalog, ["title", "genres"])
    catalog.attrs["text_fields"] = list(_TEXT_FIELDS)
    udf = read_delimited(
        folder / "u.user", "|", ["user_id", "age", "gender", "occupation", "zip_code"]
    )
    users = pd.DataFrame(
        {
            "age": pd.to_numeric(udf["age"], errors="coerce").astype("Int64").to_numpy(),
            "gender": udf["gender"].astype(object).to_numpy(),
            "occupation": udf["occupation"].astype(object).to_numpy(),
            "zip_code": udf["zip_code"].astype("string").to_numpy(),
        },
        index=_int_index(udf["user_id"], folder / "u.user"),
    )
    _as_object(users, ["gender", "occupation"])
    return build_dataset(
        events["user_id"].to_numpy(),
        events["item_id"].to_numpy(),
        ratings=events["rating"].to_numpy(np.float32),
        timestamps=events["timestamp"].to_numpy(np.int64),
        catalog=catalog,
        user_attributes=users,
        name="ml-100k",
    )


def load_ml1m(folder: Path) -> Dataset:
    """MovieLens 1M from ``ratings.dat``, ``movies.dat`` and ``users.dat`` (``::``-separated).

    Returns
    -------
    Dataset
        6,040 users × 3,706 rated movies, 1,000,209 events in file order, ratings
        (float32) and timestamps (int64). ``catalog``: ``title``, ``genres``, ``year``.
        ``user_attributes``: ``gender``, ``age`` (label, e.g. ``"25-34"``), ``age_code``,
        ``occupation`` (label), ``occupation_code``, ``zip_code``.
    """
    events = read_delimited(
        folder / "ratings.dat", "::", ["user_id", "item_id", "rating", "timestamp"],
        dtype=np.int64,
    )  # fmt: skip
    return build_dataset(
        events["user_id"].to_numpy(),
        events["item_id"].to_numpy(),
        ratings=events["rating"].to_numpy(np.float32),
        timestamps=events["timestamp"].to_numpy(np.int64),
        catalog=read_ml1m_movies(folder / "movies.dat"),
        user_attributes=read_ml1m_users(folder / "users.dat"),
        name="ml-1m",
    )


def load_ml1m_processed(folder: Path) -> Dataset:
    """All ML-1M ratings from the five SiReN test folds ``test_1m{1..5}.dat`` (no timestamps).

    Events are the folds concatenated in fold order 1..5, each in its own line order
    (the original interleaving is unknown, so event order carries no time information).
    The catalogue and user attributes are joined from the sibling folder
    ``<data_dir>/ml-1m/`` (``movies.dat``, ``users.dat``) when those files are there.

    Returns
    -------
    Dataset
        6,040 users × 3,706 items, 1,000,209 events, ratings float32, ``timestamps=None``.
    """
    frames = []
    for v in range(1, 6):
        path = folder / f"test_1m{v}.dat"
        frames.append(read_delimited(path, ",", ["user_id", "item_id", "rating"], dtype=np.int64))
    events = pd.concat(frames, ignore_index=True)
    sibling = folder.parent / "ml-1m"
    movies = sibling / "movies.dat"
    users = sibling / "users.dat"
    if not movies.is_file():
        log.info("ml-1m-processed: %s not found; loading without a catalogue", movies)
    return build_dataset(
        events["user_id"].to_numpy(),
        events["item_id"].to_numpy(),
        ratings=events["rating"].to_numpy(np.float32),
        catalog=read_ml1m_movies(movies) if movies.is_file() else None,
        user_attributes=read_ml1m_users(users) if users.is_file() else None,
        name="ml-1m-processed",
    )


def read_ml1m_movies(path: Path) -> pd.DataFrame:
    """``movies.dat`` (latin-1, ``MovieID::Title::Genres``) → DataFrame indexed by movie id.

    Columns: ``title`` (object), ``genres`` (object, ``"Animation|Children's|Comedy"``),
    ``year`` (Int64, from the title).
    """
    raw = read_delimited(path, "::", ["item_id", "title", "genres"], encoding="latin-1")
    catalog = pd.DataFrame(
        {
            "title": raw["title"].astype(object).to_numpy(),
            "genres": raw["genres"].astype(object).to_numpy(),
            "year": _years(raw["title"], None),
        },
        index=_int_index(raw["item_id"], path),
    )
    _as_object(catalog, ["title", "genres"])
    catalog.attrs["text_fields"] = list(_TEXT_FIELDS)
    return catalog


def read_ml1m_users(path: Path) -> pd.DataFrame:
    """``users.dat`` (``UserID::Gender::Age::Occupation::Zip-code``) → DataFrame by user id.

    Age and occupation codes are mapped to the README's labels (``age``, ``occupation``);
    the codes are kept as ``age_code`` / ``occupation_code`` (Int64).
    """
    raw = read_delimited(
        path, "::", ["user_id", "gender", "age", "occupation", "zip_code"], encoding="latin-1"
    )
    age = pd.to_numeric(raw["age"], errors="coerce").astype("Int64")
    occ = pd.to_numeric(raw["occupation"], errors="coerce").astype("Int64")
    bad = ~age.isin(list(ML1M_AGES)) | ~occ.isin(list(ML1M_OCCUPATIONS))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        msg = (
            f"{path}: line {row + 1} has an unknown age or occupation code "
            f"({raw['age'].iloc[row]!r}, {raw['occupation'].iloc[row]!r}); see the ml-1m README"
        )
        raise DataError(msg)
    users = pd.DataFrame(
        {
            "gender": raw["gender"].astype(object).to_numpy(),
            "age": age.map(ML1M_AGES).astype(object).to_numpy(),
            "age_code": age.to_numpy(),
            "occupation": occ.map(ML1M_OCCUPATIONS).astype(object).to_numpy(),
            "occupation_code": occ.to_numpy(),
            "zip_code": raw["zip_code"].astype("string").to_numpy(),
        },
        index=_int_index(raw["user_id"], path),
    )
    _as_object(users, ["gender", "age", "occupation"])
    return users


# -- helpers ---------------------------------------------------------------------------------
def _as_object(df: pd.DataFrame, columns: list[str]) -> None:
    """Store text columns as ``object`` (pandas 3 would infer ``str``; see module notes)."""
    for col in columns:
        df[col] = pd.Series(df[col].to_numpy(dtype=object), index=df.index, dtype=object)


def _ml100k_genres(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ML100K_GENRES
    table = read_delimited(path, "|", ["name", "code"], encoding="latin-1")
    table = table[table["name"].astype(str).str.len() > 0]
    codes = pd.to_numeric(table["code"], errors="coerce")
    if codes.isna().any() or sorted(codes.astype(int)) != list(range(len(table))):
        msg = f"{path}: expected lines 'name|code' with codes 0..n-1"
        raise DataError(msg)
    return tuple(table["name"].astype(str).to_numpy()[np.argsort(codes.to_numpy())])


def _years(titles: pd.Series, release: pd.Series | None) -> pd.array:
    year = pd.to_numeric(titles.astype(str).str.extract(_YEAR)[0], errors="coerce")
    if release is not None:
        year = year.fillna(pd.Series(release.dt.year.to_numpy(), index=year.index))
    return pd.array(year.to_numpy(), dtype="Int64")


def _int_index(ids: pd.Series, path: Path) -> pd.Index:
    values = pd.to_numeric(ids, errors="coerce")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        msg = f"{path}: line {row + 1} has a non-integer id {ids.iloc[row]!r}"
        raise DataError(msg)
    return pd.Index(values.to_numpy(np.int64))
