"""P5: debiased MF (naive, IPS, SNIPS, DR-JL) on Coat, MNAR train / MAR test, over seeds.

Usage::

    nice -n 10 python benchmarks/bench_p5_coat.py --seeds 0,1,2,3,4
    nice -n 10 python benchmarks/bench_p5_coat.py --task rating --out p5_coat_rating

Tuning: each model has its own grid (:func:`grid_for`; the naive model's best setting need
not be IPS's). Every configuration is fitted for every seed and scored on that
seed's **validation** part only (the held-out 10% of the MAR test; see
:mod:`lumenrec.evaluation.p5`); the configuration with the best mean validation score (AUC,
or −MSE for ratings) is then run through :func:`lumenrec.evaluation.p5.run_p5`, which
reports the other 90% of the MAR test. The reported test is never looked at while choosing.
Writes ``benchmarks/results/p5_coat.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import torch
from _common import data_dir, hardware, write_json

from lumenrec.datasets.coat import load_coat
from lumenrec.evaluation.p5 import evaluate_p5_model, run_p5, split_p5
from lumenrec.persistence import library_versions

#: Backbone configurations (embedding size 4 as in the papers); the naive model and the
#: Naive-Bayes-only ``*-nb`` models are tuned over these.
GRID: list[dict[str, Any]] = [
    {"bias": False, "learning_rate": 0.01, "weight_decay": 1e-4},  # the papers' MF
    *(
        {"bias": True, "learning_rate": lr, "weight_decay": wd}
        for lr in (0.001, 0.005)
        for wd in (1e-4, 1e-3, 1e-2)
    ),
]

#: Propensity variants tried for mf-ips / mf-snips / mf-dr: Naive Bayes on the label, on
#: the 1-5 rating, and the feature observation model x Naive Bayes on the rating.
PROPENSITIES: list[dict[str, Any]] = [
    {"propensity_model": "naive-bayes", "naive_bayes_on": "label"},
    {"propensity_model": "naive-bayes", "naive_bayes_on": "rating"},
    {"propensity_model": "features", "naive_bayes_on": "rating"},
]


def grid_for(name: str) -> list[dict[str, Any]]:
    """The configurations tried for model ``name``."""
    if name == "mf" or name.endswith("-nb"):
        return GRID
    if name == "mf-dr":
        return [
            {"bias": True, "learning_rate": 0.005, "weight_decay": wd,
             "imputation_weight_decay": iwd, **prop}
            for prop in PROPENSITIES for wd in (1e-3, 3e-3) for iwd in (1e-4, 1e-3)
        ]  # fmt: skip
    return [
        {"bias": True, "learning_rate": lr, "weight_decay": wd, **prop}
        for prop in PROPENSITIES
        for lr in (0.002, 0.005)
        for wd in (1e-3, 3e-3)
    ]


def tune(
    name: str, splits: list, threshold: float, task: str, grid: list[dict[str, Any]]
) -> tuple[dict, list]:
    trials = []
    for params in grid:
        scores = [
            evaluate_p5_model(name, s, threshold=threshold, task=task, on="valid", **params)[
                "valid_score"
            ]
            for s in splits
        ]
        trials.append({"params": params, "mean_valid_score": float(np.mean(scores))})
        print(f"  tune {name} {params}: valid {np.mean(scores):.4f}", file=sys.stderr, flush=True)
    best = max(trials, key=lambda t: t["mean_valid_score"])
    return best["params"], trials


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mf,mf-ips,mf-snips,mf-dr,mf-ips-nb,mf-dr-nb")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--threshold", type=float, default=3)
    ap.add_argument("--task", default="binary", choices=("binary", "rating"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--no-tune", action="store_true", help="use DEFAULT_PARAMS of p5.py")
    ap.add_argument("--out", default=None, help="result name (default p5_coat)")
    ap.add_argument("--grid", default=None, help="JSON list of configurations replacing GRID")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.models.split(",")
    root = data_dir(args.data_dir)
    data = load_coat(root, side_files=True)
    feats = {"user_features": data.user_features, "item_features": data.item_features}
    splits = [split_p5(data.train, data.test, s, **feats) for s in seeds]
    tuned: dict[str, Any] = {}
    for name in names:
        if args.no_tune:
            tuned[name] = {"best_params": {}, "trials": []}
            continue
        grid = json.loads(args.grid) if args.grid else grid_for(name)
        best, trials = tune(name, splits, args.threshold, args.task, grid)
        tuned[name] = {"best_params": best, "trials": trials}
    results = run_p5(
        names,
        seeds,
        root,
        threshold=args.threshold,
        progress=False,
        task=args.task,
        params={n: tuned[n]["best_params"] for n in names},
    )
    results["tuning"] = {
        "selection": (
            "none: DEFAULT_PARAMS (--no-tune)"
            if args.no_tune
            else "per-model grid; each seed's validation part (held-out 10% of the MAR test), "
            "best mean validation " + ("AUC" if args.task == "binary" else "-MSE")
        ),
        "models": tuned,
    }
    results["versions"] = library_versions()
    results["torch_threads"] = args.threads
    results["benchmark_hardware"] = hardware()
    results["benchmark_wall_time"] = time.perf_counter() - start
    default = "p5_coat" if args.task == "binary" else "p5_coat_rating"
    path = write_json(args.out or default, results)
    for name in names:
        agg = results["aggregate"][name]
        cells = [f"{m}={agg[m]['mean']:.4f}±{agg[m]['std'] or 0:.4f}" for m in results["metrics"]]
        print(name, tuned[name]["best_params"], *cells)
    print("wrote", path)


if __name__ == "__main__":
    main()
