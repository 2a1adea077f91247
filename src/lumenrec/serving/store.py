"""EventStore: the embedded SQLite (WAL) store of feedback events, profiles, items and audits.

Every write is one ``BEGIN IMMEDIATE`` transaction (writers queue on the lock for up to
``busy_timeout_ms`` instead of failing with "database is locked"); each thread has its own
connection. With ``synchronous=FULL`` an acknowledged write survives power loss, with
``NORMAL`` a process crash. Deleted rows are overwritten on disk (``secure_delete``).

Feedback events take a faster path when ``group_commit`` is on (the service's default): one
writer thread owns a connection, takes every request queued while the previous commit was
being synced, inserts each request's events under its own savepoint and commits them all in
one transaction — one fsync for many requests. A caller returns only after the transaction
holding its events has committed, so an acknowledged event is as durable as before; what
changes is that concurrent requests no longer fight over the write lock (SQLite's busy
handler sleeps up to 100 ms between retries, which made the tail latency).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from lumenrec.errors import LumenError
from lumenrec.serving._store_records import ItemsMixin, UsersMixin
from lumenrec.serving._store_schema import CORE_SCHEMA, profile_text
from lumenrec.serving.controls_store import CONTROLS_SCHEMA, ControlsMixin
from lumenrec.serving.impressions_store import IMPRESSIONS_SCHEMA, ImpressionsMixin, migrate_events
from lumenrec.types import PathLike

__all__ = ["EVENT_TYPES", "EventStore", "StoreError"]

log = logging.getLogger(__name__)

#: Feedback types; ``dislike`` is stored but never counts as a positive interaction.
EVENT_TYPES = ("view", "click", "cart", "purchase", "like", "dislike", "rating")


class StoreError(LumenError, OSError):
    """The event store cannot take the operation (disk full, read-only, locked, I/O error)."""


def _unavailable(err: sqlite3.Error) -> StoreError:
    text = str(err).lower()
    if "full" in text:
        reason = "disk full"
    elif "readonly" in text or "read-only" in text:
        reason = "read-only"
    elif "locked" in text or "busy" in text:
        reason = "busy"
    else:
        reason = "I/O error"
    log.error("event store error: %s", err)
    return StoreError(f"event store unavailable: {reason}")


class EventStore(UsersMixin, ItemsMixin, ControlsMixin, ImpressionsMixin):
    """SQLite store (WAL) shared by the service's threads and other processes.

    Parameters
    ----------
    path : path
        Database file (created with its parent directory when missing).
    synchronous : {"FULL", "NORMAL"}
    busy_timeout_ms : int
        How long a writer waits for the write lock.
    group_commit : bool
        Batch concurrent :meth:`add_events` calls into shared transactions (see the module
        docstring); off, each call is its own transaction.
    max_group_events : int
        At most this many events per group transaction (a larger single call is still one
        transaction of its own).
    """

    def __init__(
        self,
        path: PathLike,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        group_commit: bool = False,
        max_group_events: int = 20_000,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            msg = f"synchronous must be 'FULL' or 'NORMAL' (got {synchronous!r})"
            raise StoreError(msg)
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        salt = self._open_schema(conn)
        if salt is None:
            with self._write() as w:
                w.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES('salt', ?)",
                    (secrets.token_hex(16),),
                )
            salt = conn.execute("SELECT value FROM meta WHERE key='salt'").fetchone()
        self._salt = bytes.fromhex(salt[0])
        self.max_group_events = int(max_group_events)
        self._queue: queue.SimpleQueue[tuple[list[tuple], Future, Any] | None] | None = None
        self._writer: threading.Thread | None = None
        if group_commit:
            self._queue = queue.SimpleQueue()
            self._writer = threading.Thread(
                target=self._commit_loop, name="lumenrec-group-commit", daemon=True
            )
            self._writer.start()

    def _open_schema(self, conn: sqlite3.Connection) -> Any:
        """WAL mode and the schema, idempotently; returns the salt row (or None).

        Two processes opening a new database at once can get SQLITE_BUSY straight from the
        journal-mode switch (SQLite does not always run the busy handler there), so a busy or
        locked error is retried until ``busy_timeout_ms`` has passed.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                has_schema = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='impressions'"
                ).fetchone()
                if not has_schema:
                    conn.executescript(
                        f"BEGIN IMMEDIATE;{CORE_SCHEMA}{CONTROLS_SCHEMA}{IMPRESSIONS_SCHEMA}COMMIT;"
                    )
                    conn.execute("BEGIN IMMEDIATE")
                    migrate_events(conn)
                    conn.execute("COMMIT")
                return conn.execute("SELECT value FROM meta WHERE key='salt'").fetchone()
            except sqlite3.OperationalError as err:
                if conn.in_transaction:
                    conn.rollback()
                text = str(err).lower()
                if ("busy" in text or "locked" in text) and time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                raise _unavailable(err) from err
            except sqlite3.Error as err:
                raise _unavailable(err) from err

    # -- connections -----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout_ms / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
                conn.execute("PRAGMA secure_delete=ON")
            except sqlite3.Error as err:
                raise _unavailable(err) from err
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise _unavailable(err) from err
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as err:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.debug("rollback failed", exc_info=True)
            if isinstance(err, sqlite3.Error):
                raise _unavailable(err) from err
            raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise _unavailable(err) from err

    def close(self) -> None:
        """Finish the queued event writes, stop the writer thread, close every connection."""
        if self._writer is not None and self._queue is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None
            leftovers = []  # calls that queued behind the stop marker
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    leftovers.append(item)
            if leftovers:
                self._commit_batch(leftovers)
        with self._conns_lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()

    def hash_id(self, value: str) -> str:
        """Salted (per database) SHA-256 of an id, for audit rows that must not hold the id."""
        return hmac.new(
            self._salt, value.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).hexdigest()

    # -- events ----------------------------------------------------------------------------
    def add_events(self, events: Sequence[dict[str, Any]]) -> tuple[int, int]:
        """Insert events atomically; a known ``event_id`` is skipped (idempotent retries).

        Returns
        -------
        (accepted, duplicates) : (int, int)
        """
        now = time.time()
        rows = [
            (
                e.get("event_id"),
                e["user_id"],
                e["item_id"],
                e["type"],
                float(e["value"]),
                float(e["timestamp"]),
                now,
                e.get("request_id"),
            )
            for e in events
        ]
        accepted = self._submit(rows, self._insert_events)
        return accepted, len(rows) - accepted

    def _submit(self, rows: list[tuple], insert: Any) -> int:
        """Write ``rows`` with ``insert(conn, rows)``: through the group-commit writer when it
        runs (returns once the batch holding them committed), else in a transaction of its own."""
        if self._queue is not None and self._writer is not None:
            done: Future[int] = Future()
            self._queue.put((rows, done, insert))
            return done.result()
        with self._write() as conn:
            return int(insert(conn, rows))

    @staticmethod
    def _insert_events(conn: sqlite3.Connection, rows: list[tuple]) -> int:
        before = conn.total_changes
        conn.executemany(
            "INSERT INTO events(event_id, user_id, item_id, type, value, ts, received_at, "
            "request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(event_id) DO NOTHING",
            rows,
        )
        return conn.total_changes - before

    def _commit_loop(self) -> None:
        """The group-commit writer: drain the queue, one transaction per batch, then answer."""
        assert self._queue is not None
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            batch, size = [item], len(item[0])
            while size < self.max_group_events:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
                size += len(nxt[0])
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[tuple[list[tuple], Future, Any]]) -> None:
        results: list[tuple[Future, int | BaseException]] = []
        try:
            with self._write() as conn:
                for i, (rows, done, insert) in enumerate(batch):
                    # a request that fails alone is rolled back alone
                    conn.execute(f"SAVEPOINT r{i}")
                    try:
                        results.append((done, insert(conn, rows)))
                        conn.execute(f"RELEASE r{i}")
                    except sqlite3.Error as err:
                        conn.execute(f"ROLLBACK TO r{i}")
                        conn.execute(f"RELEASE r{i}")
                        results.append((done, _unavailable(err)))
        except BaseException as err:  # BEGIN or COMMIT failed: nothing of the batch is stored
            failure = err if isinstance(err, StoreError) else StoreError(str(err))
            for _, done, _ in batch:
                if not done.done():
                    done.set_exception(failure)
            return
        for done, outcome in results:  # only now, after COMMIT, are the callers answered
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

    def user_context(
        self, user_id: str, *, after_seq: int, limit: int, deleted_since: float
    ) -> tuple[list[tuple[str, float]], str | None, bool]:
        """One consistent read: recent history, profile text and the deletion flag of a user.

        Returns
        -------
        history : list of (item_id, value)
            Positive events with ``seq > after_seq``, at most ``limit``, oldest first.
        profile : str or None
            Profile text with rendered attributes.
        deleted : bool
            The user was deleted after ``deleted_since`` (their training row is void).
        """
        conn = self._conn()
        try:
            conn.execute("BEGIN")
            try:
                rows = conn.execute(
                    "SELECT item_id, value FROM (SELECT seq, item_id, value FROM events "
                    "WHERE user_id=? AND seq>? AND type!='dislike' ORDER BY seq DESC LIMIT ?) "
                    "ORDER BY seq",
                    (user_id, after_seq, limit),
                ).fetchall()
                prof = conn.execute(
                    "SELECT text, attributes FROM users WHERE user_id=?", (user_id,)
                ).fetchone()
                deleted = conn.execute(
                    "SELECT 1 FROM deletions WHERE kind='user' AND id_hash=? AND deleted_at>?",
                    (self.hash_id(user_id), deleted_since),
                ).fetchone()
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise _unavailable(err) from err
        return [(r[0], float(r[1])) for r in rows], profile_text(prof), deleted is not None

    def max_seq(self) -> int:
        """The latest event sequence number (0 when empty)."""
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0])

    def count_events(self, user_id: str | None = None) -> int:
        """Number of stored events (of one user)."""
        if user_id is None:
            return int(self._read("SELECT COUNT(*) FROM events")[0][0])
        return int(self._read("SELECT COUNT(*) FROM events WHERE user_id=?", (user_id,))[0][0])

    def events_frame(self, after_seq: int, upto_seq: int) -> pd.DataFrame:
        """Positive events with ``after_seq < seq <= upto_seq`` as user_id, item_id, rating, timestamp."""
        rows = self._read(
            "SELECT user_id, item_id, value, ts FROM events WHERE seq>? AND seq<=? "
            "AND type!='dislike' ORDER BY seq",
            (after_seq, upto_seq),
        )
        return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])

    # -- maintenance -----------------------------------------------------------------------
    def _checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it, so erased rows leave no old frames."""
        try:
            busy, _, _ = self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as err:
            log.warning("WAL checkpoint after a deletion failed: %s", err)
            return
        if busy:
            log.warning("WAL checkpoint after a deletion was blocked by readers; it will run later")

    # -- audits ----------------------------------------------------------------------------
    def log_model(self, version: str, action: str, detail: str | None = None) -> None:
        """Record a registry action (published, loaded, rejected) in ``model_log``."""
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO model_log(version, action, at, detail) VALUES (?, ?, ?, ?)",
                    (version, action, time.time(), detail),
                )
        except StoreError:
            log.warning("could not record model %s %s in the store", version, action)

    def model_log(self) -> list[tuple[str, str, float, str | None]]:
        return [tuple(r) for r in self._read("SELECT version, action, at, detail FROM model_log")]

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound database."""
        return str(self._read("PRAGMA integrity_check")[0][0])
