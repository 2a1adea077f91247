"""P7: privacy-utility of the differentially private models (ranking and rating).

Usage::

    nice -n 10 python benchmarks/bench_p7_privacy.py --dataset ml-1m-processed   # P4
    nice -n 10 python benchmarks/bench_p7_privacy.py --dataset ml-100k           # P1
    nice -n 10 python benchmarks/bench_p7_privacy.py --rating                    # ML-1M RMSE

Ranking (BENCHMARKS.md P7): NDCG@10 and Recall@10 (full ranking, training items masked) at
ε ∈ {1, 2, 4, 8, ∞}, δ = 1e-6, for PrivateEASE, PrivateItemKNN (one Gaussian release of a
noisy Gram matrix) and PrivateMF (DP-SGD through Opacus), all **user-level** (ε protects a
user's whole history). ε = ∞ is the non-private model (EASE, ItemKNN; PrivateMF at ε = 1e4,
i.e. σ ≈ 0 with its clipping kept). Hyper-parameters are picked per (model, ε) by validation
NDCG@10 on seed 0 (ML-1M: the P4 validation part; ML-100K: a validation part carved from the
P1 training set), then the model is fitted on the training part (P4: train ∪ valid; P1: train)
and scored on test for each seed; the seed drives both the split and the noise. Mean ± std
(ddof 1) over the seeds (3 by default).

Rating: ML-1M ratings (every triple of ml-1m-processed), a seeded random 80/20 split (the TF
Privacy MovieLens tutorial's setting), PrivateRatingMF with **event-level** DP (ε protects one
rating), RMSE on the 20%; tuned on a 10% validation part of the 80%.

Writes ``benchmarks/results/p7_privacy_<dataset>.json`` / ``p7_privacy_rating_ml-1m.json``.
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
import scipy.sparse as sp
import torch
from _common import data_dir, hardware, write_json

from lumenrec.data.split import protocol_split, split_p1
from lumenrec.datasets import load
from lumenrec.evaluation.protocol import evaluate
from lumenrec.evaluation.runner import environment
from lumenrec.models.ease import EASE
from lumenrec.models.itemknn import ItemKNN
from lumenrec.privacy.private_models import PrivateEASE, PrivateItemKNN, PrivateMF, PrivateRatingMF

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
    "rating": {
        "DP network (Bu et al. 2020 / TF Privacy), eps 10.61, delta 1e-6": {"rmse": 0.915},
        "same network, non-private": {"rmse": 0.893},
    },
}


def grids(dataset: str) -> dict[str, tuple[type, list[dict[str, Any]], type | None]]:
    """Per model: private class, grid, non-private class (None: the private one at MF_INF)."""
    top = [300, 800] if dataset == "ml-1m-processed" else [300, 800]
    ease = [
        {"max_items": c, "regularization": lam, "rank": 32, "top_items": t}
        for c, lam, t in itertools.product([10, 20], [500.0, 1000.0], top)
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


def rating(seeds: list[int], epsilons: list[float]) -> dict[str, Any]:
    data = load("ml-1m-processed", data_dir())
    u, i = data.user_idx, data.item_idx
    r = data.ratings.astype(np.float32)

    def parts(seed: int) -> tuple[np.ndarray, np.ndarray]:
        perm = np.random.default_rng(seed).permutation(data.n_events)
        cut = int(0.8 * data.n_events)
        return perm[:cut], perm[cut:]

    def fit_rmse(
        eps: float, params: dict[str, Any], train: np.ndarray, test: np.ndarray, seed: int
    ):
        x = sp.csr_matrix((r[train], (u[train], i[train])), shape=(data.n_users, data.n_items))
        model = PrivateRatingMF(epsilon=eps, delta=DELTA, random_state=seed, **params).fit(x)
        pred = model.predict(u[test], i[test])
        return float(np.sqrt(np.mean((pred - r[test]) ** 2))), model.privacy_

    # One configuration, not tuned: Opacus's ghost clipping of embeddings costs about 80 s per
    # pass over the 800k ratings on these 2 shared cores, so a grid did not fit the time.
    grid = [{"batch_size": 50000, "n_epochs": 4, "learning_rate": 5e-2, "n_factors": 32}]
    rows = []
    for eps in epsilons:
        train, _test = parts(seeds[0])
        inner, valid = train[: int(0.9 * len(train))], train[int(0.9 * len(train)) :]
        trials = []
        for params in grid if len(grid) > 1 else []:
            rmse, _ = fit_rmse(eps, params, inner, valid, seeds[0])
            trials.append({"params": params, "valid_rmse": rmse})
            print(f"  rating eps={eps} {params}: {rmse:.4f}", file=sys.stderr)
        best = min(trials, key=lambda t: t["valid_rmse"]) if trials else {"params": grid[0]}
        per_seed = []
        for seed in seeds:
            train, test = parts(seed)
            rmse, spent = fit_rmse(eps, best["params"], train, test, seed)
            per_seed.append({"seed": seed, "rmse": rmse, "epsilon_spent": spent["epsilon"]})
        vals = np.array([s["rmse"] for s in per_seed])
        rows.append(
            {
                "model": "PrivateRatingMF",
                "epsilon": eps,
                "delta": DELTA,
                "level": "event (one rating)",
                "params": best["params"],
                "tuning": trials,
                "seeds": per_seed,
                "rmse": {
                    "mean": float(vals.mean()),
                    "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                },
            }
        )
        print(f"rating eps={eps}: rmse {rows[-1]['rmse']}", file=sys.stderr)
    return {"rows": rows}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-1m-processed")
    ap.add_argument("--models", default="PrivateEASE,PrivateItemKNN,PrivateMF")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--rating", action="store_true", help="the ML-1M rating task instead")
    ap.add_argument("--rating-epsilons", default="8")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.perf_counter()
    if args.rating:
        name = "p7_privacy_rating_ml-1m"
        body = rating(seeds, [float(e) for e in args.rating_epsilons.split(",")])
        anchors = ANCHORS["rating"]
        protocol = "P7 rating: ML-1M ratings, random 80/20 (seeded), event-level DP"
    else:
        name = f"p7_privacy_{args.dataset}"
        body = ranking(args.dataset, seeds, args.models.split(","))
        anchors = ANCHORS[args.dataset]
        protocol = "P7 ranking on " + ("P4" if args.dataset == "ml-1m-processed" else "P1")
    payload = {
        "protocol": protocol,
        "description": __doc__,
        "dataset": "ml-1m-processed" if args.rating else args.dataset,
        "delta": DELTA,
        "seeds": seeds,
        "accountant": "prv (Opacus PRVAccountant)",
        "anchors": anchors,
        **body,
        "environment": environment(),
        "hardware": hardware(),
        "wall_seconds": time.perf_counter() - start,
    }
    print(write_json(name, payload))


if __name__ == "__main__":
    main()
