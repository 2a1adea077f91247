"""Load on loopback: ``lumenrec serve`` with a 20k-item, 64-factor model, driven by wrk.

Reads: ``GET /recommend/{user}?k=10`` over rotating users (result cache off, so every request scores
20,000 items; and once with the cache on). Writes: ``POST /feedback`` with unique event ids and the
API key, ``synchronous=FULL``; afterwards the store's row count is compared with the acknowledged
(2xx) requests. The rate limiter is off (it would otherwise be the thing measured).

Usage: ``python benchmarks/bench_service_load.py [--duration 15] [--connections 4]
[--parts reads_no_cache reads_cache writes] [--note TEXT] [--out NAME]`` (needs ``wrk``:
``apt-get install wrk``). Writes ``benchmarks/results/service_load.json`` (or ``NAME.json``)
with the 1-minute load average before and after each part: the numbers only mean something
on an otherwise idle machine (client and server already share its 2 cores).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from _common import hardware, write_json

from lumenrec.data import from_pandas
from lumenrec.models.als import ImplicitALS
from lumenrec.persistence import library_versions
from lumenrec.pipeline import RecommendPipeline
from lumenrec.serving.registry import ModelRegistry

KEY = "bench-key-0123456789abcdef"
READ_LUA = """
counter = 0
request = function()
  counter = (counter % {n}) + 1
  return wrk.format("GET", "/recommend/u" .. counter .. "?k=10")
end
"""
WRITE_LUA = """
counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "{key}"
request = function()
  counter = counter + 1
  local body = string.format('{{"user_id":"u%d","item_id":"i%d","event_id":"load-%d"}}',
                             counter % {n_users}, counter % {n_items}, counter)
  return wrk.format(nil, nil, nil, body)
end
"""


def synthetic(n_users: int, n_items: int, per_user: int, seed: int = 0):
    """Users with ``per_user`` events each; item popularity ∝ 1 / rank^0.8 over all items."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.choice(n_items, size=len(users), p=weights / weights.sum())
    df = pd.DataFrame({"user_id": [f"u{u}" for u in users], "item_id": [f"i{i}" for i in items]})
    catalog = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)]})
    data = from_pandas(df.drop_duplicates(), items=catalog, name=f"synthetic-{n_users}x{n_items}")
    if data.n_items != n_items or data.n_users != n_users:
        msg = f"expected {n_users} x {n_items}, built {data.n_users} x {data.n_items}"
        raise SystemExit(msg)
    return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_wrk(url: str, script: str, connections: int, duration: int, tmp: Path) -> dict:
    lua = tmp / "script.lua"
    lua.write_text(script)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": total,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50"),
        "p90_ms": ms("90"),
        "p99_ms": ms("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else None,
        "wrk_output": out,
    }


def serve(
    model_dir: Path, db: Path, port: int, log: Path, cache: bool, extra_env: dict | None = None
) -> subprocess.Popen:
    env = {**os.environ, "LUMENREC_API_KEY": KEY, "LUMENREC_RATE_LIMIT": "0", **(extra_env or {})}
    env["LUMENREC_CACHE_SIZE"] = "10000" if cache else "0"
    env.pop("OPENBLAS_NUM_THREADS", None)  # the service must pin BLAS itself (L5)
    cmd = [sys.executable, "-m", "lumenrec", "serve", "--model-dir", str(model_dir)]
    cmd += ["--db", str(db), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    msg = f"server did not become ready; see {log}"
    raise SystemExit(msg)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--write-connections", type=int, default=8)
    ap.add_argument(
        "--parts", nargs="+", default=["reads_no_cache", "reads_cache", "writes"],
        choices=["reads_no_cache", "reads_cache", "writes", "explore"],
    )  # fmt: skip
    ap.add_argument("--note", default="", help="Free text stored in the JSON (machine state).")
    ap.add_argument("--out", default="service_load", help="Result file name (no extension).")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        msg = "wrk is needed: apt-get install wrk"
        raise SystemExit(msg)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="lumenrec-load-"))
    data = synthetic(args.users, args.items, per_user=40)
    model = ImplicitALS(n_factors=64, n_epochs=5, random_state=0)
    ModelRegistry(tmp / "models").publish(RecommendPipeline.fit(model, data))
    results: dict = {
        "benchmark": "service_load",
        "protocol": (
            f"1 uvicorn worker on 127.0.0.1; wrk -t1 -c{args.connections} -d{args.duration}s over "
            f"{args.users} rotating users, k=10, catalogue {data.n_items} items x 64 factors (ALS); "
            f"writes: wrk -t1 -c{args.write_connections} POST /feedback, unique event ids, "
            "synchronous=FULL; rate limiter off; client and server share the 2 cores"
        ),
        "data": {"name": data.name, "fingerprint": data.fingerprint(), "n_events": data.n_events},
        "versions": {**library_versions(), "wrk": "4.1.0"},
        "hardware": hardware(),
        "note": args.note,
    }
    for label, cache in (("reads_no_cache", False), ("reads_cache", True)):
        if label not in args.parts:
            continue
        load_before = os.getloadavg()[0]
        port = free_port()
        proc = serve(tmp / "models", tmp / f"{label}.sqlite", port, tmp / f"{label}.log", cache)
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/health/ready").json()
            res = run_wrk(
                f"http://127.0.0.1:{port}",
                READ_LUA.format(n=args.users),
                args.connections,
                args.duration,
                tmp,
            )
            res["blas_threads"] = ready.get("blas_threads")
            res["load_avg_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
            results[label] = res
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if "writes" in args.parts:
        _writes(args, tmp, results)
    if "explore" in args.parts:
        _explore(args, tmp, results)
    reads = results.get("reads_no_cache")
    writes = results.get("writes")
    results["gates"] = {
        "issue5_reads": "≥ 800 req/s and p99 ≤ 15 ms (wrk -c4, 20k items)",
        "issue5_writes": "≥ 300 writes/s and p99 ≤ 50 ms",
        "reads_no_cache_met": None
        if reads is None
        else reads["requests_per_s"] >= 800 and reads["p99_ms"] <= 15,
        "writes_met": None
        if writes is None
        else writes["requests_per_s"] >= 300 and writes["p99_ms"] <= 50,
        "no_lost_writes": None
        if writes is None
        else writes["rows_in_store"] >= writes["acknowledged"],
    }
    explored = results.get("explore")
    if explored is not None:
        results["gates"]["issue7_every_list_logged"] = explored["every_list_logged"]
    results["wall_time"] = time.perf_counter() - start
    for label in args.parts:
        r = results[label]
        print(
            f"{label}: {r['requests_per_s']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms, non-2xx {r['non_2xx']}, load {r['load_avg_1m']}"
        )
    if writes is not None:
        print("rows in store", writes["rows_in_store"], "acknowledged", writes["acknowledged"])
    print("wrote", write_json(args.out, results))
    shutil.rmtree(tmp, ignore_errors=True)


def _writes(args: argparse.Namespace, tmp: Path, results: dict) -> None:
    load_before = os.getloadavg()[0]
    port = free_port()
    db = tmp / "writes.sqlite"
    proc = serve(tmp / "models", db, port, tmp / "writes.log", False)
    try:
        res = run_wrk(
            f"http://127.0.0.1:{port}/feedback",
            WRITE_LUA.format(key=KEY, n_users=args.users, n_items=args.items),
            args.write_connections,
            max(5, args.duration * 2 // 3),
            tmp,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with sqlite3.connect(db) as con:
        res["rows_in_store"] = con.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    res["acknowledged"] = res["requests"] - res["non_2xx"]
    res["load_avg_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
    results["writes"] = res


def _explore(args: argparse.Namespace, tmp: Path, results: dict) -> None:
    """Reads under a default exploration policy: every answered list must be in the store with
    k impressions whose propensities lie in (0, 1]."""
    load_before = os.getloadavg()[0]
    port = free_port()
    db = tmp / "explore.sqlite"
    policy = "epsilon-greedy(epsilon=0.1)"
    env = {"LUMENREC_EXPLORE_DEFAULT": policy}
    proc = serve(tmp / "models", db, port, tmp / "explore.log", False, env)
    try:
        res = run_wrk(
            f"http://127.0.0.1:{port}",
            READ_LUA.format(n=args.users),
            args.connections,
            args.duration,
            tmp,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with sqlite3.connect(db) as con:
        n_requests = con.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        n_impressions, low, high = con.execute(
            "SELECT COUNT(*), MIN(propensity), MAX(propensity) FROM impressions"
        ).fetchone()
        short = con.execute(
            "SELECT COUNT(*) FROM (SELECT request_id, COUNT(*) AS n FROM impressions "
            "GROUP BY request_id HAVING n != 10)"
        ).fetchone()[0]
    answered = res["requests"] - res["non_2xx"]
    res.update(
        policy=policy,
        answered=answered,
        logged_lists=n_requests,
        logged_impressions=n_impressions,
        propensity_min=low,
        propensity_max=high,
        lists_without_10_impressions=short,
        load_avg_1m={"before": load_before, "after": os.getloadavg()[0]},
    )
    # a list is logged before its response leaves, so logged >= answered
    res["every_list_logged"] = bool(n_requests >= answered and short == 0 and low > 0 and high <= 1)
    results["explore"] = res


if __name__ == "__main__":
    main()
