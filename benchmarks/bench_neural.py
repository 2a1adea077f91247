"""Neural models (MultVAE, LightGCN) on a published protocol, on CPU with one torch thread.

Usage::

    nice -n 5 python benchmarks/bench_neural.py --dataset ml-100k --protocol p1 --seeds 0,1,2,3,4
    nice -n 5 python benchmarks/bench_neural.py --dataset amazon-beauty --protocol p2 \\
        --seeds 0 --no-tune

Tuning follows ``bench_protocol.py``: every configuration of a small grid is fitted on
``train`` and scored on ``valid`` (P1: a second 75/25 split of each user's training events)
for the first seed only, the best NDCG@k configuration is then fitted on train ∪ valid and
evaluated on test for every seed; test is never looked at while choosing. The models' own
early stopping uses an inner holdout of their training data (``valid_fraction``), never the
protocol's validation or test part. ``--no-tune`` skips the grid and uses the first
configuration (for P2, where one CPU fit takes minutes). Besides the usual compare record the
JSON holds, per model and seed, the epochs run, the best epoch and seconds per epoch, and the
classic models' numbers from ``<protocol>_<dataset>.json`` for the side-by-side table.
Writes ``benchmarks/results/<protocol>_neural_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import torch
from _common import RESULTS, data_dir, hardware, write_json
from bench_protocol import ANCHORS, _tuning_split

from lumenrec.cli._registry import make_model
from lumenrec.datasets import load
from lumenrec.evaluation.protocol import evaluate
from lumenrec.evaluation.runner import compare

#: Configurations tried per model (a list: not every combination makes sense on 2 cores).
GRIDS: dict[str, list[dict[str, Any]]] = {
    "multvae": [
        {"anneal_steps": 200},
        {"anneal_steps": 200, "batch_size": 128},
        {"anneal_steps": 2000},
    ],
    "lightgcn": [
        {"loss": "softmax", "n_negatives": 16},
        {"loss": "bpr", "n_negatives": 1, "batch_size": 1024},
    ],
}
#: Classic models reported beside the neural ones (read from their own results file).
CLASSIC = ("ease", "als", "bpr")


def tune(name: str, data, protocol: str, seed: int, k: int, grid: list[dict]) -> tuple[dict, list]:
    split = _tuning_split(data, protocol, seed)
    trials = []
    for params in grid:
        model = make_model(name, {**params, "random_state": seed})
        res = evaluate(model, split, k=k, ks=(k,), use_valid=True)
        score = res.summary[f"ndcg@{k}"]
        trials.append(
            {
                "params": params,
                f"valid_ndcg@{k}": score,
                "fit_time": res.fit_time,
                "training": _training(model),
            }
        )
        print(
            f"  tune {name} {params}: valid ndcg@{k}={score:.4f} ({res.fit_time:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
    best = max(trials, key=lambda t: t[f"valid_ndcg@{k}"])
    return best["params"], trials


def _training(model) -> dict[str, Any]:
    h = model.history_
    return {
        "epochs_run": h["epochs_run"],
        "best_epoch": h["best_epoch"],
        "stopped_early": h["stopped_early"],
        "mean_epoch_seconds": h["mean_epoch_seconds"],
        "best_inner_valid_ndcg@10": h["best_valid_ndcg@10"],
    }


def _classic(protocol: str, dataset: str, k: int) -> dict[str, Any]:
    path = RESULTS / f"{protocol}_{dataset}.json"
    if not path.is_file():
        return {}
    ref = json.loads(path.read_text())
    out = {"source": path.name, "models": {}}
    for name in CLASSIC:
        agg = ref.get("aggregate", {}).get(name)
        if agg:
            out["models"][name] = {
                m: agg[m]
                for m in (f"ndcg@{k}", f"precision@{k}", f"recall@{k}", f"hr@{k}")
                if m in agg
            }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--protocol", default="p1")
    ap.add_argument("--models", default="multvae,lightgcn")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--no-tune", action="store_true", help="use each grid's first configuration")
    ap.add_argument(
        "--grid", default="{}", help="JSON {model: [config, ...]} replacing the built-in grids"
    )
    ap.add_argument("--out", default=None, help="result name (default <protocol>_neural_<dataset>)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = load(args.dataset, data_dir=data_dir(args.data_dir))
    seeds = [int(s) for s in args.seeds.split(",")]
    grids = {**GRIDS, **json.loads(args.grid)}
    names = args.models.split(",")
    tuned: dict[str, Any] = {}
    for name in names:
        grid = grids.get(name) or [{}]
        if args.no_tune:
            tuned[name] = {"best_params": grid[0], "trials": []}
            continue
        best, trials = tune(name, data, args.protocol, seeds[0], args.k, grid)
        tuned[name] = {"best_params": best, "trials": trials}
    built: dict[str, list[Any]] = {name: [] for name in names}

    def factory(name: str):
        def make():
            model = make_model(name, tuned[name]["best_params"])
            built[name].append(model)
            return model

        return make

    comparison = compare(
        {name: factory(name) for name in names},
        data,
        args.protocol,
        seeds,
        k=args.k,
        ks=(5, 10, 20),
    )
    results = comparison.results
    results["training"] = {
        name: [{"seed": seed, **_training(m)} for seed, m in zip(seeds, built[name], strict=True)]
        for name in names
    }
    results["tuning"] = {
        "selection": (
            "none: first configuration of the grid (--no-tune)"
            if args.no_tune
            else f"grid on the validation part of seed {seeds[0]}, by ndcg@{args.k}"
        ),
        "models": tuned,
    }
    results["torch_threads"] = args.threads
    results["classic_reference"] = _classic(args.protocol, args.dataset, args.k)
    results["anchors"] = ANCHORS.get((args.dataset, args.protocol), {})
    results["benchmark_hardware"] = hardware()
    results["benchmark_wall_time"] = time.perf_counter() - start
    path = write_json(args.out or f"{args.protocol}_neural_{args.dataset}", results)
    for name in names:
        agg = results["aggregate"][name]
        cells = [
            f"{m}={agg[m]['mean']:.4f}±{(agg[m]['std'] or 0):.4f}"
            for m in (f"ndcg@{args.k}", f"precision@{args.k}", f"recall@{args.k}", f"hr@{args.k}")
        ]
        secs = [t["mean_epoch_seconds"] for t in results["training"][name]]
        print(name, tuned[name]["best_params"], *cells, f"s/epoch={sum(secs) / len(secs):.2f}")
    print("wrote", path)


if __name__ == "__main__":
    main()
