"""Reading and writing :class:`~lumenrec.pipeline.RecommendPipeline` artifacts: the model as a
child artifact, the vocabularies and the catalogue as parquet, the ANN index when there is one."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from lumenrec.data.vocab import IdIndex
from lumenrec.errors import ArtifactError
from lumenrec.persistence import read_artifact, write_artifact
from lumenrec.types import PathLike

if TYPE_CHECKING:
    from lumenrec.pipeline import RecommendPipeline

__all__ = ["load_pipeline", "save_pipeline"]

log = logging.getLogger(__name__)
_VOCAB_USERS, _VOCAB_ITEMS, _CATALOG = (
    "vocab-users.parquet",
    "vocab-items.parquet",
    "catalog.parquet",
)
_ANN_INDEX, _ANN_LABELS = "ann-hnsw.faiss", "ann-labels.npy"


def save_pipeline(pipeline: RecommendPipeline, path: PathLike) -> None:
    """Write the pipeline as an artifact directory (``model/`` + parquet files + manifest)."""
    extra = {_VOCAB_USERS: _ids_bytes(pipeline.users), _VOCAB_ITEMS: _ids_bytes(pipeline.items)}
    if pipeline.catalog is not None:
        extra[_CATALOG] = _frame_bytes(pipeline.catalog.reset_index())
    ann_params = None
    if pipeline.ann is not None:
        extra[_ANN_INDEX], extra[_ANN_LABELS] = pipeline.ann.to_bytes()
        ann_params = pipeline.ann.params()
    state = {
        "events_watermark": int(pipeline.events_watermark),
        "trained_at": float(pipeline.trained_at),
        "text_fields": pipeline.text_fields,
        "metadata": pipeline.metadata,
        "n_users": pipeline.n_users,
        "n_items": pipeline.n_items,
        "ann": ann_params,
    }
    write_artifact(
        path,
        cls=type(pipeline),
        params={},
        arrays={},
        state=state,
        extra_files=extra,
        children={"model": pipeline.model.save},
    )


def load_pipeline(cls: type[RecommendPipeline], path: PathLike) -> RecommendPipeline:
    """Load and :meth:`check` a pipeline written by :meth:`save`."""
    root = Path(path)
    found, _, _, manifest = read_artifact(root)
    if found is not cls:
        msg = f"artifact at {root} holds a {found.__name__}, not a RecommendPipeline"
        raise ArtifactError(msg)
    model_cls, *_ = read_artifact(root / "model")
    model = model_cls.load(root / "model")
    state = manifest.get("state", {})
    try:
        users = IdIndex(pd.read_parquet(root / _VOCAB_USERS)["id"], name="user")
        items = IdIndex(pd.read_parquet(root / _VOCAB_ITEMS)["id"], name="item")
        catalog = None
        if (root / _CATALOG).is_file():
            catalog = pd.read_parquet(root / _CATALOG).set_index("item_id")
            catalog.index = catalog.index.astype(str)
    except (OSError, KeyError, ValueError) as err:
        msg = f"model at {root} is corrupt: vocabulary or catalog unreadable ({err})"
        raise ArtifactError(msg) from err
    if catalog is not None and state.get("text_fields"):
        catalog.attrs["text_fields"] = list(state["text_fields"])
    pipeline = cls(
        model,
        users,
        items,
        catalog,
        text_fields=state.get("text_fields"),
        events_watermark=int(state.get("events_watermark", 0)),
        trained_at=float(state.get("trained_at", 0.0)),
        metadata=dict(state.get("metadata", {})),
        version=root.name,
    )
    if state.get("ann") and (root / _ANN_INDEX).is_file():
        from lumenrec.retrieval import HNSWIndex

        index = HNSWIndex.from_bytes(
            (root / _ANN_INDEX).read_bytes(), (root / _ANN_LABELS).read_bytes(), **state["ann"]
        )
        pipeline.use_ann(index)
    pipeline.check()
    return pipeline


def _ids_bytes(index: IdIndex) -> bytes:
    return _frame_bytes(pd.DataFrame({"id": pd.Series(index.ids, dtype=object).astype(str)}))


def _frame_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf, index=False)
    except (TypeError, ValueError, ImportError) as err:  # mixed object columns: store as text
        log.debug("catalog columns stored as text (%s)", err)
        buf = io.BytesIO()
        text = frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})
        text.to_parquet(buf, index=False)
    return buf.getvalue()
