"""Service: the serving state behind the routers (pipeline, store, registry, cache, reloads).

It lives on ``app.state.service``. The pipeline reference is swapped atomically on reload, so
a request that started on the old model finishes on it; a rejected version never replaces
the one serving. Catalogue changes and deletions are written to the store first, then applied
to the live pipeline, and replayed onto every newly loaded version.
Loading, swapping, reloading and retraining model versions are methods it gains from
:class:`~lumenrec.serving._service_versions.ModelVersionsMixin`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from lumenrec._post_rank import parse_chain
from lumenrec.controls import UserControls
from lumenrec.errors import ArtifactError, NotFittedError, UnknownIdError
from lumenrec.pipeline import RecommendPipeline
from lumenrec.serving._json import dumps, loads
from lumenrec.serving._result_cache import ResultCache
from lumenrec.serving._service_versions import ModelVersionsMixin
from lumenrec.serving.errors import ServiceError
from lumenrec.serving.exploration import Explorer
from lumenrec.serving.metrics import Metrics
from lumenrec.serving.profile import UserControlsMixin
from lumenrec.serving.registry import ModelRegistry
from lumenrec.serving.settings import ServiceSettings
from lumenrec.serving.store import EventStore, StoreError

__all__ = ["Service"]

log = logging.getLogger(__name__)


class Service(ModelVersionsMixin, UserControlsMixin):
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
        self.cache = ResultCache(settings.cache_size, settings.cache_ttl_s)
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
