"""The event store's part for exploration logs: every served list (request id, user, items,
positions, propensities, policy name + parameters + version, model version, candidates, time)
and the join of feedback to its impression by request id.

A served list is one ``requests`` row (with the candidate set the policy chose from, so any
other policy can be evaluated off-policy on the same candidates) and one ``impressions`` row
per position. Feedback events carry the ``request_id`` they answer; an impression's reward is
1 when a positive event (any type but ``dislike``) with its request id and item id exists.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import pandas as pd

__all__ = ["IMPRESSIONS_SCHEMA", "ImpressionsMixin"]

IMPRESSIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests(
    request_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, ts REAL NOT NULL,
    policy TEXT NOT NULL, policy_params TEXT NOT NULL, policy_version TEXT NOT NULL,
    model_version TEXT NOT NULL, arm TEXT NOT NULL, propensity_method TEXT NOT NULL,
    candidates TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_user ON requests(user_id);
CREATE TABLE IF NOT EXISTS impressions(
    request_id TEXT NOT NULL, position INTEGER NOT NULL, item_id TEXT NOT NULL,
    propensity REAL NOT NULL, exploratory INTEGER NOT NULL,
    PRIMARY KEY(request_id, position)
);
"""


def migrate_events(conn: sqlite3.Connection) -> None:
    """Give an ``events`` table from an older version its ``request_id`` column."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "request_id" not in columns:
        conn.execute("ALTER TABLE events ADD COLUMN request_id TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS events_request ON events(request_id, item_id)")


def insert_served(conn: sqlite3.Connection, rows: list[tuple]) -> int:
    """Insert ``(request_row, impression_rows)`` pairs (the group-commit inserter)."""
    for request, impressions in rows:
        conn.execute(
            "INSERT INTO requests(request_id, user_id, ts, policy, policy_params, "
            "policy_version, model_version, arm, propensity_method, candidates) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            request,
        )
        conn.executemany(
            "INSERT INTO impressions(request_id, position, item_id, propensity, exploratory) "
            "VALUES (?, ?, ?, ?, ?)",
            impressions,
        )
    return len(rows)


class ImpressionsMixin:
    """Methods :class:`~lumenrec.serving.store.EventStore` gains for exploration logs."""

    _read: Any
    _submit: Any

    def log_served(self, served: dict[str, Any]) -> None:
        """Record one served list (waits until it is committed).

        Parameters
        ----------
        served : dict
            ``request_id, user_id, ts, policy, policy_params (dict), policy_version,
            model_version, arm, propensity_method, candidates`` (list of ``[item_id, score]``)
            and ``items``: list of ``{item_id, position (0-based), propensity, exploratory}``.
        """
        request = (
            served["request_id"],
            served["user_id"],
            float(served["ts"]),
            served["policy"],
            json.dumps(served["policy_params"], sort_keys=True),
            str(served["policy_version"]),
            served["model_version"],
            served["arm"],
            served["propensity_method"],
            json.dumps(served["candidates"]),
        )
        impressions = [
            (
                served["request_id"],
                int(x["position"]),
                x["item_id"],
                float(x["propensity"]),
                int(bool(x["exploratory"])),
            )
            for x in served["items"]
        ]
        self._submit([(request, impressions)], insert_served)

    def impression(self, request_id: str, item_id: str) -> tuple | None:
        """``(user_id, policy, position, propensity)`` of an item in a served list, or None."""
        rows = self._read(
            "SELECT r.user_id, r.policy, i.position, i.propensity FROM impressions i "
            "JOIN requests r ON r.request_id = i.request_id "
            "WHERE i.request_id=? AND i.item_id=?",
            (request_id, item_id),
        )
        return rows[0] if rows else None

    def impression_log(self, policies: Sequence[str] | None = None) -> pd.DataFrame:
        """Every logged impression with its reward (feedback joined by request id).

        Returns
        -------
        DataFrame
            ``request_id, user_id, ts, policy, policy_params, policy_version, model_version,
            arm, propensity_method, item_id, position, propensity, exploratory, reward,
            candidates`` (JSON), one row per shown item, in request then position order.
        """
        sql = (
            "SELECT r.request_id, r.user_id, r.ts, r.policy, r.policy_params, r.policy_version, "
            "r.model_version, r.arm, r.propensity_method, i.item_id, i.position, i.propensity, "
            "i.exploratory, EXISTS(SELECT 1 FROM events e WHERE e.request_id = i.request_id "
            "AND e.item_id = i.item_id AND e.type != 'dislike' AND e.value > 0) AS reward, "
            "r.candidates FROM impressions i JOIN requests r ON r.request_id = i.request_id"
        )
        params: list[Any] = []
        if policies:
            sql += f" WHERE r.policy IN ({','.join('?' * len(policies))})"
            params = list(policies)
        rows = self._read(sql + " ORDER BY r.ts, r.request_id, i.position", params)
        columns = [
            "request_id", "user_id", "ts", "policy", "policy_params", "policy_version",
            "model_version", "arm", "propensity_method", "item_id", "position", "propensity",
            "exploratory", "reward", "candidates",
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=columns)
        frame["reward"] = frame["reward"].astype(float)
        frame["exploratory"] = frame["exploratory"].astype(bool)
        return frame
