"""P7 erasure: forget a user vs retrain without them, on ML-1M (100 erasures in a row).

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
        nice -n 10 python benchmarks/bench_erasure.py

Protocol (BENCHMARKS.md, P7 "Erasure"). ML-1M full triples (``ml-1m-processed``, all 1,000,209
ratings, binarised by the models as they fit). Each model is fitted on every user; then 100
users drawn uniformly (seed 0) are forgotten one at a time with ``model.forget_users`` (each
call timed: the unlearning step plus dropping the user's ``seen_`` row). The reference is a
retrain from scratch on the data without those 100 users (fit time = median of ``--fits``
fits); scores of every remaining user (all items) are compared, after the first erasure
(against a retrain without that one user) and after the 100th. Pass: max |Δscore| ≤ 1e-5 and
a mean forget time ≤ 1% of the retrain time.

ImplicitALS first prepares every item's inverse normal matrix (``prepare_unlearning``, about one
item half-step; ``forget_users`` does it on the first erasure after a fit or load, and the
artifact keeps it): that one-time cost is reported apart (``prepare_once_s``); each erasure
is then a Sherman–Morrison downdate. Numba compilation (once per process) is excluded: each
model first fits and forgets on the first 300 users as a warm-up.

ImplicitALS is not compared with its own retrain: a retrain starts from random factors.
Its reference is the "warm retrain" that ends with the same final step — the remaining users'
fitted factors and an exact item half-step on the data without the users — which
``forget_users`` computes (its Δ is float rounding). The gap to a full retrain (same seed,
without the users) is reported beside the gap between two full retrains that differ only in
the seed (the run-to-run noise of ALS itself): max/mean |Δscore| and top-10 overlap.
BLAS, OpenMP and numba are limited to one thread. Writes
``benchmarks/results/erasure_ml-1m.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from _common import data_dir, hardware, write_json

from lumenrec.datasets import load
from lumenrec.models.als import ImplicitALS
from lumenrec.models.ease import EASE
from lumenrec.models.itemknn import ItemKNN
from lumenrec.models.popularity import MostPopular

MODELS = {
    "MostPopular": MostPopular,
    "EASE": lambda: EASE(regularization=500.0),
    "ItemKNN": lambda: ItemKNN(n_neighbors=100, keep_gram=True),
    "ImplicitALS": lambda: ImplicitALS(random_state=0),
}


def _median_fit(make: Any, x: sp.csr_matrix, n: int) -> tuple[Any, float]:
    times, model = [], None
    for _ in range(n):
        start = time.perf_counter()
        model = make().fit(x)
        times.append(time.perf_counter() - start)
    return model, float(np.median(times))


def _diff(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean())}


def _top10_overlap(a: np.ndarray, b: np.ndarray, seen: sp.csr_matrix) -> float:
    a, b = a.copy(), b.copy()
    r = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    a[r, seen.indices] = -np.inf
    b[r, seen.indices] = -np.inf
    ta = np.argsort(-a, axis=1)[:, :10]
    tb = np.argsort(-b, axis=1)[:, :10]
    return float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(ta, tb, strict=True)]))


def run_model(name: str, x: sp.csr_matrix, order: np.ndarray, fits: int) -> dict[str, Any]:
    make = MODELS[name]
    warm = make().fit(x[:300])  # compile the numba kernels (a one-time, per-process cost)
    warm.forget_users(np.array([0, 1]))
    print(f"{name}: fitting", flush=True)
    model = make().fit(x)
    prepare_s = None
    if hasattr(model, "prepare_unlearning"):  # one-time state (ALS: every item's inverse)
        start = time.perf_counter()
        model.prepare_unlearning()
        prepare_s = time.perf_counter() - start
    ids = np.arange(x.shape[0])
    times = []
    first_diff = None
    for step, user in enumerate(order):
        pos = int(np.flatnonzero(ids == user)[0])
        start = time.perf_counter()
        model.forget_users(np.array([pos]))
        times.append(time.perf_counter() - start)
        ids = np.delete(ids, pos)
        if step == 0 and name == "ImplicitALS":  # the warm retrain: exact half-step, same X
            warm_items = model.item_halfstep()
            first_diff = _diff(
                model.user_factors_ @ model.item_factors_.T, model.user_factors_ @ warm_items.T
            )
        elif step == 0:
            ref1 = make().fit(x[ids])
            first_diff = _diff(model.score(np.arange(len(ids))), ref1.score(np.arange(len(ids))))
    keep = np.ones(x.shape[0], bool)
    keep[order] = False
    retrain, fit_s = _median_fit(make, x[keep], fits)
    users = np.arange(int(keep.sum()))
    after = model.score(users)
    out: dict[str, Any] = {
        "unlearning": type(model)._unlearning,
        "retrain_s": round(fit_s, 4),
        "forget_s": {
            "mean": round(float(np.mean(times)), 5),
            "median": round(float(np.median(times)), 5),
            "p95": round(float(np.percentile(times, 95)), 5),
            "max": round(float(np.max(times)), 5),
            "total_100": round(float(np.sum(times)), 4),
        },
        "forget_over_retrain": {
            "mean": round(float(np.mean(times)) / fit_s, 5),
            "median": round(float(np.median(times)) / fit_s, 5),
        },
    }
    if prepare_s is not None:
        out["prepare_once_s"] = round(prepare_s, 4)
        out["prepare_once_over_retrain"] = round(prepare_s / fit_s, 5)
    if name == "ImplicitALS":
        warm = make().fit(x[keep])  # only for its shapes; factors replaced below
        warm.user_factors_ = model.user_factors_
        warm.item_factors_ = warm.item_halfstep()
        out["after_1_vs_warm_retrain"] = first_diff
        out["after_100_vs_warm_retrain"] = _diff(after, warm.score(users))
        full = retrain.score(users)
        other_seed = ImplicitALS(random_state=1).fit(x[keep]).score(users)
        seen = retrain.seen_
        out["after_100_vs_full_retrain"] = {
            **_diff(after, full),
            "top10_overlap": _top10_overlap(after, full, seen),
        }
        out["full_retrain_seed0_vs_seed1"] = {
            **_diff(full, other_seed),
            "top10_overlap": _top10_overlap(full, other_seed, seen),
        }
        out["max_abs_score"] = float(np.abs(full).max())
        exact = (
            out["after_100_vs_warm_retrain"]["max_abs"] <= 1e-5 and first_diff["max_abs"] <= 1e-5
        )
    else:
        out["after_1_vs_retrain"] = first_diff
        out["after_100_vs_retrain"] = _diff(after, retrain.score(users))
        out["max_abs_score"] = float(np.abs(retrain.score(users)).max())
        exact = out["after_100_vs_retrain"]["max_abs"] <= 1e-5 and first_diff["max_abs"] <= 1e-5
    out["pass_exact_1e-5"] = bool(exact)
    out["pass_time_1pct"] = bool(out["forget_over_retrain"]["mean"] <= 0.01)
    print(name, out, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--erasures", type=int, default=100)
    parser.add_argument("--fits", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    data = load("ml-1m-processed", data_dir=data_dir(args.data_dir))
    x = data.matrix
    order = np.random.default_rng(0).choice(x.shape[0], args.erasures, replace=False)
    results = {name: run_model(name, x, order, args.fits) for name in args.models.split(",")}
    write_json(
        "erasure_ml-1m",
        {
            "benchmark": "erasure",
            "dataset": "ml-1m-processed",
            "protocol": __doc__.split("Protocol", 1)[1].split("Writes")[0].strip(),
            "shape": {"users": x.shape[0], "items": x.shape[1], "nnz": int(x.nnz)},
            "erasures": args.erasures,
            "seed": 0,
            "threads": {
                k: os.environ.get(k)
                for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
            },
            "hardware": hardware(),
            "models": results,
        },
    )


if __name__ == "__main__":
    main()
