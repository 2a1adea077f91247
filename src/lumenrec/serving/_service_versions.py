"""The model-version part of :class:`~lumenrec.serving.service.Service`: loading a published
version (retrieval configured, the store's catalogue changes replayed onto it), swapping it in
atomically or rejecting it while the old one keeps serving, ``reload`` and ``retrain``
(refit on the training data plus stored feedback, publish, swap), and applying stored item
rows to a pipeline."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from lumenrec.errors import ArtifactError, LumenError, NotFittedError
from lumenrec.pipeline import RecommendPipeline
from lumenrec.serving.errors import ServiceError
from lumenrec.serving.store import EventStore

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["ModelVersionsMixin"]

log = logging.getLogger("lumenrec.serving.service")  # the name its records had before the split


class ModelVersionsMixin:
    """Methods :class:`~lumenrec.serving.service.Service` gains for model versions."""

    settings: Any
    metrics: Any
    store: EventStore | None
    registry: Any
    pipeline: RecommendPipeline | None
    last_reload_error: dict[str, Any] | None
    cache: Any
    _reload_lock: Any
    _retrain_lock: Any
    require: Any

    def _load(self, version: str) -> RecommendPipeline:
        assert self.registry is not None and self.store is not None
        pipeline = self.registry.load(version)
        self._configure_retrieval(pipeline)
        try:
            self._replay(pipeline)
        except LumenError as err:
            msg = f"model {version} cannot take the stored catalogue changes: {err}"
            raise ArtifactError(msg) from err
        return pipeline

    def _configure_retrieval(self, pipeline: RecommendPipeline) -> None:
        """Exact or HNSW retrieval for ``pipeline``, per ``settings.retrieval`` (before replay,
        so stored item deletions become tombstones of the index)."""
        s = self.settings
        wanted = s.retrieval == "ann" or (
            s.retrieval == "auto" and pipeline.n_items >= s.ann_min_items
        )
        if not wanted or not pipeline.supports_ann():
            if s.retrieval == "ann":
                log.warning(
                    "retrieval=ann ignored for %s: %s has no factor matrices; ranking exactly",
                    pipeline.version,
                    type(pipeline.model).__name__,
                )
            pipeline.use_exact()
            return
        params = {
            "m": s.ann_m,
            "ef_construction": s.ann_ef_construction,
            "ef_search": s.ann_ef_search,
            "rebuild_share": s.ann_rebuild_share,
        }
        if pipeline.ann is not None:  # shipped with the artifact: keep its graph
            pipeline.ann.ef_search = s.ann_ef_search
            pipeline.ann.rebuild_share = s.ann_rebuild_share
            return
        start = time.perf_counter()
        pipeline.use_ann(**params)
        log.info(
            "built an HNSW index over %d items for %s in %.1f s",
            pipeline.n_items,
            pipeline.version,
            time.perf_counter() - start,
        )

    def _replay(self, pipeline: RecommendPipeline) -> None:
        """Apply the store's items (added/updated/deleted) to a freshly loaded pipeline."""
        assert self.store is not None
        live, deleted = [], []
        for item_id, fields, text, is_deleted in self.store.items():
            (deleted if is_deleted else live).append((item_id, fields, text))
        if live:
            self._apply_items(pipeline, live)
        if deleted:
            pipeline.delete_items([d[0] for d in deleted])

    def _swap(self, pipeline: RecommendPipeline) -> None:
        previous = self.pipeline
        self.pipeline = pipeline
        self.cache.clear()
        self.metrics.set_model(pipeline.version)
        self.metrics.inc("lumenrec_model_reloads_total", "ok")
        if self.store is not None:
            self.store.log_model(pipeline.version or "?", "loaded")
        log.info(
            "serving model %s (previous %s)",
            pipeline.version,
            None if previous is None else previous.version,
        )

    def _reject(self, version: str, err: Exception) -> None:
        root = str(self.settings.model_dir)
        reason = str(err).replace(root, "MODEL_DIR")
        self.last_reload_error = {"version": version, "error": reason, "at": time.time()}
        self.metrics.inc("lumenrec_model_reloads_total", "rejected")
        log.error("model version %s rejected: %s", version, err)
        if self.store is not None:
            self.store.log_model(version, "rejected", reason)

    def reload(self, version: str | None = None) -> dict[str, Any]:
        """Load ``version`` (default: the registry's current) and swap it in; make it current.

        Raises
        ------
        UnknownIdError
            No such version (404); nothing changes.
        ArtifactError
            Corrupt or incompatible (409); the old model keeps serving.
        """
        assert self.registry is not None
        with self._reload_lock:
            target = version or self.registry.current()
            if target is None:
                msg = f"no model published in {self.settings.model_dir.name}"
                raise NotFittedError(msg)
            self.registry.path(target)  # 404 before anything else
            previous = None if self.pipeline is None else self.pipeline.version
            try:
                pipeline = self._load(target)
            except ArtifactError as err:
                self._reject(target, err)
                msg = f"model version {target!r} rejected, {previous} keeps serving: " + str(
                    self.last_reload_error["error"] if self.last_reload_error else err
                )
                raise ArtifactError(msg) from err
            if version is not None and self.registry.current() != version:
                self.registry.set_current(version)
            self._swap(pipeline)
            self.last_reload_error = None
        return {"model_version": target, "previous": previous}

    def retrain(self) -> dict[str, Any]:
        """Refit the serving model's configuration on its data + stored feedback; publish; swap."""
        pipeline, store = self.require()
        assert self.registry is not None
        if not self._retrain_lock.acquire(blocking=False):
            msg = "a retrain is already running; try again when it has finished"
            raise ServiceError(409, msg)
        try:
            start, snapshot = time.perf_counter(), time.time()
            data, upto = self._training_data(pipeline, store)
            new = RecommendPipeline.fit(
                pipeline.model.clone(),
                data,
                events_watermark=upto,
                trained_at=snapshot,  # users deleted while fitting stay hidden
                text_fields=pipeline.text_fields,
                metadata={**pipeline.metadata, "retrained_from": pipeline.version},
            )
            version = self.registry.publish(new)
            new.version = version
            self._configure_retrieval(new)
            with self._reload_lock:
                self._replay(new)
                previous = None if self.pipeline is None else self.pipeline.version
                self._swap(new)
                self.last_reload_error = None
            store.log_model(version, "published", f"retrained from {pipeline.version}")
            return {
                "model_version": version,
                "previous": previous,
                "n_users": new.n_users,
                "n_items": new.n_items,
                "seconds": time.perf_counter() - start,
            }
        finally:
            self._retrain_lock.release()

    @staticmethod
    def _training_data(pipeline: RecommendPipeline, store: EventStore) -> tuple[Dataset, int]:
        """The serving model's training data minus deleted users and items, plus new events."""
        from lumenrec.data.io import from_pandas

        upto = store.max_seq()
        gone = store.deleted_user_hashes(since=pipeline.trained_at)
        drop = {u for u in pipeline.users.ids if store.hash_id(u) in gone}
        base = pipeline.training_frame(drop_users=drop)
        fresh = store.events_frame(pipeline.events_watermark, upto).drop(columns="timestamp")
        deleted = set(pipeline.deleted_items())
        events = pd.concat([base, fresh], ignore_index=True)
        events = events[~events["item_id"].isin(deleted)]
        catalog = pipeline.catalog
        if catalog is not None:
            catalog = catalog[~catalog.index.isin(deleted)]
        data = from_pandas(
            events,
            items=catalog,
            col_timestamp=None,
            duplicates="last",
            name=str(pipeline.metadata.get("dataset", "retrain")),
        )
        if data.catalog is not None and pipeline.text_fields:
            data.catalog.attrs["text_fields"] = list(pipeline.text_fields)
        return data, upto

    @staticmethod
    def _apply_items(
        pipeline: RecommendPipeline, rows: list[tuple[str, dict[str, Any], str | None]]
    ) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"added": [], "updated": [], "pending": []}
        with_text = [r for r in rows if r[2]]
        groups = [(with_text, [r[2] for r in with_text]), ([r for r in rows if not r[2]], None)]
        for group, texts in groups:
            if not group:
                continue
            frame = pd.DataFrame(
                [
                    {k: (v if isinstance(v, str) else str(v)) for k, v in r[1].items()}
                    for r in group
                ],
                index=pd.Index([r[0] for r in group], name="item_id"),
            )
            if not hasattr(pipeline.model, "add_items"):
                known = [r[0] for r in group if r[0] in pipeline.items]
                out["pending"] += [r[0] for r in group if r[0] not in pipeline.items]
                frame = frame.loc[known]
                texts = None
                if frame.empty:
                    continue
            result = pipeline.add_items(frame, texts)
            out["added"] += result["added"]
            out["updated"] += result["updated"]
        return out
