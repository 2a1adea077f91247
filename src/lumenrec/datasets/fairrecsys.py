"""FairRecSys user-fairness splits (Rahmani et al., SIGIR 2022; Li et al., WWW 2021).

The authors published fixed 70/10/20 train/tune/test splits of ML-100K ("MovieLens"),
AmazonToy and LastFM, the 5% most active users ("005") and the rest, and the top-20%
items by popularity ("020", short head) and the rest (long tail). :func:`load_fairrecsys`
reads one dataset's files into three :class:`~lumenrec.data.dataset.Dataset` parts sharing
one vocabulary, plus the groups as dense indices.

The layout expected under ``folder`` (as copied from the authors' repository)::

    <name>_train.txt  <name>_tune.txt  <name>_test.txt          # "uid iid rating" lines
    groups/users/<user_group>/active_ids.txt, inactive_ids.txt  # one uid per line
    groups/items/<item_group>/shorthead_items.txt, longtail_items.txt
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from lumenrec.data.dataset import Dataset
from lumenrec.data.split import Split
from lumenrec.data.vocab import IdIndex
from lumenrec.errors import DataError
from lumenrec.types import IndexArray, PathLike

__all__ = ["FAIRRECSYS_NAMES", "FairRecSysData", "fairrecsys_metrics", "load_fairrecsys"]

#: Dataset folders of the authors' repository that ship all the files above.
FAIRRECSYS_NAMES = ("MovieLens", "AmazonToy", "LastFM")
_PARTS = ("train", "tune", "test")


@dataclass(frozen=True)
class FairRecSysData:
    """One FairRecSys dataset: the three parts and the published user and item groups.

    Attributes
    ----------
    name : str
        ``"MovieLens"``, ``"AmazonToy"`` or ``"LastFM"``.
    train, tune, test : Dataset
        The authors' 70/10/20 parts; they share one vocabulary (all ids of all files,
        sorted numerically), so dense indices line up. Ratings are kept (float32).
    active_users, inactive_users : ndarray of shape (n,), int32
        Dense user indices of the two published user groups (sorted).
    short_head_items, long_tail_items : ndarray of shape (n,), int32
        Dense item indices of the two published item groups (sorted).
    item_first_seen : ndarray of shape (n_train_items,), int32
        Dense indices of the training items in order of first appearance in the train file
        (Cornac's internal item order, which the authors' selection depends on).
    user_group, item_group : str
        The group definitions read (e.g. ``"005"`` and ``"020"``).
    checksums : dict of str to str
        sha256 of every file read, keyed by its path relative to the dataset folder.
    """

    name: str
    train: Dataset
    tune: Dataset
    test: Dataset
    active_users: IndexArray
    inactive_users: IndexArray
    short_head_items: IndexArray
    long_tail_items: IndexArray
    item_first_seen: IndexArray
    user_group: str
    item_group: str
    checksums: dict[str, str]

    @property
    def n_users(self) -> int:
        """Size of the shared user vocabulary."""
        return self.train.n_users

    @property
    def n_items(self) -> int:
        """Size of the shared item vocabulary."""
        return self.train.n_items

    def user_labels(self) -> NDArray[np.object_]:
        """Group label per user: ``"active"``, ``"inactive"`` or None (in neither file).

        Returns
        -------
        ndarray of shape (n_users,), object
        """
        labels = np.full(self.n_users, None, dtype=object)
        labels[self.active_users] = "active"
        labels[self.inactive_users] = "inactive"
        return labels

    def item_labels(self) -> NDArray[np.object_]:
        """Group label per item: ``"short_head"``, ``"long_tail"`` or None.

        Returns
        -------
        ndarray of shape (n_items,), object
        """
        labels = np.full(self.n_items, None, dtype=object)
        labels[self.short_head_items] = "short_head"
        labels[self.long_tail_items] = "long_tail"
        return labels

    def as_split(self) -> Split:
        """A :class:`Split` that fits on ``train`` and tests on ``test`` (tune in ``extras``).

        ``valid`` is left empty on purpose: the authors fit on train only, and
        :func:`lumenrec.evaluation.protocol.evaluate` fits on ``train ∪ valid``.
        """
        return Split(
            train=self.train,
            test=self.test,
            valid=None,
            protocol="fairrecsys",
            description=(
                f"FairRecSys {self.name}: the authors' fixed 70/10/20 split; fit on train, "
                "test on test (tune unused), training items masked"
            ),
            extras={"tune": self.tune},
        )


def _read_events(path: Path) -> pd.DataFrame:
    if not path.is_file():
        msg = f"FairRecSys file {path} not found; copy the authors' datasets/<name>/ folder there"
        raise DataError(msg)
    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, engine="python", dtype=str)
    except pd.errors.EmptyDataError:
        msg = f"{path} is empty; expected 'uid iid rating' lines"
        raise DataError(msg) from None
    if df.shape[1] < 3:
        msg = f"{path}: expected 3 columns 'uid iid rating', found {df.shape[1]}"
        raise DataError(msg)
    out = df.iloc[:, :3].set_axis(["uid", "iid", "rating"], axis=1)
    values = out.apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        msg = f"{path}: line {row + 1} is not 'uid iid rating' numbers: {df.iloc[row].tolist()}"
        raise DataError(msg)
    ids = values[["uid", "iid"]]
    if (ids % 1 != 0).any().any():
        msg = f"{path}: user and item ids must be integers"
        raise DataError(msg)
    return values.astype({"uid": np.int64, "iid": np.int64, "rating": np.float32})


def _read_ids(path: Path) -> NDArray[np.int64]:
    if not path.is_file():
        msg = f"FairRecSys group file {path} not found (is the group definition right?)"
        raise DataError(msg)
    tokens = path.read_text().split()
    try:
        return np.asarray([int(t) for t in tokens], dtype=np.int64)
    except ValueError:
        msg = f"{path}: expected one integer id per line"
        raise DataError(msg) from None


def _dense(ids: NDArray[np.int64], vocab: NDArray[np.int64], path: Path) -> IndexArray:
    pos = np.searchsorted(vocab, ids)
    ok = (pos < vocab.size) & (vocab[np.minimum(pos, vocab.size - 1)] == ids)
    if not ok.all():
        missing = ids[~ok][:5].tolist()
        msg = f"{path}: ids {missing} occur in none of the train/tune/test files"
        raise DataError(msg)
    return np.sort(pos).astype(np.int32)


def load_fairrecsys(
    folder: PathLike,
    name: str = "MovieLens",
    *,
    user_group: str = "005",
    item_group: str = "020",
) -> FairRecSysData:
    """Read one FairRecSys dataset (train/tune/test and its user and item groups).

    Parameters
    ----------
    folder : path
        Either the dataset folder itself (holding ``<name>_train.txt``) or the root holding
        ``<name>/`` (e.g. ``shared/datasets/fairrecsys``).
    name : str, default "MovieLens"
        File prefix: ``"MovieLens"`` (ML-100K), ``"AmazonToy"`` or ``"LastFM"``.
    user_group : str, default "005"
        Sub-folder of ``groups/users`` (``"005"``: top 5% most active; ``"2"``: the variant).
    item_group : str, default "020"
        Sub-folder of ``groups/items`` (``"020"``: top-20% popular items are the short head).

    Returns
    -------
    FairRecSysData

    Raises
    ------
    DataError
        A file is missing or malformed, a group id is in no part, the user groups overlap,
        or a user or item is in both groups.
    """
    root = Path(folder)
    base = root if (root / f"{name}_train.txt").is_file() else root / name
    if not base.is_dir():
        msg = (
            f"no FairRecSys dataset {name!r} under {root} (expected {name}/{name}_train.txt; "
            f"known names: {', '.join(FAIRRECSYS_NAMES)})"
        )
        raise DataError(msg)
    files = {part: base / f"{name}_{part}.txt" for part in _PARTS}
    frames = {part: _read_events(path) for part, path in files.items()}
    group_files = {
        "active": base / "groups" / "users" / user_group / "active_ids.txt",
        "inactive": base / "groups" / "users" / user_group / "inactive_ids.txt",
        "short_head": base / "groups" / "items" / item_group / "shorthead_items.txt",
        "long_tail": base / "groups" / "items" / item_group / "longtail_items.txt",
    }
    raw_groups = {key: _read_ids(path) for key, path in group_files.items()}
    all_events = pd.concat(frames.values(), ignore_index=True)
    user_vocab = np.unique(all_events["uid"].to_numpy())
    item_vocab = np.unique(all_events["iid"].to_numpy())
    users = IdIndex(user_vocab.tolist(), name="user")
    items = IdIndex(item_vocab.tolist(), name="item")
    parts = {}
    for part, df in frames.items():
        u = np.searchsorted(user_vocab, df["uid"].to_numpy()).astype(np.int32)
        i = np.searchsorted(item_vocab, df["iid"].to_numpy()).astype(np.int32)
        ratings = df["rating"].to_numpy(np.float32)
        parts[part] = Dataset(users, items, u, i, ratings, name=f"fairrecsys-{name}-{part}")
    vocabs = {"active": user_vocab, "inactive": user_vocab}
    groups = {
        key: _dense(ids, vocabs.get(key, item_vocab), group_files[key])
        for key, ids in raw_groups.items()
    }
    for a, b, what in (("active", "inactive", "user"), ("short_head", "long_tail", "item")):
        both = np.intersect1d(groups[a], groups[b])
        if both.size:
            msg = f"{both.size} {what}s are in both {a} and {b} (first dense index {both[0]})"
            raise DataError(msg)
    train_items = parts["train"].item_idx
    _, first = np.unique(train_items, return_index=True)
    first_seen = train_items[np.sort(first)].astype(np.int32)
    paths = [*files.values(), *group_files.values()]
    checksums = {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths
    }
    return FairRecSysData(
        name=name,
        train=parts["train"],
        tune=parts["tune"],
        test=parts["test"],
        active_users=groups["active"],
        inactive_users=groups["inactive"],
        short_head_items=groups["short_head"],
        long_tail_items=groups["long_tail"],
        item_first_seen=first_seen,
        user_group=user_group,
        item_group=item_group,
        checksums=checksums,
    )


def fairrecsys_metrics(
    ranked: NDArray[np.integer], relevant: Any, k: int = 10
) -> dict[str, NDArray[np.float64]]:
    """The authors' per-user NDCG, precision and recall at ``k`` (their ``UFR.ipynb``).

    ``ndcgk``: DCG = 1 if the first item is relevant, plus ``1 / ln(j)`` (natural log) for
    each relevant item at 1-based position ``j >= 2``; IDCG is the same sum as if all ``k``
    positions were relevant (7.1379 at k = 10), whatever the user's number of relevant
    items. Precision = hits / k; recall = hits / (number of relevant items). This is not the
    standard NDCG (log2 discounts, IDCG over ``min(n_relevant, k)``); report both, labelled.

    Parameters
    ----------
    ranked : ndarray of shape (n_users, >= k), int
        Item indices in rank order (-1 = padding, never a hit).
    relevant : sparse matrix of shape (n_users, n_items)
        Non-zero = relevant (row ``i`` belongs to ``ranked[i]``).
    k : int, default 10

    Returns
    -------
    dict of str to ndarray of shape (n_users,), float64
        ``"ndcg@k"``, ``"precision@k"``, ``"recall@k"``; NaN for users without relevant items.
    """
    from lumenrec.evaluation.metrics import hit_matrix

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        msg = f"k must be a positive int (got {k!r})"
        raise DataError(msg)
    items = np.asarray(ranked)
    if items.ndim != 2 or items.shape[1] < k:
        msg = f"ranked must have shape (n_users, >= {k}) (got {items.shape})"
        raise DataError(msg)
    hits = hit_matrix(items[:, :k], relevant).astype(np.float64)
    discounts = np.ones(k)
    discounts[1:] = 1.0 / np.log(np.arange(2, k + 1, dtype=np.float64))
    n_rel = np.diff(relevant.tocsr().indptr).astype(np.float64)
    n_hits = hits.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(n_rel > 0, n_hits / n_rel, np.nan)
    undefined = n_rel == 0
    ndcg = hits @ discounts / discounts.sum()
    precision = n_hits / k
    ndcg[undefined] = np.nan
    precision[undefined] = np.nan
    return {f"ndcg@{k}": ndcg, f"precision@{k}": precision, f"recall@{k}": recall}
