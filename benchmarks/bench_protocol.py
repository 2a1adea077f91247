"""Classic models on a published protocol: tune on validation only, report test over seeds.

Usage::

    python benchmarks/bench_protocol.py --dataset ml-100k --protocol p1 --seeds 0,1,2,3,4
    python benchmarks/bench_protocol.py --dataset amazon-beauty --protocol p2

Tuning: every grid point is fitted on ``train`` and scored on ``valid`` (P1: a second
75/25 split carved out of each user's training events with the same seed; P2/P4: the
protocol's own validation part) for the first seed only; the best NDCG@k configuration of
each model is then fitted on train ∪ valid and evaluated on test for every seed. Test is
never looked at while choosing. Writes ``benchmarks/results/<protocol>_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from typing import Any

from _common import data_dir, hardware, write_json

from lumenrec.cli._registry import make_model
from lumenrec.data.split import protocol_split, split_p1
from lumenrec.datasets import load
from lumenrec.evaluation.protocol import evaluate
from lumenrec.evaluation.runner import compare

#: Published anchors (BENCHMARKS.md) keyed by (dataset, protocol).
ANCHORS: dict[tuple[str, str], dict[str, dict[str, float]]] = {
    ("ml-100k", "p1"): {
        "BiVAE (MS Recommenders)": {"ndcg@10": 0.4751, "precision@10": 0.4118, "recall@10": 0.2191},
        "BPR (MS Recommenders)": {"ndcg@10": 0.4420, "precision@10": 0.3882, "recall@10": 0.2125},
        "LightGCN (MS Recommenders)": {
            "ndcg@10": 0.4198,
            "precision@10": 0.3796,
            "recall@10": 0.1443,
        },
        "SAR (MS Recommenders)": {"ndcg@10": 0.3825, "precision@10": 0.3308, "recall@10": 0.1764},
    },
    ("amazon-beauty", "p2"): {
        "SASRec+sampled softmax (independent)": {"ndcg@10": 0.0531, "hr@10": 0.0921},
        "BSARec (reported)": {"ndcg@10": 0.0611, "hr@10": 0.1008},
        "SASRec BCE (original)": {"ndcg@10": 0.0318, "hr@10": 0.0605},
        "TIGER (reported)": {"ndcg@10": 0.0384, "hr@10": 0.0648},
    },
    ("ml-1m-processed", "p4"): {
        "ADMM-SLIM (RecBole)": {"ndcg@10": 0.2904, "recall@10": 0.2134},
        "EASE (RecBole)": {"ndcg@10": 0.2865, "recall@10": 0.2139},
        "RecVAE (RecBole)": {"ndcg@10": 0.2795},
        "LightGCN (RecBole)": {"ndcg@10": 0.2476},
        "BPR (RecBole)": {"ndcg@10": 0.2407},
    },
}
ANCHORS[("ml-100k", "p1-item")] = ANCHORS[("ml-100k", "p1")]

#: Hyper-parameter grids (small: these run on 2 cores).
GRIDS: dict[str, dict[str, list[Any]]] = {
    "pop": {},
    "itemknn": {"n_neighbors": [50, 100, 200, 400], "similarity": ["cosine", "bm25"]},
    "ease": {"regularization": [50.0, 100.0, 200.0, 400.0, 800.0, 1600.0]},
    "als": {"n_factors": [64, 128], "regularization": [1.0, 10.0, 50.0], "alpha": [1.0, 5.0, 20.0]},
    "bpr": {"n_factors": [64, 128], "learning_rate": [0.01, 0.05], "n_epochs": [50]},
}


def _grid(name: str, overrides: dict[str, list[Any]]) -> list[dict[str, Any]]:
    grid = {**GRIDS.get(name, {}), **overrides}
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def _tuning_split(data, protocol: str, seed: int):
    if protocol in ("p1", "p1-item"):
        return split_p1(
            data, seed, stratify="item" if protocol == "p1-item" else "user", validation=True
        )
    split = protocol_split(data, protocol, seed=seed)
    if split.valid is None:
        msg = f"protocol {protocol} has no validation part to tune on"
        raise SystemExit(msg)
    return split


def tune(name: str, data, protocol: str, seed: int, k: int, overrides) -> tuple[dict, list[dict]]:
    split = _tuning_split(data, protocol, seed)
    trials = []
    for params in _grid(name, overrides):
        model = make_model(
            name, {**params, **({"random_state": seed} if name in ("als", "bpr") else {})}
        )
        res = evaluate(model, split, k=k, ks=(k,), use_valid=True)
        score = res.summary[f"ndcg@{k}"]
        trials.append({"params": params, f"valid_ndcg@{k}": score, "fit_time": res.fit_time})
        print(
            f"  tune {name} {params}: valid ndcg@{k}={score:.4f} ({res.fit_time:.1f}s)",
            file=sys.stderr,
        )
    best = max(trials, key=lambda t: t[f"valid_ndcg@{k}"])
    return best["params"], trials


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--protocol", default="p1")
    ap.add_argument("--models", default="pop,itemknn,ease,als,bpr")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument(
        "--grid", default="{}", help='JSON overrides, e.g. {"ease": {"regularization": [300]}}'
    )
    ap.add_argument("--out", default=None, help="result name (default <protocol>_<dataset>)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    data = load(args.dataset, data_dir=data_dir(args.data_dir))
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = json.loads(args.grid)
    names = args.models.split(",")
    tuned: dict[str, Any] = {}
    for name in names:
        best, trials = tune(name, data, args.protocol, seeds[0], args.k, overrides.get(name, {}))
        tuned[name] = {"best_params": best, "trials": trials}
    factories = {name: (lambda n=name: make_model(n, tuned[n]["best_params"])) for name in names}
    comparison = compare(factories, data, args.protocol, seeds, k=args.k, ks=(5, 10, 20))
    results = comparison.results
    results["tuning"] = {
        "selection": f"grid search on the validation part of seed {seeds[0]}, by ndcg@{args.k}",
        "models": tuned,
    }
    results["anchors"] = ANCHORS.get((args.dataset, args.protocol), {})
    results["benchmark_hardware"] = hardware()
    results["benchmark_wall_time"] = time.perf_counter() - start
    path = write_json(args.out or f"{args.protocol}_{args.dataset}", results)
    for name in names:
        agg = results["aggregate"][name]
        cells = [
            f"{m}={agg[m]['mean']:.4f}±{(agg[m]['std'] or 0):.4f}"
            for m in (f"ndcg@{args.k}", f"precision@{args.k}", f"recall@{args.k}", f"hr@{args.k}")
        ]
        print(name, tuned[name]["best_params"], *cells)
    print("wrote", path)


if __name__ == "__main__":
    main()
