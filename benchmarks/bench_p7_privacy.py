"""P7: privacy-utility of the differentially private ranking models.

Usage::

    nice -n 10 python benchmarks/bench_p7_privacy.py --dataset ml-1m-processed   # P4
    nice -n 10 python benchmarks/bench_p7_privacy.py --dataset ml-100k           # P1

Ranking (BENCHMARKS.md P7): NDCG@10 and Recall@10 (full ranking, training items masked) at
ε ∈ {1, 2, 4, 8, ∞}, δ = 1e-6, for PrivateEASE, PrivateItemKNN (one Gaussian release of a
noisy Gram matrix) and PrivateMF (DP-SGD through Opacus), all **user-level** (ε protects a
user's whole history). ε = ∞ is the non-private model (EASE, ItemKNN; PrivateMF at ε = 1e4,
i.e. σ ≈ 0 with its clipping kept). Hyper-parameters are picked per (model, ε) by validation
NDCG@10 on seed 0 (ML-1M: the P4 validation part; ML-100K: a validation part carved from the
P1 training set), then the model is fitted on the training part (P4: train ∪ valid; P1: train)
and scored on test for each seed; the seed drives both the split and the noise. Mean ± std
(ddof 1) over the seeds (3 by default).

PrivateEASE's grid: noisy counts (5% of the budget, in 1/σ²) select the ``top_items``
items, then their Gram matrix is released (two Gaussian releases composed by the accountant),
and the eigenvalues are shrunk with the spiked-Wigner estimate (see its docstring).

The rating task (RMSE, event-level DP) lives in ``benchmarks/bench_p7_rating.py``.

Writes ``benchmarks/results/p7_privacy_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from _common import data_dir, hardware, write_json

from lumenrec.data.split import protocol_split, split_p1
from lumenrec.datasets import load
from lumenrec.evaluation.protocol import evaluate
from lumenrec.evaluation.runner import environment
from lumenrec.models.ease import EASE
from lumenrec.models.itemknn import ItemKNN
from lumenrec.privacy.private_models import PrivateEASE, PrivateItemKNN, PrivateMF

EPSILONS = (1.0, 2.0, 4.0, 8.0, math.inf)
DELTA = 1e-6
MF_INF = 1e4  # "ε = ∞" for PrivateMF: σ ≈ 0, clipping kept

ANCHORS = {
    "ml-1m-processed": {
        "EASE (RecBole, non-private)": {"ndcg@10": 0.2865, "recall@10": 0.2139},
        "BPR (RecBole, non-private)": {"ndcg@10": 0.2407},
        "private ALS (Chien et al. 2021, ML-10M/20M)": "about -6 points of recall at eps <= 10",
    },
    "ml-100k": {"BPR (MS Recommenders, non-private)": {"ndcg@10": 0.4420, "recall@10": 0.2125}},
}


def grids(dataset: str) -> dict[str, tuple[type, list[dict[str, Any]], type | None]]:
    """Per model: private class, grid, non-private class (None: the private one at MF_INF)."""
    ease = [
        {
            "max_items": c,
            "regularization": lam,
            "rank": None,
            "top_items": t,
            "shrinkage": "spiked",
            "selection_share": 0.05,
        }
        for c, lam, t in itertools.product([10, 20], [100.0, 300.0, 600.0], [300, 500, 1000])
    ]
    knn = [
        {"max_items": c, "n_neighbors": k, "shrinkage": 10.0}
        for c, k in itertools.product([10, 20], [50, 200])
    ]
    mf = [
        {"batch_size": b, "n_epochs": e, "learning_rate": lr}
        for b, e, lr in [(1000, 20, 1e-2), (2000, 30, 3e-2)]
    ]
    if dataset == "ml-100k":
        mf = [{"batch_size": 128, "n_epochs": e, "learning_rate": lr} for e, lr in [(20, 1e-2)]]
        mf += [{"batch_size": 256, "n_epochs": 40, "learning_rate": 3e-2}]
    return {
        "PrivateEASE": (PrivateEASE, ease, EASE),
        "PrivateItemKNN": (PrivateItemKNN, knn, ItemKNN),
        "PrivateMF": (PrivateMF, mf, None),
    }


NON_PRIVATE_GRID = {
    "PrivateEASE": [{"regularization": r} for r in (100.0, 400.0, 1600.0)],
    "PrivateItemKNN": [{"n_neighbors": k} for k in (50, 200)],
}


def build(name: str, eps: float, params: dict[str, Any], seed: int, dataset: str) -> Any:
    cls, _grid, plain = grids(dataset)[name]
    if math.isinf(eps) and plain is not None:
        return plain(**params)
    if math.isinf(eps):  # PRV's discretisation fails at σ ≈ 0; RDP does not
        return cls(epsilon=MF_INF, delta=DELTA, random_state=seed, accountant="rdp", **params)
    return cls(epsilon=eps, delta=DELTA, random_state=seed, **params)


def split_for(data: Any, dataset: str, seed: int, valid: bool) -> Any:
    if dataset == "ml-100k":
        return split_p1(data, seed, validation=valid)
    return protocol_split(data, "p4", seed=seed)


def ranking(dataset: str, seeds: list[int], models: list[str]) -> dict[str, Any]:
    data = load(dataset, data_dir())
    valid_split = split_for(data, dataset, seeds[0], valid=True)
    rows = []
    for name in models:
        for eps in EPSILONS:
            grid = (
                NON_PRIVATE_GRID[name]
                if math.isinf(eps) and name in NON_PRIVATE_GRID
                else grids(dataset)[name][1]
            )
            trials = []
            for params in grid:
                model = build(name, eps, params, seeds[0], dataset)
                res = evaluate(model, valid_split, k=10, ks=(10,), use_valid=True)
                trials.append({"params": params, "valid_ndcg@10": res.summary["ndcg@10"]})
                print(f"  {name} eps={eps} {params}: {res.summary['ndcg@10']:.4f}", file=sys.stderr)
            best = max(trials, key=lambda t: t["valid_ndcg@10"])
            per_seed = []
            for seed in seeds:
                split = split_for(data, dataset, seed, valid=False)
                model = build(name, eps, best["params"], seed, dataset)
                start = time.perf_counter()
                res = evaluate(model, split, k=10, ks=(10,))
                spent = getattr(model, "privacy_", None)
                per_seed.append(
                    {
                        "seed": seed,
                        "ndcg@10": res.summary["ndcg@10"],
                        "recall@10": res.summary["recall@10"],
                        "n_users": res.n_users,
                        "epsilon_spent": None if spent is None else spent["epsilon"],
                        "noise_multiplier": None if spent is None else spent["noise_multiplier"],
                        "seconds": time.perf_counter() - start,
                    }
                )
            row = {
                "model": name,
                "epsilon": "inf" if math.isinf(eps) else eps,
                "delta": DELTA,
                "level": "user" if not math.isinf(eps) else "none (non-private)",
                "params": best["params"],
                "tuning": trials,
                "seeds": per_seed,
            }
            for metric in ("ndcg@10", "recall@10"):
                vals = np.array([s[metric] for s in per_seed])
                row[metric] = {
                    "mean": float(vals.mean()),
                    "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                }
            rows.append(row)
            print(f"{name} eps={eps}: ndcg@10 {row['ndcg@10']}", file=sys.stderr)
    return {"rows": rows, "goals": goals(rows) if dataset == "ml-1m-processed" else None}


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """≥ 90% of the model's own non-private NDCG@10 at ε = 8, ≥ 75% at ε = 2 (best model)."""
    out = {}
    for eps, need in ((8.0, 0.90), (2.0, 0.75)):
        ratios = {}
        for name in {r["model"] for r in rows}:
            ref = next(r for r in rows if r["model"] == name and r["epsilon"] == "inf")
            at = next(r for r in rows if r["model"] == name and r["epsilon"] == eps)
            ratios[name] = at["ndcg@10"]["mean"] / ref["ndcg@10"]["mean"]
        best = max(
            rows_at := [r for r in rows if r["epsilon"] == eps], key=lambda r: r["ndcg@10"]["mean"]
        )
        out[f"eps={eps:g}"] = {
            "goal_share": need,
            "share_of_own_non_private": ratios,
            "best_private_model": best["model"],
            "best_share": ratios[best["model"]],
            "met": ratios[best["model"]] >= need,
            "n_models": len(rows_at),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-1m-processed")
    ap.add_argument("--models", default="PrivateEASE,PrivateItemKNN,PrivateMF")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.perf_counter()
    name = f"p7_privacy_{args.dataset}"
    body = ranking(args.dataset, seeds, args.models.split(","))
    protocol = "P7 ranking on " + ("P4" if args.dataset == "ml-1m-processed" else "P1")
    payload = {
        "protocol": protocol,
        "description": __doc__,
        "dataset": args.dataset,
        "delta": DELTA,
        "seeds": seeds,
        "accountant": "prv (Opacus PRVAccountant)",
        "anchors": ANCHORS[args.dataset],
        **body,
        "environment": environment(),
        "hardware": hardware(),
        "wall_seconds": time.perf_counter() - start,
    }
    print(write_json(name, payload))


if __name__ == "__main__":
    main()
