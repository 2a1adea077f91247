"""SERVICE.md F1: kill -9 during ingestion loses no acknowledged event (real uvicorn subprocess)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(model_dir, db, key, port, log) -> subprocess.Popen:
    env = {**os.environ, "LUMENREC_API_KEY": key, "LUMENREC_STORE_SYNCHRONOUS": "FULL"}
    env.pop("OPENBLAS_NUM_THREADS", None)
    cmd = [sys.executable, "-m", "lumenrec", "serve", "--model-dir", str(model_dir)]
    cmd += ["--db", str(db), "--port", str(port), "-q"]
    with log.open("ab") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("server did not become ready in 60 s")


def _post_until_killed(port, key, trial, acked) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        for n in range(100_000):
            event = {"user_id": f"k{trial}", "item_id": f"i{n % 80}", "event_id": f"t{trial}-{n}"}
            try:
                r = client.post("/feedback", json=event, headers={"X-API-Key": key})
            except httpx.TransportError:
                return
            if r.status_code == 200:
                acked.append(event["event_id"])


def _trials(model_dir, tmp_path, keys, n_trials, seed) -> None:
    rng = __import__("random").Random(seed)
    db = tmp_path / "events.sqlite"
    all_acked: list[str] = []
    for trial in range(n_trials):
        port = _free_port()
        proc = _start(model_dir, db, keys["write"], port, tmp_path / "server.log")
        acked: list[str] = []
        writer = threading.Thread(
            target=_post_until_killed, args=(port, keys["write"], trial, acked)
        )
        writer.start()
        time.sleep(rng.uniform(0.2, 2.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        writer.join(timeout=30)
        assert acked, f"trial {trial}: no event was acknowledged before the kill"
        all_acked += acked
        with sqlite3.connect(db) as conn:  # what a restart sees (WAL recovery on open)
            stored = {r[0] for r in conn.execute("SELECT event_id FROM events")}
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        lost = [e for e in all_acked if e not in stored]
        assert lost == [], f"trial {trial}: acknowledged events lost: {lost[:5]}"
    port = _free_port()
    proc = _start(model_dir, db, keys["write"], port, tmp_path / "server.log")  # restart
    try:
        last = all_acked[-1]
        trial, n = last[1:].split("-")
        event = {"user_id": f"k{trial}", "item_id": f"i{int(n) % 80}", "event_id": last}
        r = httpx.post(
            f"http://127.0.0.1:{port}/feedback", json=event, headers={"X-API-Key": keys["write"]}
        )
        assert r.status_code == 200 and r.json()["duplicate"] is True
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT event_id FROM events")]
    assert len(ids) == len(set(ids))


def test_kill_9_during_ingestion_loses_no_acked_event(model_dir, tmp_path, keys):
    """Issue 5's gate: at least 20 kill -9 trials in the default suite (about a minute)."""
    _trials(model_dir, tmp_path, keys, n_trials=20, seed=1)


@pytest.mark.slow
def test_kill_9_during_ingestion_50_more_trials(model_dir, tmp_path, keys):
    _trials(model_dir, tmp_path, keys, n_trials=50, seed=2)
