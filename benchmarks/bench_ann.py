"""Exact vs HNSW retrieval through ``RecommendPipeline``: recall@10 and per-request latency.

An ALS model (64 factors) is fitted on a synthetic catalogue (default 20,000 items, 5,000
users, popularity ∝ 1/rank^0.8, as in ``bench_service_load.py``); 500 further users are held
out and served by fold-in of their histories. For both query kinds (known users, held-out
users) every request is answered once exactly and once per HNSW ``ef_search`` setting;
recall@10 is the overlap of the two top-10 lists (seen items removed in both). BLAS and
OpenMP are pinned to one thread, as in the service.

Usage: ``python benchmarks/bench_ann.py [--items 20000] [--users 5000] [--queries 500]``.
Writes ``benchmarks/results/ann_<items>.json``. SERVICE.md L6 asks for recall@10 ≥ 0.95 and
p99 < 50 ms at 200k items (``--items 200000``; several minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from _common import hardware, write_json
from threadpoolctl import threadpool_limits

from lumenrec.data import from_pandas
from lumenrec.models.als import ImplicitALS
from lumenrec.persistence import library_versions
from lumenrec.pipeline import RecommendPipeline


def synthetic(n_users: int, n_items: int, per_user: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.choice(n_items, size=len(users), p=weights / weights.sum())
    return pd.DataFrame(
        {"user_id": [f"u{u}" for u in users], "item_id": [f"i{i}" for i in items]}
    ).drop_duplicates()


def timed(fn, queries):
    lists, ms = [], []
    for q in queries:
        t = time.perf_counter()
        lists.append([x["item_id"] for x in fn(q).items])
        ms.append((time.perf_counter() - t) * 1000)
    ms = np.asarray(ms)
    return lists, {
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "queries_per_s": float(1000 / ms.mean()),
    }


def recall(exact, approx, k=10):
    return float(
        np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(exact, approx, strict=True)])
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--per-user", type=int, default=40)
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--note", default="", help="Free text stored in the JSON (machine state).")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    frame = synthetic(args.users + args.queries, args.items, args.per_user)
    held = {f"u{u}" for u in range(args.users, args.users + args.queries)}
    train = frame[~frame["user_id"].isin(held)]
    catalog = pd.DataFrame({"item_id": [f"i{i}" for i in range(args.items)]})
    data = from_pandas(train, items=catalog, name=f"synthetic-{args.users}x{args.items}")
    with threadpool_limits(1):
        t = time.perf_counter()
        pipeline = RecommendPipeline.fit(
            ImplicitALS(n_factors=64, n_epochs=5, random_state=0), data
        )
        fit_s = time.perf_counter() - t
        rng = np.random.default_rng(1)
        known = [f"u{u}" for u in rng.choice(args.users, args.queries, replace=False)]
        histories = {
            u: [(i, 1.0) for i in g["item_id"]]
            for u, g in frame[frame["user_id"].isin(held)].groupby("user_id")
        }
        kinds = {
            "known_users": (known, lambda u: pipeline.recommend(u, 10)),
            "held_out_fold_in": (
                sorted(histories),
                lambda u: pipeline.recommend(u, 10, history=histories[u]),
            ),
        }
        results: dict = {}
        exact = {}
        for kind, (queries, fn) in kinds.items():
            timed(fn, queries[:20])  # warm-up
            exact[kind], results.setdefault(kind, {})["exact"] = timed(fn, queries)
        t = time.perf_counter()
        index = pipeline.use_ann(m=args.m, ef_construction=args.ef_construction)
        build_s = time.perf_counter() - t
        size_mb = len(index.to_bytes()[0]) / 2**20
        for ef in args.ef_search:
            index.ef_search = ef
            for kind, (queries, fn) in kinds.items():
                timed(fn, queries[:20])
                lists, lat = timed(fn, queries)
                results[kind][f"hnsw_ef{ef}"] = {**lat, "recall_at_10": recall(exact[kind], lists)}
    out = {
        "benchmark": "ann",
        "protocol": (
            f"RecommendPipeline.recommend(k=10) per request, 1 BLAS/OpenMP thread; ALS 64 factors "
            f"on {data.n_users} users x {data.n_items} items; {args.queries} known users and "
            f"{args.queries} held-out users (fold-in); recall@10 = overlap with the exact list; "
            f"faiss IndexHNSWFlat inner product, M={args.m}, efConstruction={args.ef_construction}"
        ),
        "data": {"name": data.name, "n_events": data.n_events, "fingerprint": data.fingerprint()},
        "fit_seconds": fit_s,
        "index": {"build_seconds": build_s, "size_mib": size_mb, "n_vectors": index.n_vectors},
        "results": results,
        "gate_L6": "recall@10 >= 0.95 and p99 < 50 ms at 200k items",
        "versions": {**library_versions(), "faiss": __import__("faiss").__version__},
        "hardware": hardware(),
        "wall_time": time.perf_counter() - start,
        "load_avg_1m": {"before": load_before, "after": os.getloadavg()[0]},
        "note": args.note,
    }
    for kind, rows in results.items():
        for name, r in rows.items():
            rec = r.get("recall_at_10")
            print(
                f"{kind:18s} {name:12s} p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
                + ("" if rec is None else f"recall@10 {rec:.3f}")
            )
    print(f"index build {build_s:.1f} s, {size_mb:.0f} MiB")
    print("wrote", write_json(f"ann_{args.items}", out))


if __name__ == "__main__":
    main()
