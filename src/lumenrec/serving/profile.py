"""``GET /users/{id}/profile``: a user's own view of what the service holds about them and
how it drives their recommendations (history, interest summary, controls, route)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lumenrec.errors import UnknownIdError
from lumenrec.pipeline import RecommendPipeline
from lumenrec.serving.store import EventStore

__all__ = ["UserControlsMixin", "user_profile"]


def _shares(weights: np.ndarray, names: tuple[str, ...], top: int = 5) -> list[dict[str, Any]]:
    total = float(weights.sum())
    if total <= 0:
        return []
    order = np.lexsort((np.arange(len(weights)), -weights))[:top]
    return [
        {"name": names[j], "share": round(float(weights[j]) / total, 4)}
        for j in order
        if weights[j] > 0
    ]


def user_profile(
    pipeline: RecommendPipeline, store: EventStore, user_id: str, limit: int = 200
) -> dict[str, Any]:
    """Everything the service holds about ``user_id`` that shapes their list.

    Returns
    -------
    dict
        ``history`` (training interactions and stored feedback, with titles), ``interests``
        (category and brand shares over the history), ``profile_text``, ``controls`` and
        ``route`` (how the next list is ranked: ``cf``, ``fold-in``, ``text``, ``popular`` or
        ``non-personalised``).
    """
    history, profile, deleted = store.user_context(
        user_id, after_seq=pipeline.events_watermark, limit=limit, deleted_since=pipeline.trained_at
    )
    controls = store.user_controls(user_id)
    stored = store.user_history(user_id, limit)
    explainer = pipeline.explainer()
    u = -1 if deleted else int(pipeline.users.index([user_id], missing="ignore")[0])
    training: list[int] = []
    if u >= 0:
        seen = pipeline.model.seen_
        training = [int(i) for i in seen.indices[seen.indptr[u] : seen.indptr[u + 1]]][:limit]
    recent = [int(i) for i in pipeline.items.index([h[0] for h in history], missing="ignore")]
    cols = sorted({*training, *(i for i in recent if i >= 0)})
    features = pipeline.features()
    interests: dict[str, Any] = {}
    if cols and features.categories is not None:
        weights = np.asarray(features.categories[cols].sum(axis=0)).ravel()
        interests["categories"] = _shares(weights, features.category_names)
    if cols and features.providers is not None:
        codes = features.providers[cols]
        codes = codes[codes >= 0]
        weights = np.bincount(codes, minlength=len(features.provider_names)).astype(float)
        interests["brands"] = _shares(weights, features.provider_names)
    if not controls.personalised:
        route = "non-personalised"
    elif u >= 0:
        route = "fold-in" if history and pipeline.can_fold_in() else "cf"
    elif history and pipeline.can_fold_in():
        route = "fold-in"
    elif profile and pipeline.text_model() is not None:
        route = "text"
    else:
        route = "popular"
    for event in stored:
        idx = pipeline.items.index([event["item_id"]], missing="ignore")[0]
        event["title"] = explainer.label(int(idx)) if idx >= 0 else event["item_id"]
    return {
        "user_id": user_id,
        "known_to_model": u >= 0,
        "route": route,
        "profile_text": profile,
        "training_history": [
            {"item_id": explainer.item_ids[i], "title": explainer.label(i)} for i in training
        ],
        "recent_feedback": stored,
        "interests": interests,
        "controls": controls.to_dict(),
        "model_version": pipeline.version or "unversioned",
    }


class UserControlsMixin:
    """The :class:`~lumenrec.serving.service.Service` methods behind ``/explain`` and the user's
    own controls (``not-interested``, ``settings``, ``profile``)."""

    settings: Any
    cache: Any
    recommend: Any
    require: Any
    require_store: Any
    uid: Any

    def explain(self, user_id: str, item_id: str, k: int, rerank: str | None = None) -> dict:
        """The reason for ``item_id`` in the user's current top-``k`` (404 when it is not there)."""
        listing = self.recommend(user_id, k, [], False, rerank)
        for entry in listing["items"]:
            if entry["item_id"] == item_id:
                return {
                    "user_id": user_id,
                    "item_id": item_id,
                    "rank": entry["rank"],
                    "score": entry["score"],
                    "route": entry["route"],
                    "reason": entry["reason"],
                    "model_version": listing["model_version"],
                }
        msg = (
            f"item {item_id!r} is not in user {user_id!r}'s current top {k}; explanations are "
            "given for recommended items (GET /recommend/{user_id}, or ask with a larger k)"
        )
        raise UnknownIdError(msg)

    def not_interested(self, user_id: str, kind: str, value: str, undo: bool = False) -> dict:
        """Record (or withdraw) "not interested"; the user's next list honours it."""
        pipeline, store = self.require()
        raw, user_id = user_id, self.uid(user_id)
        if kind == "item" and not undo and not pipeline.live_item(value):
            msg = f"unknown item {value!r}"
            raise UnknownIdError(msg)
        if kind != "item":
            features = pipeline.features()
            names = features.category_names if kind == "category" else features.provider_names
            if value.lower() not in {n.lower() for n in names}:
                where = "categories" if kind == "category" else "brands"
                msg = f"unknown {kind} {value!r}: the catalogue's {where} do not include it"
                raise UnknownIdError(msg)
        changed = (
            store.remove_control(user_id, kind, value)
            if undo
            else store.add_control(user_id, kind, value)
        )
        self.cache.drop(user_id)
        return {"user_id": raw, "kind": kind, "value": value, "changed": changed}

    def set_personalised(self, user_id: str, personalised: bool) -> dict:
        uid = self.uid(user_id)
        self.require_store().set_personalised(uid, personalised)
        self.cache.drop(uid)
        return {"user_id": user_id, "personalised": personalised}

    def profile(self, user_id: str) -> dict[str, Any]:
        """What the service holds about a user and how it drives their recommendations."""
        pipeline, store = self.require()
        found = user_profile(pipeline, store, self.uid(user_id), limit=self.settings.history_limit)
        return {**found, "user_id": user_id}
