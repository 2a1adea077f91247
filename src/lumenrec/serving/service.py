"""Service: the serving state behind the routers (pipeline, store, registry, cache, reloads).

It lives on ``app.state.service``. The pipeline reference is swapped atomically on reload, so
a request that started on the old model finishes on it; a rejected version never replaces
the one serving. Catalogue changes and deletions are written to the store first, then applied
to the live pipeline, and replayed onto every newly loaded version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lumenrec._post_rank import parse_chain
from lumenrec.controls import UserControls
from lumenrec.errors import ArtifactError, LumenError, NotFittedError, UnknownIdError
from lumenrec.pipeline import RecommendPipeline
from lumenrec.serving._json import dumps, loads
from lumenrec.serving.errors import ServiceError
from lumenrec.serving.exploration import Explorer
from lumenrec.serving.metrics import Metrics
from lumenrec.serving.profile import UserControlsMixin
from lumenrec.serving.registry import ModelRegistry
from lumenrec.serving.settings import ServiceSettings
from lumenrec.serving.store import EventStore, StoreError

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["Service"]

log = logging.getLogger(__name__)


class _ResultCache:
    """Per-user LRU of recent responses with a TTL; invalidated on the user's writes.

    Responses are kept as JSON bytes: thousands of cached lists with their reasons as Python
    dicts made the garbage collector's full passes stall requests (p99 > 100 ms)."""

    def __init__(self, size: int, ttl: float) -> None:
        self.size, self.ttl = size, ttl
        self._data: OrderedDict[str, dict[tuple, tuple[float, bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, user_id: str, key: tuple) -> bytes | None:
        if not self.size:
            return None
        with self._lock:
            hit = self._data.get(user_id, {}).get(key)
            if hit is None or time.monotonic() - hit[0] > self.ttl:
                return None
            self._data.move_to_end(user_id)
            return hit[1]

    def put(self, user_id: str, key: tuple, value: bytes) -> None:
        if not self.size:
            return
        with self._lock:
            entry = self._data.setdefault(user_id, {})
            entry[key] = (time.monotonic(), value)
            self._data.move_to_end(user_id)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def drop(self, user_id: str) -> None:
        with self._lock:
            self._data.pop(user_id, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __contains__(self, user_id: str) -> bool:
        with self._lock:
            return user_id in self._data


class Service(UserControlsMixin):
    """Everything a request needs; built by ``create_app``, started by its lifespan."""

    def __init__(self, settings: ServiceSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store: EventStore | None = None
        self.explorer: Explorer | None = None
        self._pseudonym = settings.pseudonymizer()
        self.registry: ModelRegistry | None = None
        self.pipeline: RecommendPipeline | None = None
        self.last_reload_error: dict[str, Any] | None = None
        self.cache = _ResultCache(settings.cache_size, settings.cache_ttl_s)
        self._reload_lock = threading.Lock()
        self._retrain_lock = threading.Lock()
        self._threadpools: Any = None
        self._pinned = threading.local()
        self._deletion_mark = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, preloaded: RecommendPipeline | None = None) -> None:
        """Open the store and registry; serve ``preloaded`` or load the current version (else
        the newest one that loads)."""
        s = self.settings
        self.store = EventStore(
            s.db,
            synchronous=s.store_synchronous,
            busy_timeout_ms=s.busy_timeout_ms,
            group_commit=s.store_group_commit,
        )
        self.registry = ModelRegistry(s.model_dir)
        self.explorer = Explorer(s, self.store)
        self._start_pipeline(preloaded)
        if self.pipeline is not None:
            self.explorer.load(self.pipeline)

    def _start_pipeline(self, preloaded: RecommendPipeline | None) -> None:
        s = self.settings
        if preloaded is not None:
            self._configure_retrieval(preloaded)
            self._replay(preloaded)
            self._swap(preloaded)
            return
        current = self.registry.current()
        candidates = [current] if current else []
        candidates += [v for v in reversed(self.registry.versions()) if v != current]
        for version in candidates:
            try:
                self._swap(self._load(version))
                return
            except (ArtifactError, UnknownIdError) as err:
                self._reject(version, err)
        log.warning("no loadable model in %s; /health/ready reports not ready", s.model_dir)

    def stop(self) -> None:
        if self.explorer is not None:
            try:
                self.explorer.save(self.pipeline)
            except OSError as err:
                log.warning("bandit state not saved: %s", err)
        if self.store is not None:
            self.store.close()

    def pin_threads(self, controller: Any = None) -> None:
        """Pin BLAS/OpenMP pools of the calling thread to ``settings.blas_threads``.

        The lifespan pins the process-wide pools and hands over its ``ThreadpoolController``;
        OpenMP-based libraries (faiss's OpenBLAS and libgomp) keep a thread count per
        thread, so each request thread is pinned once more on its first request (~0.1 ms).
        """
        if controller is not None:
            self._threadpools = controller
        if self._threadpools is not None and not getattr(self._pinned, "done", False):
            self._threadpools.limit(limits=self.settings.blas_threads)
            self._pinned.done = True

    def uid(self, user_id: str) -> str:
        """The id the service stores and serves under: the pseudonym when pseudonymisation is
        on (``LUMENREC_PSEUDONYMIZE``), else the id itself."""
        return user_id if self._pseudonym is None else self._pseudonym(user_id)

    def require_store(self) -> EventStore:
        """The event store (writes and deletions work without a model)."""
        if self.store is None:
            msg = "event store unavailable: the service is not started"
            raise StoreError(msg)
        return self.store

    def require(self) -> tuple[RecommendPipeline, EventStore]:
        """The serving pipeline and the store, or 503 when no model is loaded."""
        self.pin_threads()
        pipeline, store = self.pipeline, self.store
        if pipeline is None or store is None:
            msg = "no model loaded; publish one with `lumenrec train --out MODEL_DIR`"
            raise NotFittedError(msg)
        return pipeline, store

    # -- model versions --------------------------------------------------------------------
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

    # -- reads -----------------------------------------------------------------------------
    def recommend(
        self,
        user_id: str,
        k: int,
        exclude: list[str],
        strict: bool,
        rerank: str | None = None,
        explain: bool = True,
        explore: str | None = None,
    ) -> dict[str, Any]:
        """The ``/recommend`` answer as a dict (see :meth:`recommend_json`)."""
        out = self._recommend(user_id, k, exclude, strict, rerank, explain, explore)
        return out if isinstance(out, dict) else loads(out)

    def recommend_json(
        self,
        user_id: str,
        k: int,
        exclude: list[str],
        strict: bool,
        rerank: str | None = None,
        explain: bool = True,
        explore: str | None = None,
    ) -> bytes:
        """The ``/recommend`` answer as JSON bytes (a cache hit is returned as stored)."""
        out = self._recommend(user_id, k, exclude, strict, rerank, explain, explore)
        return out if isinstance(out, bytes) else dumps(out)

    def _recommend(
        self,
        user_id: str,
        k: int,
        exclude: list[str],
        strict: bool,
        rerank: str | None,
        explain: bool,
        explore: str | None,
    ) -> dict[str, Any] | bytes:
        pipeline, store = self.require()
        raw, user_id = user_id, self.uid(user_id)  # only the pseudonym goes further
        chain = parse_chain(rerank)  # a bad spec is a 422 before any work
        assigned = self.explorer.assign(user_id, explore) if self.explorer else None
        request = self.explorer.request(assigned[0]) if assigned else None  # bad spec: 422
        try:
            controls = store.user_controls(user_id)
        except StoreError:
            controls = UserControls()  # reads outlive a broken store
        key = (k, tuple(exclude), pipeline.version, strict, rerank or "", controls, explain)
        cached = None if assigned else self.cache.get(user_id, key)
        if cached is not None and self._no_new_deletions(store):
            return cached if raw == user_id else {**loads(cached), "user_id": raw}
        try:
            history, profile, deleted = store.user_context(
                user_id,
                after_seq=pipeline.events_watermark,
                limit=self.settings.history_limit,
                deleted_since=pipeline.trained_at,
            )
        except StoreError:
            history, profile, deleted = [], None, False  # reads outlive a broken store
        if strict and not history and not profile and (deleted or user_id not in pipeline.users):
            msg = f"unknown user {raw!r}"
            raise UnknownIdError(msg)
        ranked = pipeline.recommend(
            user_id,
            k,
            exclude=exclude,
            history=history,
            profile=profile,
            forget=deleted,
            rerank=chain,
            controls=controls,
            explain=explain,
            explore=request,
        )
        if ranked.fallback:
            self.metrics.inc("lumenrec_fallback_total", ranked.fallback)
        out = {
            "user_id": user_id,
            "items": ranked.items,
            "model_version": pipeline.version or "unversioned",
            "fallback": ranked.fallback,
            "fold_in": ranked.fold_in,
        }
        if ranked.rerank is not None:
            out["rerank"] = ranked.rerank
        if not controls.personalised:
            out["personalised"] = False
        if assigned and ranked.served is not None:
            out["request_id"] = self.explorer.log(pipeline, user_id, *assigned, ranked)
            out["policy"], out["arm"] = assigned
            return {**out, "user_id": raw}
        self.cache.put(user_id, key, dumps(out))  # the pseudonym only, never the raw id
        return out if raw == user_id else {**out, "user_id": raw}

    def _no_new_deletions(self, store: EventStore) -> bool:
        """False (and the cache emptied) when a deletion was recorded since the last check,
        by this process or another one sharing the store (``lumenrec users delete``): cached
        lists must not outlive an erasure."""
        try:
            mark = store.deletion_mark()
        except StoreError:
            return True  # reads outlive a broken store; nothing new can have been deleted
        if mark == self._deletion_mark:
            return True
        self.cache.clear()
        self._deletion_mark = mark
        return False

    def similar(self, item_id: str, k: int) -> dict[str, Any]:
        pipeline, _ = self.require()
        items = pipeline.similar(item_id, k)
        return {"item_id": item_id, "items": items, "model_version": pipeline.version}

    # -- writes ----------------------------------------------------------------------------
    def ingest(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        if len(events) > self.settings.max_batch:
            msg = f"batch of {len(events)} events exceeds the limit of {self.settings.max_batch}"
            raise ServiceError(413, msg)
        store = self.require_store()
        if not self.settings.auto_insert_item:
            pipeline, _ = self.require()
            from fastapi.exceptions import RequestValidationError

            errors = [
                {
                    "loc": ("body", "events", i, "item_id"),
                    "msg": f"unknown item {e['item_id']!r}",
                    "type": "unknown_item",
                }
                for i, e in enumerate(events)
                if not pipeline.live_item(e["item_id"]) and not store.item_known(e["item_id"])
            ]
            if errors:
                raise RequestValidationError(errors)
        events = [{**e, "user_id": self.uid(e["user_id"])} for e in events]
        accepted, duplicates = store.add_events(events)
        if self.explorer is not None and self.pipeline is not None and accepted:
            self.explorer.feedback(self.pipeline, events)
        for user in {e["user_id"] for e in events}:
            self.cache.drop(user)
        self.metrics.inc("lumenrec_feedback_events_total", "accepted", accepted)
        self.metrics.inc("lumenrec_feedback_events_total", "duplicate", duplicates)
        return {"accepted": accepted, "duplicates": duplicates, "duplicate": accepted == 0}

    def upsert_items(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Store items, then add them to the serving pipeline (embedded from their text)."""
        if len(items) > self.settings.max_batch:
            msg = f"batch of {len(items)} items exceeds the limit of {self.settings.max_batch}"
            raise ServiceError(413, msg)
        store = self.require_store()
        rows = []
        for item in items:
            fields = {"title": item.get("title"), "description": item.get("description")}
            fields.update(item.get("attributes") or {})
            clean = {k: v for k, v in fields.items() if v is not None}
            rows.append((item["item_id"], clean, item.get("text")))
        store.upsert_items([{"item_id": i, "fields": f, "text": t} for i, f, t in rows])
        with self._reload_lock:
            pipeline = self.pipeline
            if pipeline is None:
                result = {"added": [], "updated": [], "pending": [r[0] for r in rows]}
            else:
                result = self._apply_items(pipeline, rows)
        self.cache.clear()
        return {**result, "model_version": None if pipeline is None else pipeline.version}

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

    def delete_item(self, item_id: str) -> None:
        """Tombstone an item in the store and the serving pipeline (idempotent)."""
        self.require_store().delete_item(item_id)
        with self._reload_lock:
            if self.pipeline is not None:
                self.pipeline.delete_items([item_id])
        self.cache.clear()

    def upsert_users(self, users: list[dict[str, Any]]) -> int:
        if len(users) > self.settings.max_batch:
            msg = f"batch of {len(users)} users exceeds the limit of {self.settings.max_batch}"
            raise ServiceError(413, msg)
        users = [{**u, "user_id": self.uid(u["user_id"])} for u in users]
        n = self.require_store().upsert_users(users)
        for user in users:
            self.cache.drop(user["user_id"])
        return n

    def delete_user(self, user_id: str) -> dict[str, Any]:
        """Erase a user from the store and unlearn them from the model (see
        :func:`lumenrec.privacy.forget.forget_user`): exact models publish a version without
        the user, which is swapped in at once; others report ``pending_retrain`` and when the
        user's influence will be gone. Waits for a running retrain (which could otherwise
        publish the user back)."""
        uid = self.uid(user_id)
        store = self.require_store()
        audit = None
        if self.registry is not None and self.registry.current() is not None:
            from lumenrec.privacy.forget import forget_user

            with self._retrain_lock:
                try:
                    audit = forget_user(Path(self.settings.model_dir), uid)
                except UnknownIdError:
                    audit = None  # no model version holds the user: the store is all there is
                if audit is not None and audit.get("model_version") != (
                    self.pipeline.version if self.pipeline else None
                ):
                    self.reload()
        events = store.delete_user(uid)
        self.cache.drop(uid)
        out: dict[str, Any] = {"user_id": user_id, "events_deleted": events}
        if audit is None:
            out.update(model_effect="none", pending_retrain=None, model_version=None)
        else:
            out.update(
                model_effect=audit["model_effect"],
                pending_retrain=audit["pending_retrain"],
                model_version=audit["model_version"],
                erased_at=audit["erased_at"],
            )
        return out
