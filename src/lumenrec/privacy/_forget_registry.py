"""Registry side of an erasure: which versions hold a user, forgetting inside a pipeline,
and rewriting or deleting an older version directory in place (atomically)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lumenrec.data.vocab import IdIndex
from lumenrec.privacy._forget_models import PENDING, forget_in_model, overall_effect

__all__ = ["delete_version", "forget_pipeline", "rewrite_version", "versions_holding"]

log = logging.getLogger(__name__)
_VOCAB_USERS = "vocab-users.parquet"


def versions_holding(registry: Any, user_id: str) -> dict[str, bool]:
    """Versions whose user vocabulary holds ``user_id``.

    Returns
    -------
    dict of str to bool
        ``{version: True}`` for a readable vocabulary with the user, ``{version: False}`` for
        a version whose vocabulary cannot be read (it may hold the user: it is deleted).
    """
    out: dict[str, bool] = {}
    for version in registry.versions():
        path = registry.versions_dir / version / _VOCAB_USERS
        try:
            ids = pd.read_parquet(path, columns=["id"])["id"].astype(str)
        except (OSError, KeyError, ValueError) as err:
            log.warning("model version %s: user vocabulary unreadable (%s)", version, err)
            out[version] = False
            continue
        if (ids == user_id).any():
            out[version] = True
    return out


def forget_pipeline(
    pipeline: Any, user_id: str, *, now: float, retrain_within_s: float
) -> tuple[Any, dict[str, str]]:
    """A new pipeline without ``user_id`` (the loaded pipeline's model is changed in place).

    Returns
    -------
    pipeline : RecommendPipeline
        Same items, catalogue and watermark; the user vocabulary without the user.
    effects : dict of str to str
        Each model part's effect (see :func:`~lumenrec.privacy._forget_models.forget_in_model`).
    """
    from lumenrec.pipeline import RecommendPipeline

    u = int(pipeline.users.index([user_id])[0])
    effects = forget_in_model(pipeline.model, np.array([u], np.int64))
    users = IdIndex(np.delete(np.asarray(pipeline.users.ids, object), u), name=pipeline.users.name)
    meta = dict(pipeline.metadata)
    meta["erasures"] = int(meta.get("erasures", 0)) + 1
    if overall_effect(effects) == PENDING:
        pending = dict(meta.get("pending_erasures") or {})
        first = float(pending.get("first_at", now))
        meta["pending_erasures"] = {
            "count": int(pending.get("count", 0)) + 1,
            "first_at": first,
            "retrain_due_by": first + float(retrain_within_s),
        }
    fresh = RecommendPipeline(
        pipeline.model,
        users,
        pipeline.items,
        pipeline.catalog,
        text_fields=pipeline.text_fields,
        events_watermark=pipeline.events_watermark,
        trained_at=pipeline.trained_at,
        metadata=meta,
        sentences=pipeline.sentences,
    )
    if pipeline.ann is not None:  # item vectors may have changed (ALS): rebuild the index
        fresh.use_ann(**pipeline.ann.params())
    return fresh, effects


def rewrite_version(
    registry: Any, version: str, user_id: str, *, now: float, within: float
) -> None:
    """Replace an older version directory by the same pipeline with ``user_id`` forgotten.

    The new artifact is written beside it (``.<version>.forget.tmp``), loaded back, and
    swapped in by two renames under the registry lock; a crash leaves either the old or the
    new directory plus a leftover the registry removes at start-up.
    """
    from lumenrec.pipeline import RecommendPipeline

    path = registry.path(version)
    pipeline = RecommendPipeline.load(path)
    fresh, _ = forget_pipeline(pipeline, user_id, now=now, retrain_within_s=within)
    fresh.metadata["rewritten_by_erasure_at"] = now
    tmp = registry.versions_dir / f".{version}.forget.tmp"
    old = registry.versions_dir / f".{version}.old-forget"
    with registry._locked():
        shutil.rmtree(tmp, ignore_errors=True)
        fresh.save(tmp)
        RecommendPipeline.load(tmp)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(registry.versions_dir)


def delete_version(registry: Any, version: str) -> None:
    """Remove a version directory (renamed away first, so it vanishes at once)."""
    path = registry.versions_dir / version
    old = registry.versions_dir / f".{version}.old-forget-{int(time.time())}"
    with registry._locked():
        os.replace(path, old)
        shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(registry.versions_dir)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
