"""Re-ranking latency: 100 candidates -> top 10, per stage and for a 3-stage chain.

Usage::

    python benchmarks/bench_rerank_speed.py [--calls 2000]

Catalogue shaped like ML-100K with MiniLM-sized embeddings (1,682 items, d = 384, 18
genres, 50 providers; synthetic, seeded), one request per call with a different random
candidate list and a 50-item history. Timed with ``perf_counter`` around ``rerank`` only,
after 100 warm-up calls; one thread (``OMP_NUM_THREADS=1``). Goal: p50 and p99 ≤ 1 ms per
call. Writes ``benchmarks/results/rerank_speed.json``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp
from _common import hardware, write_json

from lumenrec.evaluation.runner import environment
from lumenrec.rerank import (
    FAIR,
    MMR,
    Calibration,
    Candidates,
    CapPerCategory,
    ItemFeatures,
    PopularityExposure,
    ProviderExposure,
    Reranker,
    parse_rerank,
)

N_ITEMS, DIM, N_GENRES, N_PROVIDERS = 1682, 384, 18, 50
N_CANDIDATES, K, HISTORY = 100, 10, 50


def features(rng: np.random.Generator) -> ItemFeatures:
    emb = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    rows = np.repeat(np.arange(N_ITEMS), 2)
    cols = rng.integers(0, N_GENRES, rows.size)
    cats = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), (N_ITEMS, N_GENRES))
    cats.data[:] = 1.0
    return ItemFeatures(
        popularity=rng.zipf(1.5, N_ITEMS).clip(max=5000).astype(np.float32),
        embeddings=emb,
        categories=cats,
        providers=rng.integers(-1, N_PROVIDERS, N_ITEMS).astype(np.int32),
    )


def requests(rng: np.random.Generator, n: int) -> list[Candidates]:
    out = []
    for _ in range(n):
        items = rng.choice(N_ITEMS, N_CANDIDATES, replace=False)
        scores = np.sort(rng.random(N_CANDIDATES).astype(np.float32))[::-1]
        out.append(Candidates(items, scores, rng.choice(N_ITEMS, HISTORY, replace=False)))
    return out


def time_stage(stage: Reranker, reqs: list[Candidates], feats: ItemFeatures) -> dict:
    for cand in reqs[:100]:
        stage.rerank(cand, K, feats)
    times = np.empty(len(reqs))
    for i, cand in enumerate(reqs):
        t0 = time.perf_counter()
        stage.rerank(cand, K, feats)
        times[i] = time.perf_counter() - t0
    ms = 1000 * times
    return {
        "calls": len(reqs),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
        "goal_1ms_met": bool(np.percentile(ms, 99) <= 1.0),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    feats = features(rng)
    reqs = requests(rng, args.calls)
    stages: dict[str, Reranker] = {
        "mmr(0.5)": MMR(0.5),
        "mmr(0.5) on categories": MMR(0.5),
        "calibration(0.5)": Calibration(0.5),
        "provider(0.5, cap 0.3)": ProviderExposure(0.5),
        "provider(0.5, cap 0.2 + tail min 0.5)": ProviderExposure(0.5, 0.2, 0.5),
        "popularity(0.5, long_tail 0.3)": PopularityExposure(0.5),
        "fair(p=0.5, alpha=0.1)": FAIR(0.5, 0.1),
        "cap_per_category(3)": CapPerCategory(3),
        "chain mmr=0.3,calibration=0.5,provider=0.2": parse_rerank(
            "mmr=0.3,calibration=0.5,provider=0.2"
        ),
    }
    no_emb = ItemFeatures(popularity=feats.popularity, categories=feats.categories)
    results = {}
    for name, stage in stages.items():
        use = no_emb if "categories" in name else feats
        results[name] = time_stage(stage, reqs, use)
        r = results[name]
        print(f"{name:48s} p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms")
    env = environment()
    path = write_json(
        "rerank_speed",
        {
            "protocol": "rerank 100 candidates -> top 10, one call per request, after 100 "
            "warm-up calls; perf_counter around rerank only",
            "catalogue": {
                "n_items": N_ITEMS,
                "embedding_dim": DIM,
                "n_genres": N_GENRES,
                "n_providers": N_PROVIDERS,
                "history": HISTORY,
                "synthetic_seed": args.seed,
            },
            "goal": "p50 and p99 <= 1 ms per call",
            "results": results,
            "threads": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "torch": 1},
            "versions": env["versions"],
            "hardware": hardware(),
            "wall_time": time.perf_counter() - start,
        },
    )
    print("wrote", path)


if __name__ == "__main__":
    main()
