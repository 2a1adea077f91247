"""The event store's part for user controls: "not interested" choices and the
personalisation switch, kept in SQLite beside the events so they survive a restart and are
erased with the user."""

from __future__ import annotations

import time
from typing import Any

from lumenrec.controls import UserControls, check_control

__all__ = ["CONTROLS_SCHEMA", "ControlsMixin"]

CONTROLS_SCHEMA = """
CREATE TABLE IF NOT EXISTS user_controls(
    user_id TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY(user_id, kind, value)
);
"""


class ControlsMixin:
    """Methods :class:`~lumenrec.serving.store.EventStore` gains for user controls."""

    _write: Any
    _read: Any

    def add_control(self, user_id: str, kind: str, value: str) -> bool:
        """Record "not interested" in an item, category or brand; False when already recorded."""
        check_control(kind, value)
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO user_controls(user_id, kind, value, created_at) "
                "VALUES (?, ?, ?, ?)",
                (user_id, kind, value, time.time()),
            )
        return cur.rowcount > 0

    def remove_control(self, user_id: str, kind: str, value: str) -> bool:
        """Withdraw a "not interested"; False when there was none."""
        check_control(kind, value)
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM user_controls WHERE user_id=? AND kind=? AND value=?",
                (user_id, kind, value),
            )
        return cur.rowcount > 0

    def set_personalised(self, user_id: str, personalised: bool) -> None:
        """Turn personalisation on or off for a user."""
        with self._write() as conn:
            if personalised:
                conn.execute(
                    "DELETE FROM user_controls WHERE user_id=? AND kind='setting'", (user_id,)
                )
            else:
                conn.execute(
                    "INSERT OR IGNORE INTO user_controls(user_id, kind, value, created_at) "
                    "VALUES (?, 'setting', 'non-personalised', ?)",
                    (user_id, time.time()),
                )

    def user_controls(self, user_id: str) -> UserControls:
        """The user's standing controls (empty when none)."""
        rows = self._read("SELECT kind, value FROM user_controls WHERE user_id=?", (user_id,))
        return UserControls.from_rows((str(k), str(v)) for k, v in rows)

    def user_history(self, user_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """The user's stored events, newest first (for the user's own profile view)."""
        rows = self._read(
            "SELECT item_id, type, value, ts FROM events WHERE user_id=? ORDER BY seq DESC LIMIT ?",
            (user_id, limit),
        )
        return [
            {"item_id": r[0], "type": r[1], "value": float(r[2]), "timestamp": float(r[3])}
            for r in rows
        ]
