"""Named public datasets (MovieLens, S3-Rec sequences) read from a local data directory.

The data directory is the ``data_dir`` argument, else ``$LUMENREC_DATA_DIR``, else
``~/.lumenrec/data``; dataset ``name`` lives in ``<data_dir>/<name>/`` with its files as
published. Nothing is downloaded unless asked (``download=True`` or :func:`download`).

Examples
--------
>>> from lumenrec import datasets
>>> [d.name for d in datasets.available()]  # doctest: +SKIP
['ml-100k', 'ml-1m', 'ml-1m-processed', 'amazon-beauty', ...]
>>> data = datasets.load("ml-100k", "/data")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time

from lumenrec.data.dataset import Dataset
from lumenrec.datasets._registry import (
    SPECS,
    DatasetInfo,
    check_present,
    get_spec,
    info,
    missing_files,
    resolve_data_dir,
)
from lumenrec.datasets.remote import download
from lumenrec.types import PathLike

__all__ = ["DatasetInfo", "available", "download", "load", "resolve_data_dir"]

log = logging.getLogger(__name__)


def load(name: str, data_dir: PathLike | None = None, *, download: bool = False) -> Dataset:
    """Load the named dataset from ``<data_dir>/<name>/``.

    Parameters
    ----------
    name : str
        One of the names listed by :func:`available` (``"ml-100k"``, ``"ml-1m"``,
        ``"ml-1m-processed"``, ``"amazon-beauty"``, ``"amazon-toys"``,
        ``"amazon-sports"``, ``"yelp"``, ``"lastfm"``).
    data_dir : str or PathLike, optional
        Folder that holds one sub-folder per dataset. Default: ``$LUMENREC_DATA_DIR``,
        else ``~/.lumenrec/data``.
    download : bool
        Fetch missing files from their public location first (checksum-verified).

    Returns
    -------
    Dataset
        Events in file order; see the loaders in :mod:`lumenrec.datasets.movielens` and
        :mod:`lumenrec.datasets.s3rec` for the columns of ``catalog`` and
        ``user_attributes``.

    Raises
    ------
    ConfigError
        Unknown name (the message lists the valid ones).
    DataError
        Files missing (the message names the folder, the files and how to get them) or
        malformed (the message names the file and line).
    """
    spec = get_spec(name)
    folder = resolve_data_dir(data_dir) / name
    if download and missing_files(spec, folder):
        _download(name, folder.parent)
    check_present(spec, folder)
    start = time.perf_counter()
    data = spec.loader(folder)
    log.info("loaded %s from %s in %.2fs: %r", name, folder, time.perf_counter() - start, data)
    return data


def available(data_dir: PathLike | None = None) -> list[DatasetInfo]:
    """Every named dataset with its description, files and whether it is present.

    Parameters
    ----------
    data_dir : str or PathLike, optional
        As for :func:`load`.

    Returns
    -------
    list of DatasetInfo
        In registry order.
    """
    root = resolve_data_dir(data_dir)
    return [info(spec, root) for spec in SPECS.values()]


_download = download
