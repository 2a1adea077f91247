"""SERVICE.md 4.2 F6: concurrent writers on one SQLite store.

Two ``lumenrec serve`` processes share one database while a third process writes through the
:class:`~lumenrec.serving.store.EventStore` API (there is no ``import`` command), all at the same
time for a few seconds. Gate: no write fails with "database is locked" (or any other error:
BEGIN IMMEDIATE + a 5 s busy timeout make writers queue), and every acknowledged event is
stored exactly once.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

WRITE_SECONDS = 3.0

_STORE_WRITER = textwrap.dedent(
    """
    import json, sys, time
    from lumenrec.serving.store import EventStore

    db, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    store = EventStore(db)  # synchronous=FULL, busy_timeout 5 s, no group commit
    acked, errors, n = [], [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        batch = [
            {"event_id": f"s-{n + j}", "user_id": f"s{(n + j) % 9}", "item_id": str(j % 80),
             "type": "click", "value": 1.0, "timestamp": 1_700_000_000.0}
            for j in range(1 + n % 5)
        ]
        n += len(batch)
        try:
            store.add_events(batch)
            acked += [e["event_id"] for e in batch]
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
    store.close()
    with open(out, "w") as fh:
        json.dump({"acked": acked, "errors": errors}, fh)
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn_server(model_dir: Path, db: Path, key: str, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "LUMENREC_API_KEY": key, "LUMENREC_RATE_LIMIT": "0"}
    cmd = [sys.executable, "-m", "lumenrec", "serve", "--model-dir", str(model_dir)]
    cmd += ["--db", str(db), "--port", str(port)]
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    return proc, port


def _wait_ready(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail("server not ready in 90 s")


def _post(port: int, key: str, tag: str, end: float, acked: list, failures: list) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        n = 0
        while time.monotonic() < end:
            event = {"user_id": f"{tag}-u{n % 5}", "item_id": str(n % 80), "event_id": f"{tag}-{n}"}
            n += 1
            r = client.post("/feedback", json=event, headers={"X-API-Key": key})
            if r.status_code == 200:
                acked.append(event["event_id"])
            else:
                failures.append(f"{r.status_code} {r.text[:200]}")


def test_f6_two_servers_and_a_store_writer_share_one_database(model_dir, tmp_path, keys):
    db = tmp_path / "events.sqlite"
    logs = [tmp_path / "server-a.log", tmp_path / "server-b.log"]
    servers = [_spawn_server(model_dir, db, keys["write"], log) for log in logs]
    try:
        for (proc, port), log in zip(servers, logs, strict=True):
            _wait_ready(proc, port, log)
        script = tmp_path / "store_writer.py"
        script.write_text(_STORE_WRITER)
        result = tmp_path / "store_writer.json"
        end = time.monotonic() + WRITE_SECONDS
        writer = subprocess.Popen(
            [sys.executable, str(script), str(db), str(WRITE_SECONDS), str(result)],
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        )
        acked: list[str] = []
        failures: list[str] = []
        clients = [
            threading.Thread(target=_post, args=(port, keys["write"], f"{name}{i}", end, acked, failures))
            for name, (_, port) in zip("ab", servers, strict=True)
            for i in range(2)
        ]  # fmt: skip
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=60)
        assert writer.wait(timeout=60) == 0
    finally:
        for proc, _ in servers:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in servers:
            proc.wait(timeout=30)
    import json

    store_side = json.loads(result.read_text())
    assert failures == [], failures[:5]
    assert store_side["errors"] == [], store_side["errors"][:5]
    for log in logs:
        text = log.read_text().lower()
        assert "database is locked" not in text and "event store unavailable" not in text, text
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT event_id FROM events")]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = set(ids)
    assert len(ids) == len(stored), "an event was stored twice"
    every_ack = acked + store_side["acked"]
    lost = [e for e in every_ack if e not in stored]
    assert lost == [], f"acknowledged events missing: {lost[:5]}"
    assert {e.split("-")[0][0] for e in acked} == {"a", "b"}  # both servers took writes
    assert store_side["acked"], "the store writer acknowledged nothing"
    assert len(stored) == len(every_ack)
    print(f"F6: {len(acked)} HTTP acks over 2 servers, {len(store_side['acked'])} store acks")
