"""Erasure that unlearns: remove a user's data *and* their effect on every model version.

:func:`forget_user` is what ``lumenrec forget`` and the service's ``DELETE /users/{id}`` call.
It loads the registry's current pipeline, forgets the user inside the model (exactly for
MostPopular, ItemKNN, EASE and ContentRecommender; an exact item half-step for ImplicitALS;
``pending_retrain`` for SGD/neural weights, whose per-user rows are still dropped), drops the
user from the vocabulary, publishes the result as a new version, deletes the superseded
version, rewrites (or deletes) every older version that holds the user, erases the user from
the event store when one is given, and returns an audit record that holds no personal data
(also appended to ``ROOT/erasure-audit.jsonl``). See docs/privacy.md, "Erasure".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

from lumenrec.errors import ConfigError, UnknownIdError, missing_dependency
from lumenrec.privacy._forget_models import EXACT, PENDING, overall_effect
from lumenrec.privacy._forget_registry import (
    delete_version,
    forget_pipeline,
    rewrite_version,
    versions_holding,
)

__all__ = ["AUDIT_LOG", "DEFAULT_RETRAIN_WITHIN_S", "forget_user"]

log = logging.getLogger(__name__)

#: Audit log of erasures (JSON lines) in the registry root.
AUDIT_LOG = "erasure-audit.jsonl"
#: Salt of the audit hash when no event store is given (hex, in the registry root).
_SALT_FILE = "erasure.salt"
#: A model that still holds an erased user's influence must be retrained within this time
#: (30 days: GDPR Art. 12(3)'s one month to act on a request).
DEFAULT_RETRAIN_WITHIN_S = 30 * 86400.0


def forget_user(
    registry_root: Path,
    user_id: str,
    *,
    db: Path | None = None,
    older: str = "rewrite",
    retrain_within_s: float = DEFAULT_RETRAIN_WITHIN_S,
) -> dict[str, Any]:
    """Erase ``user_id`` from a model registry (and an event store) and unlearn them.

    Parameters
    ----------
    registry_root : path
        A :class:`~lumenrec.serving.registry.ModelRegistry` root (``lumenrec train --out``).
    user_id : str
        The external user id (as in the model vocabulary and the store).
    db : path, optional
        The service's SQLite event store: the user's events, profile and controls are
        erased there too (:meth:`EventStore.delete_user`, which keeps a hashed audit row).
    older : {"rewrite", "delete"}
        What happens to versions older than the current one that hold the user: rewritten
        in place with the user forgotten (rollback targets stay), or deleted.
    retrain_within_s : float
        For models marked ``pending_retrain``: the time within which a retrain must remove
        the user's remaining influence, counted from the first pending erasure.

    Returns
    -------
    dict
        The audit record (JSON-serialisable, no personal data): ``erased_at`` (ISO 8601 UTC),
        ``user_hash`` and ``user_hash_method``, ``model_version`` (the new version, or the
        current one when the model did not hold the user), ``previous_version``,
        ``model_effect`` (``"exact"``, ``"item_halfstep"``, ``"pending_retrain"`` or
        ``"none"``), ``components`` (effect per model part), ``pending_retrain`` (None, or
        ``retrain_due_by`` and ``seconds_until_retrain``), ``artifacts_changed`` (list of
        ``{"artifact", "action"}``), ``events_deleted`` and ``profile_deleted`` (None without
        ``db``), ``duration_s``.

    Raises
    ------
    UnknownIdError
        No model version (and, with ``db``, no stored event or profile) knows the user;
        nothing is changed.
    ConfigError
        Bad arguments, a missing registry or store, or no published model.
    """
    start = time.perf_counter()
    now = time.time()
    if not isinstance(user_id, str) or not user_id:
        msg = "user_id must be a non-empty string"
        raise ConfigError(msg)
    if older not in ("rewrite", "delete"):
        msg = f"older must be 'rewrite' or 'delete' (got {older!r})"
        raise ConfigError(msg)
    if not retrain_within_s > 0:
        msg = f"retrain_within_s must be positive (got {retrain_within_s!r})"
        raise ConfigError(msg)
    root = Path(registry_root)
    if not root.is_dir():
        msg = f"no model registry at {root}; pass the directory `lumenrec train --out` wrote"
        raise ConfigError(msg)
    if db is not None and not Path(db).is_file():
        msg = f"no event store at {db}; pass the --db file that `lumenrec serve` uses"
        raise ConfigError(msg)
    try:
        from lumenrec.serving.registry import ModelRegistry
        from lumenrec.serving.store import EventStore
    except ImportError as err:
        raise missing_dependency(err.name or "fastapi", "serve") from err

    registry = ModelRegistry(root)
    current = registry.current()
    holding = versions_holding(registry, user_id)
    store = None if db is None else EventStore(db)
    try:
        in_store = store is not None and (
            store.count_events(user_id) > 0 or store.has_profile(user_id)
        )
        if not any(holding.values()) and not in_store:
            where = "any model version" + (" nor the event store" if db is not None else "")
            msg = f"unknown user {user_id!r}: not in {where} of {root}; nothing was changed"
            raise UnknownIdError(msg)
        record = _erase(registry, user_id, current, holding, older, now, retrain_within_s)
        if store is not None:
            had_profile = store.has_profile(user_id)
            record["events_deleted"] = store.delete_user(user_id)
            record["profile_deleted"] = had_profile
            record["artifacts_changed"].append(
                {"artifact": Path(db).name, "action": "user events and profile erased"}
            )
            record["user_hash"] = store.hash_id(user_id)
            record["user_hash_method"] = "hmac-sha256 with the event store's salt"
        else:
            record["events_deleted"] = record["profile_deleted"] = None
            record["user_hash"] = _registry_hash(root, user_id)
            record["user_hash_method"] = f"hmac-sha256 with the registry's salt ({_SALT_FILE})"
    finally:
        if store is not None:
            store.close()
    record["erased_at"] = dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds")
    record["duration_s"] = round(time.perf_counter() - start, 4)
    _append_audit(root, record)
    log.info(
        "erasure %s: model %s, effect %s",
        record["user_hash"][:12],
        record["model_version"],
        record["model_effect"],
    )
    return record


def _erase(
    registry: Any,
    user_id: str,
    current: str | None,
    holding: dict[str, bool],
    older: str,
    now: float,
    within: float,
) -> dict[str, Any]:
    """The model part of an erasure; returns the audit record without the store fields."""
    changed: list[dict[str, str]] = []
    effects: dict[str, str] = {}
    new_version = None
    pending = None
    if current is not None and holding.get(current):
        pipeline = registry.load(current)
        fresh, effects = forget_pipeline(pipeline, user_id, now=now, retrain_within_s=within)
        new_version = registry.publish(fresh)
        changed.append({"artifact": f"versions/{new_version}", "action": "published (current)"})
        delete_version(registry, current)
        changed.append(
            {"artifact": f"versions/{current}", "action": f"deleted (superseded by {new_version})"}
        )
        info = fresh.metadata.get("pending_erasures")
        if overall_effect(effects) == PENDING and info:
            due = float(info["retrain_due_by"])
            pending = {
                "retrain_due_by": dt.datetime.fromtimestamp(due, dt.UTC).isoformat(
                    timespec="seconds"
                ),
                "seconds_until_retrain": round(max(0.0, due - now), 1),
            }
    for version, readable in holding.items():
        if version in (current, new_version):
            continue
        if readable and older == "rewrite":
            rewrite_version(registry, version, user_id, now=now, within=within)
            changed.append({"artifact": f"versions/{version}", "action": "rewritten without user"})
        else:
            delete_version(registry, version)
            why = "held the user" if readable else "unreadable vocabulary"
            changed.append({"artifact": f"versions/{version}", "action": f"deleted ({why})"})
    return {
        "event": "user_erasure",
        "model_version": new_version or current,
        "previous_version": current,
        "model_effect": overall_effect(effects) if effects else "none",
        "components": effects,
        "exact": bool(effects) and all(e == EXACT for e in effects.values()),
        "pending_retrain": pending,
        "artifacts_changed": changed,
    }


def _registry_hash(root: Path, user_id: str) -> str:
    """Salted HMAC of the id with a per-registry random salt (created on first use)."""
    path = root / _SALT_FILE
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(16))
    salt = bytes.fromhex(path.read_text(encoding="utf-8").strip())
    return hmac.new(salt, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _append_audit(root: Path, record: dict[str, Any]) -> None:
    with (root / AUDIT_LOG).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
