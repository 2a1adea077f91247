"""Group commit of feedback: batched transactions, per-request answers, nothing acked unstored."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from lumenrec.serving.store import EventStore, StoreError


def _event(n: int, **kw):
    return {"user_id": f"u{n % 7}", "item_id": f"i{n}", "type": "view", "value": 1.0,
            "timestamp": 1.0, "event_id": f"e{n}", **kw}  # fmt: skip


def test_concurrent_writers_share_transactions_and_lose_nothing(tmp_path):
    store = EventStore(tmp_path / "e.db", synchronous="FULL", group_commit=True)
    answers: list[tuple[int, int]] = []
    lock = threading.Lock()

    def writer(start: int) -> None:
        for n in range(start, start + 50):
            got = store.add_events([_event(n)])
            with lock:
                answers.append(got)

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count((1, 0)) == 400
    assert store.count_events() == 400
    # the same event id from many threads at once: stored once, one caller told "accepted"
    results: list[tuple[int, int]] = []
    same = [threading.Thread(target=lambda: results.append(store.add_events([_event(5)])))
            for _ in range(6)]  # fmt: skip
    for t in same:
        t.start()
    for t in same:
        t.join()
    assert sorted(results) == [(0, 1)] * 6  # e5 was already stored above
    assert store.add_events([_event(9999), _event(9999)]) == (1, 1)
    store.close()
    with sqlite3.connect(tmp_path / "e.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 401


def test_a_failed_commit_fails_every_caller_of_the_batch(tmp_path, monkeypatch):
    store = EventStore(tmp_path / "e.db", group_commit=True)
    real = store._insert_events

    def broken(conn, rows):
        real(conn, rows)
        msg = "database or disk is full"
        raise sqlite3.OperationalError(msg)

    monkeypatch.setattr(store, "_insert_events", broken)
    with pytest.raises(StoreError, match="disk full"):
        store.add_events([_event(1)])
    monkeypatch.setattr(store, "_insert_events", real)
    assert store.count_events() == 0  # the failed request was rolled back
    assert store.add_events([_event(2)]) == (1, 0)  # the writer thread survived
    store.close()


def test_close_finishes_queued_writes_and_later_writes_still_work(tmp_path):
    store = EventStore(tmp_path / "e.db", group_commit=True)
    assert store.add_events([_event(n) for n in range(20)]) == (20, 0)
    store.close()
    assert store._writer is None
    assert store.add_events([_event(100)]) == (1, 0)  # falls back to a direct transaction
    assert store.count_events() == 21
    store.close()
