"""Debiasing datasets with a biased (MNAR) training log and a randomly assigned (MAR) test.

- **Coat** (Schnabel et al., ICML 2016): 290 users x 300 coats. ``train.ascii`` holds 6,960
  self-selected ratings (24 per user), ``test.ascii`` 4,640 ratings of 16 randomly assigned
  items per user. Both are dense 290 x 300 integer matrices, 0 = not rated, 1..5 = stars.
  Read from ``<data_dir>/coat/`` (``data_dir`` argument, else ``$LUMENREC_DATA_DIR``, else
  ``~/.lumenrec/data``; a folder that itself holds ``train.ascii`` is accepted too). Research
  use only; the authors publish it at https://www.cs.cornell.edu/~schnabts/mnar/.
- **Yahoo! R3** (Marlin & Zemel 2009): its Webscope licence forbids redistribution, so
  LumenRec never ships or downloads it. :func:`load_yahoo_r3` reads the official files from
  the user's own copy: ``ydata-ymusic-rating-study-v1_0-train.txt`` (user-selected songs) and
  ``-test.txt`` (10 randomly chosen songs per test user), tab-separated ``user item rating``
  lines with 1-based ids.

Both loaders return a :class:`MNARData` with users x items CSR rating matrices (0-based
dense indices = id - 1 for Yahoo, row/column position for Coat).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.datasets._registry import resolve_data_dir
from lumenrec.errors import DataError
from lumenrec.types import PathLike

__all__ = ["COAT_FILES", "YAHOO_R3_FILES", "MNARData", "load_coat", "load_yahoo_r3"]

#: Required Coat files (as published in coat.zip).
COAT_FILES = ("train.ascii", "test.ascii")
_COAT_OPTIONAL = {
    "propensities": "propensities.ascii",
    "user_features": "user_item_features/user_features.ascii",
    "item_features": "user_item_features/item_features.ascii",
}
#: Required Yahoo! R3 files (Webscope dataset R3, as the user downloaded them).
YAHOO_R3_FILES = (
    "ydata-ymusic-rating-study-v1_0-train.txt",
    "ydata-ymusic-rating-study-v1_0-test.txt",
)
_COAT_URL = "https://www.cs.cornell.edu/~schnabts/mnar/"
_YAHOO_URL = "https://webscope.sandbox.yahoo.com/catalog.php?datatype=r&did=3"


@dataclass(frozen=True)
class MNARData:
    """A missing-not-at-random training log with a missing-at-random test set.

    Attributes
    ----------
    name : str
        ``"coat"`` or ``"yahoo-r3"``.
    train : scipy.sparse.csr_matrix of shape (n_users, n_items), float32
        Self-selected (MNAR) ratings, 1..5; absent = not observed.
    test : scipy.sparse.csr_matrix of shape (n_users, n_items), float32
        Randomly assigned (MAR) ratings, 1..5.
    sha256 : dict of str to str
        File name -> sha256 of the files read (for result records).
    user_features, item_features : ndarray of shape (n, d), int8, optional
        One-hot side features (Coat only, when present).
    propensities : ndarray of shape (n_users, n_items), float64, optional
        The authors' learned observation propensities of the train set (Coat only).
    """

    name: str
    train: sp.csr_matrix
    test: sp.csr_matrix
    sha256: dict[str, str]
    user_features: NDArray[np.int8] | None = field(default=None, repr=False)
    item_features: NDArray[np.int8] | None = field(default=None, repr=False)
    propensities: NDArray[np.float64] | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_users, n_items)``."""
        return (int(self.train.shape[0]), int(self.train.shape[1]))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _coat_folder(data_dir: PathLike | None) -> Path:
    root = resolve_data_dir(data_dir)
    if not (root / "coat").is_dir() and (root / "train.ascii").is_file():
        return root
    return root / "coat"


def _read_matrix(path: Path, dtype: type, shape: tuple[int, int] | None) -> NDArray:
    try:
        arr = np.loadtxt(path, dtype=dtype, ndmin=2)
    except ValueError as err:
        msg = f"{path} is not a whitespace-separated numeric matrix ({err})"
        raise DataError(msg) from err
    if shape is not None and arr.shape != shape:
        msg = f"{path} has shape {arr.shape}; expected {shape} to match train.ascii"
        raise DataError(msg)
    return arr


def _ratings(path: Path, shape: tuple[int, int] | None) -> sp.csr_matrix:
    dense = _read_matrix(path, np.int64, shape)
    if dense.min() < 0 or dense.max() > 5:
        msg = f"{path} holds values outside 0..5 (0 = missing, 1..5 = stars)"
        raise DataError(msg)
    mat = sp.csr_matrix(dense.astype(np.float32))
    mat.eliminate_zeros()
    mat.sort_indices()
    return mat


def load_coat(data_dir: PathLike | None = None, *, side_files: bool = True) -> MNARData:
    """Read Coat's train/test ratings (and, when present, features and propensities).

    Parameters
    ----------
    data_dir : str or PathLike, optional
        Folder holding ``coat/`` (or the coat folder itself). Default: ``$LUMENREC_DATA_DIR``,
        else ``~/.lumenrec/data``.
    side_files : bool
        Also read ``propensities.ascii`` and ``user_item_features/*.ascii`` when present.

    Returns
    -------
    MNARData
        ``train``: 290 x 300 with 6,960 ratings; ``test``: 4,640 ratings.

    Raises
    ------
    DataError
        A required file is missing (the message names it and where to get it) or malformed.
    """
    folder = _coat_folder(data_dir)
    missing = [f for f in COAT_FILES if not (folder / f).is_file()]
    if missing:
        msg = (
            f"Coat: {[str(folder / m) for m in missing]} not found. Download coat.zip from "
            f"{_COAT_URL}, unzip it so that {folder}/train.ascii and test.ascii exist, and pass "
            "that folder's parent as data_dir (or set LUMENREC_DATA_DIR)"
        )
        raise DataError(msg)
    train = _ratings(folder / "train.ascii", None)
    test = _ratings(folder / "test.ascii", train.shape)
    sha = {f: _sha(folder / f) for f in COAT_FILES}
    extras: dict[str, NDArray | None] = dict.fromkeys(_COAT_OPTIONAL)
    if side_files:
        rows = {"propensities": train.shape, "user_features": None, "item_features": None}
        for key, rel in _COAT_OPTIONAL.items():
            path = folder / rel
            if path.is_file():
                dtype = np.float64 if key == "propensities" else np.int8
                extras[key] = _read_matrix(path, dtype, rows[key])
                sha[rel] = _sha(path)
    for key, n in (("user_features", train.shape[0]), ("item_features", train.shape[1])):
        arr = extras[key]
        if arr is not None and arr.shape[0] != n:
            msg = f"{folder / _COAT_OPTIONAL[key]} has {arr.shape[0]} rows; expected {n}"
            raise DataError(msg)
    return MNARData(
        "coat",
        train,
        test,
        sha,
        user_features=extras["user_features"],
        item_features=extras["item_features"],
        propensities=extras["propensities"],
    )


def _read_triples(path: Path) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                u, i, r = (int(p) for p in parts)
            except ValueError as err:
                msg = f"{path}: line {lineno} is not 'user<TAB>item<TAB>rating' integers ({err})"
                raise DataError(msg) from err
            if u < 1 or i < 1 or not 1 <= r <= 5:
                msg = f"{path}: line {lineno}: ids are 1-based and ratings 1..5 (got {line!r})"
                raise DataError(msg)
            users.append(u - 1)
            items.append(i - 1)
            ratings.append(r)
    if not users:
        msg = f"{path} is empty; expected 'user<TAB>item<TAB>rating' lines"
        raise DataError(msg)
    return (
        np.asarray(users, np.int64),
        np.asarray(items, np.int64),
        np.asarray(ratings, np.float32),
    )


def load_yahoo_r3(path: PathLike) -> MNARData:
    """Read the user's own copy of Yahoo! R3 (never redistributed by LumenRec).

    Parameters
    ----------
    path : str or PathLike
        Folder with ``ydata-ymusic-rating-study-v1_0-train.txt`` and ``-test.txt`` as
        obtained from Yahoo! Webscope (tab-separated ``user item rating``, 1-based ids).

    Returns
    -------
    MNARData
        Users and items are ``id - 1``; the shape covers the largest id of either file
        (15,400 x 1,000 for the official files).

    Raises
    ------
    DataError
        A file is missing (the message names it and how to request the data), malformed, or
        a (user, item) pair repeats within one file.
    """
    folder = Path(path).expanduser()
    missing = [f for f in YAHOO_R3_FILES if not (folder / f).is_file()]
    if missing:
        msg = (
            f"Yahoo! R3: {[str(folder / m) for m in missing]} not found. Its licence forbids "
            f"redistribution: request 'R3 - Yahoo! Music ratings for user selected and randomly "
            f"selected songs' at {_YAHOO_URL} and pass the folder holding the two .txt files"
        )
        raise DataError(msg)
    parts = [_read_triples(folder / f) for f in YAHOO_R3_FILES]
    shape = (
        int(max(p[0].max() for p in parts)) + 1,
        int(max(p[1].max() for p in parts)) + 1,
    )
    mats = []
    for name, (u, i, r) in zip(YAHOO_R3_FILES, parts, strict=True):
        keys = u * shape[1] + i
        if len(np.unique(keys)) != len(keys):
            msg = f"{folder / name} rates some (user, item) pair twice; is it the official file?"
            raise DataError(msg)
        mat = sp.csr_matrix((r, (u, i)), shape=shape, dtype=np.float32)
        mat.sort_indices()
        mats.append(mat)
    sha = {f: _sha(folder / f) for f in YAHOO_R3_FILES}
    return MNARData("yahoo-r3", mats[0], mats[1], sha)
