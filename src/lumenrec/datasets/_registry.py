"""The table of named datasets: files each needs, loader, and where the data directory is."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lumenrec.data.dataset import Dataset
from lumenrec.datasets import movielens, s3rec
from lumenrec.errors import ConfigError, DataError
from lumenrec.types import PathLike

__all__ = ["DatasetInfo", "DatasetSpec", "SPECS", "get_spec", "missing_files", "resolve_data_dir"]

#: Environment variable naming the data directory (used when no ``data_dir`` is passed).
ENV_DATA_DIR = "LUMENREC_DATA_DIR"
_ML1M_ZIP = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"


@dataclass(frozen=True)
class DatasetSpec:
    """What a named dataset needs and how it is read (internal table row)."""

    name: str
    description: str
    files: tuple[str, ...]
    optional: tuple[str, ...]
    homepage: str
    loader: Callable[[Path], Dataset]


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset and its state in a data directory.

    Attributes
    ----------
    name : str
        The name :func:`lumenrec.datasets.load` takes.
    description : str
        One line: what it is, sizes.
    files : tuple of str
        Files that must be in ``path`` (as published).
    optional_files : tuple of str
        Side files used when present (item text, id maps).
    path : Path
        ``<data_dir>/<name>``.
    present : bool
        Every required file is there.
    missing : tuple of str
        Required files that are absent.
    homepage : str
        Where the data is published.
    """

    name: str
    description: str
    files: tuple[str, ...]
    optional_files: tuple[str, ...]
    path: Path
    present: bool
    missing: tuple[str, ...]
    homepage: str


def _seq(name: str, description: str, optional: tuple[str, ...]) -> DatasetSpec:
    return DatasetSpec(
        name,
        description,
        (s3rec.SEQUENCE_FILES[name],),
        optional,
        "https://github.com/aHuiWang/CIKM2020-S3Rec",
        partial(s3rec.load_sequences, name=name),
    )


SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "ml-100k",
            "MovieLens 100K: 943 users, 1,682 movies, 100,000 ratings with timestamps, "
            "titles/genres, demographics",
            ("u.data", "u.item", "u.user"),
            ("u.genre", "u.occupation", "u.info", "README"),
            "https://grouplens.org/datasets/movielens/100k/",
            movielens.load_ml100k,
        ),
        DatasetSpec(
            "ml-1m",
            "MovieLens 1M: 6,040 users, 3,706 rated movies, 1,000,209 ratings with timestamps",
            ("ratings.dat", "movies.dat", "users.dat"),
            ("README",),
            "https://grouplens.org/datasets/movielens/1m/",
            movielens.load_ml1m,
        ),
        DatasetSpec(
            "ml-1m-processed",
            "All 1,000,209 ML-1M ratings without timestamps (SiReN's 5 test folds); "
            "titles/demographics from ../ml-1m when present",
            tuple(f"test_1m{v}.dat" for v in range(1, 6)),
            ("../ml-1m/movies.dat", "../ml-1m/users.dat"),
            "https://github.com/woni-seo/SiReN-reco",
            movielens.load_ml1m_processed,
        ),
        _seq(
            "amazon-beauty",
            "Amazon Beauty 5-core (S3-Rec): 22,363 users, 12,101 items, 198,502 events in "
            "time order; titles, categories, brands",
            ("item_text.jsonl.gz", "datamaps.json", "Beauty_item2attributes.json"),
        ),
        _seq(
            "amazon-toys",
            "Amazon Toys_and_Games 5-core (S3-Rec): 19,412 users, 11,924 items, 167,597 "
            "events; titles, categories",
            ("item_text.jsonl.gz", "item_asin_map.tsv", "Toys_and_Games_item2attributes.json"),
        ),
        _seq(
            "amazon-sports",
            "Amazon Sports_and_Outdoors 5-core (S3-Rec): 35,598 users, 18,357 items, "
            "296,337 events; ids only",
            ("datamaps.json", "Sports_and_Outdoors_item2attributes.json"),
        ),
        _seq(
            "yelp",
            "Yelp 2019 5-core (S3-Rec): 30,431 users, 20,033 businesses, 316,354 events "
            "(repeat visits kept); names, categories",
            ("item_text.jsonl.gz", "Yelp_item2attributes.json"),
        ),
        _seq(
            "lastfm",
            "LastFM hetrec-2k (S3-Rec): 1,090 users, 3,646 artists, 52,551 events; ids only",
            ("LastFM_item2attributes.json", "LastFM_sample.txt"),
        ),
    )
}


def resolve_data_dir(data_dir: PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$LUMENREC_DATA_DIR``, else ``~/.lumenrec/data``."""
    if data_dir is not None:
        return Path(os.fspath(data_dir)).expanduser()
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    return Path("~/.lumenrec/data").expanduser()


def get_spec(name: str) -> DatasetSpec:
    """The table row for ``name``; ConfigError listing the valid names otherwise."""
    spec = SPECS.get(name)
    if spec is None:
        msg = f"unknown dataset {name!r}; valid: {sorted(SPECS)}"
        raise ConfigError(msg)
    return spec


def missing_files(spec: DatasetSpec, folder: Path) -> tuple[str, ...]:
    """Required files of ``spec`` that are not in ``folder``."""
    return tuple(f for f in spec.files if not (folder / f).is_file())


def info(spec: DatasetSpec, root: Path) -> DatasetInfo:
    """A :class:`DatasetInfo` for ``spec`` under data directory ``root``."""
    folder = root / spec.name
    missing = missing_files(spec, folder)
    return DatasetInfo(
        spec.name, spec.description, spec.files, spec.optional, folder, not missing, missing,
        spec.homepage,
    )  # fmt: skip


def missing_message(spec: DatasetSpec, folder: Path, missing: tuple[str, ...]) -> str:
    """The DataError text for a dataset whose files are not (all) there."""
    hint = (
        f"call lumenrec.datasets.download({spec.name!r}, data_dir={str(folder.parent)!r}) "
        f"or pass --download on the command line, or place the files there by hand "
        f"(published at {spec.homepage})"
    )
    if spec.name == "ml-1m" and "ratings.dat" in missing:
        where = "" if folder.is_dir() else f"dataset folder {folder} does not exist. "
        return (
            f"{where}ml-1m: {folder / 'ratings.dat'} is missing (the MovieLens 1M ratings file"
            + (
                f"; also missing: {[m for m in missing if m != 'ratings.dat']}"
                if len(missing) > 1
                else ""
            )
            + f"). Get it from {_ML1M_ZIP} (unzip ml-1m/ratings.dat into {folder}), or "
            f"call lumenrec.datasets.download('ml-1m', data_dir={str(folder.parent)!r}) / "
            "--download. The available alternative is 'ml-1m-processed': the same 1,000,209 "
            "ratings without timestamps."
        )
    if not folder.is_dir():
        return (
            f"dataset folder {folder} does not exist; {spec.name!r} expects the files "
            f"{list(spec.files)} there (optional: {list(spec.optional)}). To get them, {hint}"
        )
    return (
        f"dataset folder {folder} is missing {list(missing)} (expected {list(spec.files)}). "
        f"To get them, {hint}"
    )


def check_present(spec: DatasetSpec, folder: Path) -> None:
    """Raise DataError (see :func:`missing_message`) unless every required file exists."""
    missing = missing_files(spec, folder)
    if missing:
        msg = missing_message(spec, folder, missing)
        raise DataError(msg)
