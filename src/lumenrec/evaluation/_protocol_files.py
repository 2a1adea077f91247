"""The files side of :mod:`lumenrec.evaluation.protocol`: the ranked lists as a long
DataFrame with external ids (:func:`recommendations_frame`), a split written as Parquet parts
plus a small ``split.json`` (:func:`save_split`, with :func:`_jsonable` for its metadata), and
:func:`metrics_from_files`, which recomputes the accuracy metrics from those files alone in
plain pandas/numpy, independently of :func:`~lumenrec.evaluation.protocol.evaluate` and of
:mod:`lumenrec.evaluation.metrics`, so any printed number can be checked by a third party."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lumenrec.errors import ConfigError, DataError
from lumenrec.types import PathLike, Recommendations

if TYPE_CHECKING:
    import pandas as pd

    from lumenrec.data.dataset import Dataset
    from lumenrec.data.split import Split

__all__ = ["_jsonable", "metrics_from_files", "recommendations_frame", "save_split"]

log = logging.getLogger("lumenrec.evaluation.protocol")  # the name its records had before the split


def recommendations_frame(recs: Recommendations, dataset: Dataset) -> pd.DataFrame:
    """Top-k lists as a long DataFrame with external ids (padding dropped).

    Parameters
    ----------
    recs : Recommendations
        Dense indices into ``dataset``'s vocabularies.
    dataset : Dataset
        Any dataset sharing the vocabularies the model was fitted with (e.g. a split part).

    Returns
    -------
    DataFrame
        Columns ``user_id`` (str), ``item_id`` (str), ``rank`` (int64, 1-based) and ``score``
        (float64), ordered by user then rank.
    """
    import pandas as pd

    rows, cols = np.nonzero(recs.items >= 0)
    users = np.asarray(recs.users, dtype=np.int64)[rows]
    items = recs.items[rows, cols].astype(np.int64)
    return pd.DataFrame(
        {
            "user_id": dataset.users.ids[users].astype(str),
            "item_id": dataset.items.ids[items].astype(str),
            "rank": (cols + 1).astype(np.int64),
            "score": recs.scores[rows, cols].astype(np.float64),
        }
    )


def save_split(split: Split, directory: PathLike) -> Path:
    """Write a split as Parquet files with external ids, plus a small ``split.json``.

    Files: ``train.parquet``, ``valid.parquet`` (only when the split has a validation part)
    and ``test.parquet``, each with columns ``user_id, item_id[, rating][, timestamp]`` from
    :meth:`Dataset.to_frame`. A model evaluated on the test part was fitted on train ∪ valid.

    Parameters
    ----------
    split : Split
    directory : path
        Created if needed; existing files of the same names are replaced.

    Returns
    -------
    Path
        ``directory``.
    """
    out = Path(os.fspath(directory))
    if out.exists() and not out.is_dir():
        msg = f"cannot save the split to {out}: it exists and is not a directory"
        raise DataError(msg)
    out.mkdir(parents=True, exist_ok=True)
    parts = {"train": split.train, "valid": split.valid, "test": split.test}
    sizes = {}
    for name, part in parts.items():
        if part is None:
            continue
        part.to_frame().to_parquet(out / f"{name}.parquet", index=False)
        sizes[name] = part.n_events
    meta = {
        "protocol": split.protocol,
        "seed": _jsonable(split.seed),
        "description": split.description,
        "dataset": split.train.name,
        "n_users": split.train.n_users,
        "n_items": split.train.n_items,
        "n_events": sizes,
        "extras": {key: _jsonable(v) for key, v in dict(split.extras or {}).items()},
    }
    (out / "split.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
    log.info("saved split %s (seed %s) to %s", split.protocol, split.seed, out)
    return out


def _jsonable(value: Any) -> Any:
    """A JSON-safe version of ``value``: numpy scalars and 1-D arrays to Python, NaN/inf to None.

    Anything else (objects, large or multi-dimensional arrays) becomes a short description.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _jsonable(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.ndim == 1 and value.dtype.kind in "biuf" and value.size <= 1_000_000:
            return [_jsonable(v) for v in value.tolist()]
        return f"<ndarray shape={value.shape} dtype={value.dtype}>"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def metrics_from_files(
    recs_path: PathLike, test_path: PathLike, k: int, *, model: str | None = None
) -> dict[str, float | int]:
    """Recompute the accuracy metrics at ``k`` from a saved recommendation and test file.

    Deliberately independent of :func:`evaluate` and :mod:`lumenrec.evaluation.metrics`: a plain
    loop over users in pandas/numpy following BENCHMARKS.md's definitions. Every (user, item) of
    the test file is relevant; users of the test file without any recommendation score 0.

    Parameters
    ----------
    recs_path : path
        Parquet with ``user_id, item_id, rank`` (1-based) and optionally ``model``
        (from ``lumenrec evaluate --save-recs``).
    test_path : path
        ``test.parquet`` (or ``valid.parquet``) from :func:`save_split`.
    k : int
        Cut-off.
    model : str, optional
        Which model's rows to use; required when the file holds several models.

    Returns
    -------
    dict
        ``precision@k, recall@k, ndcg@k, map@k, mrr@k, hr@k, f1@k`` (means over test users)
        and ``n_users``.
    """
    import pandas as pd

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        msg = f"k must be a positive int (got {k!r})"
        raise ConfigError(msg)
    recs = pd.read_parquet(recs_path)
    test = pd.read_parquet(test_path, columns=["user_id", "item_id"])
    if "model" in recs.columns:
        names = sorted(recs["model"].astype(str).unique())
        if model is None and len(names) == 1:
            model = names[0]
        if model not in names:
            msg = f"{recs_path} holds models {names}; pass model= one of them (got {model!r})"
            raise ConfigError(msg)
        recs = recs[recs["model"].astype(str) == model]
    elif model is not None:
        msg = f"{recs_path} has no 'model' column, so model={model!r} cannot be selected"
        raise ConfigError(msg)
    recs = recs.astype({"user_id": str, "item_id": str}).sort_values(["user_id", "rank"])
    ranked = {u: g["item_id"].tolist() for u, g in recs[recs["rank"] <= k].groupby("user_id")}
    relevant = test.astype(str).groupby("user_id")["item_id"].agg(lambda s: set(s.tolist()))
    if relevant.empty:
        msg = f"{test_path} has no events; nothing to evaluate"
        raise DataError(msg)
    names = ("precision", "recall", "ndcg", "map", "mrr", "hr", "f1")
    values: dict[str, list[float]] = {name: [] for name in names}
    for user, rel in relevant.items():
        top = ranked.get(user, [])[:k]
        hits = [item in rel for item in top]
        n_hits = sum(hits)
        dcg = sum(1.0 / math.log2(r + 1) for r, h in enumerate(hits, start=1) if h)
        idcg = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
        ap = sum(sum(hits[:r]) / r for r, h in enumerate(hits, start=1) if h)
        first = next((r for r, h in enumerate(hits, start=1) if h), None)
        precision, recall = n_hits / k, n_hits / len(rel)
        values["precision"].append(precision)
        values["recall"].append(recall)
        values["ndcg"].append(dcg / idcg)
        values["map"].append(ap / min(len(rel), k))
        values["mrr"].append(0.0 if first is None else 1.0 / first)
        values["hr"].append(float(n_hits > 0))
        pr = precision + recall
        values["f1"].append(2.0 * precision * recall / pr if pr > 0 else 0.0)
    out: dict[str, float | int] = {f"{name}@{k}": float(np.mean(v)) for name, v in values.items()}
    out["n_users"] = len(relevant)
    return out
