"""Re-keying pseudonyms: move a store and a model registry from one HMAC key to another.

An HMAC cannot be inverted, so re-keying needs the raw ids from the system of record: for each
raw id ``r`` the stored pseudonym ``old(r)`` becomes ``new(r)`` in every table of the event
store (events, profiles, controls, served lists, the salted hashes of deletions) in one
transaction, and the current model version is republished with the renamed user vocabulary.
Pseudonyms of ids not in the list are left as they are (and become unlinkable once the old key
is destroyed, which is the point of re-keying). Older model versions still hold old pseudonyms
until they are removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lumenrec.errors import ConfigError

__all__ = ["rekey"]

_TABLES = ("events", "users", "user_controls", "requests")


def rekey(
    db: Path | None,
    model_dir: Path | None,
    raw_ids: Sequence[str],
    old: Any,
    new: Any,
) -> dict[str, Any]:
    """Rename every listed user's pseudonym from ``old(r)`` to ``new(r)``.

    Parameters
    ----------
    db : path, optional
        The service's event store.
    model_dir : path, optional
        The model registry; its current version is republished with renamed users.
    raw_ids : sequence of str
        The external ids (from the system of record).
    old, new : Pseudonymizer

    Returns
    -------
    dict
        Counts per table, the users renamed in the model and the new model version (no ids).
    """
    if db is None and model_dir is None:
        msg = "give --db and/or --model-dir to re-key"
        raise ConfigError(msg)
    mapping = {old(r): new(r) for r in dict.fromkeys(str(r) for r in raw_ids)}
    if not mapping:
        msg = "no raw ids given: re-keying needs the external ids (one per line)"
        raise ConfigError(msg)
    out: dict[str, Any] = {"ids": len(mapping)}
    if db is not None:
        out["store"] = _rekey_store(db, mapping)
    if model_dir is not None:
        out.update(_rekey_model(model_dir, mapping))
    return out


def _rekey_store(db: Path, mapping: dict[str, str]) -> dict[str, int]:
    from lumenrec.serving.store import EventStore

    if not db.is_file():
        msg = f"no event store at {db}"
        raise ConfigError(msg)
    store = EventStore(db)
    counts = dict.fromkeys((*_TABLES, "deletions"), 0)
    try:
        hashes = {store.hash_id(a): store.hash_id(b) for a, b in mapping.items()}
        with store._write() as conn:  # one transaction: all renamed or none
            for table in _TABLES:
                for a, b in mapping.items():
                    cur = conn.execute(f"UPDATE {table} SET user_id=? WHERE user_id=?", (b, a))  # noqa: S608
                    counts[table] += cur.rowcount
            for a, b in hashes.items():
                cur = conn.execute(
                    "UPDATE deletions SET id_hash=? WHERE kind='user' AND id_hash=?", (b, a)
                )
                counts["deletions"] += cur.rowcount
        store._checkpoint()
    finally:
        store.close()
    return counts


def _rekey_model(model_dir: Path, mapping: dict[str, str]) -> dict[str, Any]:
    from lumenrec.data.vocab import IdIndex
    from lumenrec.serving.registry import ModelRegistry

    registry = ModelRegistry(model_dir)
    if registry.current() is None:
        msg = f"no model version in {model_dir}"
        raise ConfigError(msg)
    pipeline = registry.load()
    ids = [str(u) for u in pipeline.users.ids]
    renamed = [mapping.get(u, u) for u in ids]
    changed = sum(a != b for a, b in zip(ids, renamed, strict=True))
    pipeline.users = IdIndex(renamed, name="user")
    version = registry.publish(pipeline) if changed else registry.current()
    return {"model_users_renamed": changed, "model_version": version}
