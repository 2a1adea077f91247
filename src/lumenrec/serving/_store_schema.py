"""The event store's own SQLite schema (metadata, events, user profiles, items, the deletion
audit and the model log; the controls and impressions tables come with their mixins) and
:func:`profile_text`, which renders a stored profile row (text plus attributes) as the one
text the text model scores. :class:`~lumenrec.serving.store.EventStore` creates the tables
in one transaction when it opens a new database."""

from __future__ import annotations

import json

__all__ = ["CORE_SCHEMA", "profile_text"]

CORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT UNIQUE,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    type TEXT NOT NULL,
    value REAL NOT NULL,
    ts REAL NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id, seq);
CREATE TABLE IF NOT EXISTS users(
    user_id TEXT PRIMARY KEY, text TEXT, attributes TEXT NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items(
    item_id TEXT PRIMARY KEY, fields TEXT NOT NULL, text TEXT,
    deleted INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deletions(
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, id_hash TEXT NOT NULL,
    deleted_at REAL NOT NULL, n_events INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deletions_hash ON deletions(kind, id_hash);
CREATE TABLE IF NOT EXISTS model_log(
    id INTEGER PRIMARY KEY AUTOINCREMENT, version TEXT NOT NULL, action TEXT NOT NULL,
    at REAL NOT NULL, detail TEXT
);
"""


def profile_text(row: tuple | None) -> str | None:
    if row is None:
        return None
    text, attrs = row
    parts = [text] if text else []
    parts += [f"{k}: {v}" for k, v in json.loads(attrs or "{}").items() if v not in (None, "")]
    return ". ".join(parts) or None
