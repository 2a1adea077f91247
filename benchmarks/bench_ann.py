"""Exact vs HNSW retrieval, per request and per raw query: recall@10 and latency.

For each catalogue size (default 20,000 and 200,000 items, one JSON each), an ALS model (64 factors) is fitted on a synthetic catalogue (default 20,000 items, 5,000
users, popularity ∝ 1/rank^0.8, as in ``bench_service_load.py``); 500 further users are held
out and served by fold-in of their histories. For both query kinds (known users, held-out
users) every request is answered once exactly and once per HNSW ``ef_search`` setting;
recall@10 is the overlap of the two top-10 lists (seen items removed in both). BLAS and
OpenMP are pinned to one thread, as in the service.

Besides the pipeline, the raw query is timed on the same factors (``raw`` in the JSON):
exact = numpy ``V @ q`` + ``argpartition`` top-10, against ``HNSWIndex.search``, for the
known users with and without their seen items excluded. ``graph_only`` rows switch the
index's exactly scored head off (``n_exact=0``: what the index did before the head).

Usage: ``python benchmarks/bench_ann.py [--items 20000 200000] [--users 5000] [--queries 500]``.
Writes ``benchmarks/results/ann_<items>.json``. SERVICE.md L6 asks for recall@10 ≥ 0.95 and
p99 < 50 ms at 200k items (several minutes on 2 cores, mostly the graph build).
"""

from __future__ import annotations

import argparse
import contextlib
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


@contextlib.contextmanager
def head_off(index):
    """The graph alone (the index before the exact head): ``n_exact=0`` at search time."""
    saved = index._head_rows, index._head_vecs, index._tail_bound
    index._head_rows, index._head_vecs = saved[0][:0], saved[1][:0]
    index._tail_bound = float("inf")
    try:
        yield
    finally:
        index._head_rows, index._head_vecs, index._tail_bound = saved


def raw_queries(vectors, queries, seen, fn):
    lists, ms = [], []
    for q, s in zip(queries, seen, strict=True):
        t = time.perf_counter()
        lists.append(list(fn(q, s)))
        ms.append((time.perf_counter() - t) * 1000)
    ms = np.asarray(ms)
    return lists, {
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def numpy_topk(vectors):
    def fn(q, s):
        scores = vectors @ q
        scores[s] = -np.inf
        top = np.argpartition(-scores, 10)[:10]
        return top[np.argsort(-scores[top])]

    return fn


def recall(exact, approx, k=10):
    return float(
        np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(exact, approx, strict=True)])
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--per-user", type=int, default=40)
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 512])
    ap.add_argument("--n-exact", type=int, default=1024, help="HNSWIndex exact head size")
    ap.add_argument("--seed", type=int, default=0, help="data seed (query sample: seed + 1)")
    ap.add_argument("--note", default="", help="Free text stored in the JSON (machine state).")
    args = ap.parse_args(argv)
    for n_items in args.items:
        run(args, n_items)


def run(args: argparse.Namespace, n_items: int) -> None:
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    frame = synthetic(args.users + args.queries, n_items, args.per_user, seed=args.seed)
    held = {f"u{u}" for u in range(args.users, args.users + args.queries)}
    train = frame[~frame["user_id"].isin(held)]
    catalog = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)]})
    data = from_pandas(train, items=catalog, name=f"synthetic-{args.users}x{n_items}")
    with threadpool_limits(1):
        t = time.perf_counter()
        pipeline = RecommendPipeline.fit(
            ImplicitALS(n_factors=64, n_epochs=5, random_state=0), data
        )
        fit_s = time.perf_counter() - t
        rng = np.random.default_rng(args.seed + 1)
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
        index = pipeline.use_ann(
            m=args.m, ef_construction=args.ef_construction, n_exact=args.n_exact
        )
        build_s = time.perf_counter() - t
        size_mb = len(index.to_bytes()[0]) / 2**20
        for ef in args.ef_search:
            index.ef_search = ef
            for kind, (queries, fn) in kinds.items():
                timed(fn, queries[:20])
                lists, lat = timed(fn, queries)
                results[kind][f"hnsw_ef{ef}"] = {**lat, "recall_at_10": recall(exact[kind], lists)}
                with head_off(index):
                    lists, lat = timed(fn, queries)
                results[kind][f"graph_only_ef{ef}"] = {
                    **lat,
                    "recall_at_10": recall(exact[kind], lists),
                }
        # raw queries on the same factors: numpy matmul + top-k against HNSWIndex.search
        vectors = np.ascontiguousarray(pipeline.model.item_factors_, np.float32)
        seen_m = pipeline.model.seen_
        users = pipeline.users.index(known)
        qs = [np.ascontiguousarray(pipeline.model.user_factors_[u], np.float32) for u in users]
        seen_sets = {
            "seen_excluded": [
                seen_m.indices[seen_m.indptr[u] : seen_m.indptr[u + 1]] for u in users
            ],
            "nothing_excluded": [np.empty(0, np.int64)] * len(users),
        }
        raw: dict = {}
        for name, seen in seen_sets.items():
            raw_queries(vectors, qs[:20], seen[:20], numpy_topk(vectors))
            truth, lat = raw_queries(vectors, qs, seen, numpy_topk(vectors))
            rows = raw.setdefault(name, {"exact_numpy": lat})
            for ef in args.ef_search:
                index.ef_search = ef
                search = lambda q, s: index.search(q, 10, s)[0]  # noqa: E731
                lists, lat = raw_queries(vectors, qs, seen, search)
                rows[f"hnsw_ef{ef}"] = {**lat, "recall_at_10": recall(truth, lists)}
                with head_off(index):
                    lists, lat = raw_queries(vectors, qs, seen, search)
                rows[f"graph_only_ef{ef}"] = {**lat, "recall_at_10": recall(truth, lists)}
        index.ef_search = args.ef_search[0]
    out = {
        "benchmark": "ann",
        "protocol": (
            f"RecommendPipeline.recommend(k=10) per request, 1 BLAS/OpenMP thread; ALS 64 factors "
            f"on {data.n_users} users x {data.n_items} items; {args.queries} known users and "
            f"{args.queries} held-out users (fold-in); recall@10 = overlap with the exact list; "
            f"faiss IndexHNSWFlat inner product, M={args.m}, efConstruction={args.ef_construction}, "
            f"exact head n_exact={args.n_exact} (graph_only rows: head off)"
        ),
        "data": {"name": data.name, "n_events": data.n_events, "fingerprint": data.fingerprint()},
        "fit_seconds": fit_s,
        "index": {
            "build_seconds": build_s,
            "size_mib": size_mb,
            "n_vectors": index.n_vectors,
            **index.params(),
        },
        "results": results,
        "raw": raw,
        "seeds": {"data": args.seed, "query_sample": args.seed + 1, "als": 0},
        "gate_L6": "recall@10 >= 0.95 and p99 < 50 ms at 200k items",
        "versions": {**library_versions(), "faiss": __import__("faiss").__version__},
        "hardware": hardware(),
        "wall_time": time.perf_counter() - start,
        "load_avg_1m": {"before": load_before, "after": os.getloadavg()[0]},
        "note": args.note,
    }
    for kind, rows in [*results.items(), *((f"raw {k}", v) for k, v in raw.items())]:
        for name, r in rows.items():
            rec = r.get("recall_at_10")
            print(
                f"{n_items:7d} {kind:22s} {name:18s} p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
                + ("" if rec is None else f"recall@10 {rec:.3f}")
            )
    print(f"index build {build_s:.1f} s, {size_mb:.0f} MiB")
    print("wrote", write_json(f"ann_{n_items}", out))


if __name__ == "__main__":
    main()
