"""The user and item records of :class:`~lumenrec.serving.store.EventStore`: user profiles
(upsert, erasure with its hashed audit row, the deletion marks readers poll) and the item
catalogue changes (upsert, tombstones, the list the service replays onto every loaded model).
Each write is one ``BEGIN IMMEDIATE`` transaction through the store's ``_write``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["ItemsMixin", "UsersMixin"]


class UsersMixin:
    """Methods :class:`~lumenrec.serving.store.EventStore` gains for user profiles and erasure."""

    _write: Any
    _read: Any
    _checkpoint: Any
    hash_id: Any

    def upsert_users(self, users: Sequence[dict[str, Any]]) -> int:
        """Insert or replace user profiles (``user_id``, ``text``, ``attributes``)."""
        now = time.time()
        rows = [
            (u["user_id"], u.get("text"), json.dumps(u.get("attributes") or {}), now) for u in users
        ]
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO users(user_id, text, attributes, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(user_id) DO UPDATE SET text=excluded.text, "
                "attributes=excluded.attributes, updated_at=excluded.updated_at",
                rows,
            )
        return len(rows)

    def delete_user(self, user_id: str) -> int:
        """Erase a user's events and profile; keep an audit row with the hashed id.

        Returns
        -------
        int
            Number of events erased.
        """
        with self._write() as conn:
            n = conn.execute("DELETE FROM events WHERE user_id=?", (user_id,)).rowcount
            conn.execute("DELETE FROM users WHERE user_id=?", (user_id,))
            conn.execute("DELETE FROM user_controls WHERE user_id=?", (user_id,))
            conn.execute(
                "DELETE FROM impressions WHERE request_id IN "
                "(SELECT request_id FROM requests WHERE user_id=?)",
                (user_id,),
            )
            conn.execute("DELETE FROM requests WHERE user_id=?", (user_id,))
            conn.execute(
                "INSERT INTO deletions(kind, id_hash, deleted_at, n_events) VALUES('user', ?, ?, ?)",
                (self.hash_id(user_id), time.time(), n),
            )
        self._checkpoint()
        return int(n)

    def deleted_user_hashes(self, since: float) -> set[str]:
        """Hashed ids of users deleted after ``since``."""
        rows = self._read(
            "SELECT id_hash FROM deletions WHERE kind='user' AND deleted_at>?", (since,)
        )
        return {r[0] for r in rows}

    def deletion_mark(self) -> int:
        """The id of the newest deletion audit row (0 when none): it grows with every user or
        item deletion, from this process or any other (``lumenrec users delete``)."""
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM deletions")[0][0])

    def has_profile(self, user_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM users WHERE user_id=?", (user_id,)))


class ItemsMixin:
    """Methods :class:`~lumenrec.serving.store.EventStore` gains for the item catalogue."""

    _write: Any
    _read: Any
    hash_id: Any

    def upsert_items(self, items: Sequence[dict[str, Any]]) -> None:
        """Insert or replace items (``item_id``, ``fields`` dict, optional ``text``); undeletes."""
        now = time.time()
        rows = [
            (i["item_id"], json.dumps(i.get("fields") or {}), i.get("text"), now) for i in items
        ]
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO items(item_id, fields, text, deleted, updated_at) "
                "VALUES (?, ?, ?, 0, ?) ON CONFLICT(item_id) DO UPDATE SET "
                "fields=excluded.fields, text=excluded.text, deleted=0, "
                "updated_at=excluded.updated_at",
                rows,
            )

    def delete_item(self, item_id: str) -> None:
        """Tombstone an item (its id stays, so the tombstone survives restarts); audit row."""
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO items(item_id, fields, text, deleted, updated_at) "
                "VALUES (?, '{}', NULL, 1, ?) ON CONFLICT(item_id) DO UPDATE SET "
                "fields='{}', text=NULL, deleted=1, updated_at=excluded.updated_at",
                (item_id, now),
            )
            conn.execute(
                "INSERT INTO deletions(kind, id_hash, deleted_at, n_events) VALUES('item', ?, ?, 0)",
                (self.hash_id(item_id), now),
            )

    def items(self) -> list[tuple[str, dict[str, Any], str | None, bool]]:
        """Every stored item as (item_id, fields, text, deleted), in insertion order."""
        rows = self._read("SELECT item_id, fields, text, deleted FROM items ORDER BY rowid")
        return [(r[0], json.loads(r[1]), r[2], bool(r[3])) for r in rows]

    def item_known(self, item_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM items WHERE item_id=? AND deleted=0", (item_id,)))
