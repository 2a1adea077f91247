"""Cold start (P3) and the language model's lift on warm data (P2), Amazon Beauty / Toys.

Usage::

    python benchmarks/bench_cold_start.py --dataset amazon-beauty --seeds 0,1,2
    python benchmarks/bench_cold_start.py --dataset amazon-toys --sections p2,p3

Sections (BENCHMARKS.md P2/P3, full ranking, history masked):

- ``p3``: 10% of items cold (seeded); test = users whose P2 target is cold. pop, content
  (all-MiniLM-L6-v2 kNN), adapter (ALS + text adapter) and hybrid (EASE + content), each
  ranked against **all items** and against **cold items only** (``candidates="cold_items"``),
  plus ``cold_share@10``: the share of top-10 slots the model gives to cold items.
- ``p3-users``: 10% of users keep only their first event; test = their P2 targets.
- ``p2``: warm leave-one-out: EASE (the hybrid's CF part) alone vs the hybrid (EASE + text),
  content and adapter. P2 has no random part and these models are deterministic, so the
  spread is a paired bootstrap over test users (1,000 resamples) of the hybrid − EASE lift.

The model settings are the registry's (``lumenrec evaluate`` runs the same engines); they
were chosen on validation only — P2's validation part and a nested P3 split of P3's
training data (``protocol_split(split.train_full, "p3", seed=100)``: cold targets that are
the users' validation events) — never on test; ``results/cold_start_validation_<dataset>.json``
records that selection. Writes ``benchmarks/results/cold_start_<dataset>.json`` after every
section.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
from _common import data_dir, hardware, write_json

from lumenrec.cli._registry import default_cache, make_model
from lumenrec.data.split import protocol_split
from lumenrec.datasets import load
from lumenrec.evaluation.protocol import evaluate
from lumenrec.evaluation.runner import environment

KS = (5, 10)
METRICS = ("ndcg@10", "hr@10", "ndcg@5", "hr@5")


def models(encoder: str, cache: str | None, names: list[str], users: int) -> dict[str, Any]:
    """Registry engines with this run's encoder and cache (the CLI's defaults otherwise)."""
    text = {"encoder": encoder, "cache": cache}
    params = {
        "pop": {},
        "ease": {},
        "content": text,
        "adapter": {**text, "user_samples": users},
        "hybrid": text,
    }
    return {n: (lambda n=n: make_model(n, params[n])) for n in names}


def _cold_share(items: np.ndarray, cold: np.ndarray, k: int = 10) -> float:
    top = items[:, :k]
    return float(np.isin(top[top >= 0], cold).mean())


def _row(res, extra: dict[str, float] | None = None) -> dict[str, float]:
    row = {m: float(res.summary[m]) for m in METRICS}
    row.update(n_users=res.n_users, fit_time=res.fit_time, **(extra or {}))
    return row


def _aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for model in dict.fromkeys(r["model"] for r in runs):
        rows = [r for r in runs if r["model"] == model]
        for fig in ("all", "cold_only"):
            if fig not in rows[0]:
                continue
            for metric in rows[0][fig]:
                vals = np.array([r[fig][metric] for r in rows], np.float64)
                std = float(vals.std(ddof=1)) if len(vals) > 1 else None
                out.setdefault(model, {})[f"{fig}:{metric}"] = {
                    "mean": float(vals.mean()),
                    "std": std,
                }
    return out


def run_p3(data, protocol: str, seeds: list[int], factories: dict[str, Any]) -> dict[str, Any]:
    runs = []
    for seed in seeds:
        split = protocol_split(data, protocol, seed=seed)
        for name, make in factories.items():
            model = make()
            if "random_state" in model.get_params() and model.get_params()["random_state"] is None:
                model.set_params(random_state=seed)
            res = evaluate(model, split, ks=KS)
            run: dict[str, Any] = {"seed": seed, "model": name}
            if protocol == "p3":
                cold = split.extras["cold_items"]
                run["all"] = _row(
                    res, {"cold_share@10": _cold_share(res.recommendations.items, cold)}
                )
                only = evaluate(model, split, ks=KS, fit=False, candidates="cold_items")
                run["cold_only"] = _row(only)
            else:
                run["all"] = _row(res)
            runs.append(run)
            print(f"  {protocol} seed {seed} {name}: {run['all']['ndcg@10']:.4f}", file=sys.stderr)
    return {"description": split.description, "runs": runs, "aggregate": _aggregate(runs)}


def run_p2(data, factories: dict[str, Any], n_boot: int = 1000) -> dict[str, Any]:
    split = protocol_split(data, "p2")
    runs, per_user = [], {}
    for name, make in factories.items():
        model = make()
        if "random_state" in model.get_params() and model.get_params()["random_state"] is None:
            model.set_params(random_state=0)
        res = evaluate(model, split, ks=KS)
        runs.append({"seed": 0, "model": name, "all": _row(res)})
        per_user[name] = res.per_user["ndcg@10"]
        print(f"  p2 {name}: {res.summary['ndcg@10']:.4f}", file=sys.stderr)
    out: dict[str, Any] = {"description": split.description, "runs": runs}
    if "ease" in per_user and "hybrid" in per_user:
        diff = per_user["hybrid"] - per_user["ease"]
        rng = np.random.default_rng(0)
        boot = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n_boot)])
        base = float(per_user["ease"].mean())
        out["lift_hybrid_vs_ease"] = {
            "ndcg@10_diff": float(diff.mean()),
            "ndcg@10_relative": float(diff.mean() / base),
            "bootstrap_std": float(boot.std(ddof=1)),
            "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
            "n_users": int(len(diff)),
            "resamples": n_boot,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sections", default="p3,p3-users,p2")
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--cache", default=None, help="embedding cache (default: the CLI's)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--user-samples", type=int, default=1000, help="adapter user_samples")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    data = load(args.dataset, data_dir=data_dir(args.data_dir))
    seeds = [int(s) for s in args.seeds.split(",")]
    cache = args.cache or default_cache()
    results: dict[str, Any] = {
        "benchmark": "cold_start",
        "dataset": {"name": data.name, "fingerprint": data.fingerprint(), "n_users": data.n_users,
                    "n_items": data.n_items, "n_events": data.n_events},
        "seeds": seeds,
        "encoder": args.encoder,
        "models": {n: repr(f()) for n, f in models(args.encoder, cache, list(
            ("pop", "ease", "content", "adapter", "hybrid")), args.user_samples).items()},
        "selection": "registry defaults, chosen on P2 validation and a nested P3 validation split",
        **environment(),
        "benchmark_hardware": hardware(),
    }  # fmt: skip
    name = args.out or f"cold_start_{args.dataset}"
    for section in args.sections.split(","):
        t = time.perf_counter()
        if section in ("p3", "p3-users"):
            factories = models(
                args.encoder, cache, ["pop", "content", "adapter", "hybrid"], args.user_samples
            )
            results[section] = run_p3(data, section, seeds, factories)
        elif section == "p2":
            factories = models(
                args.encoder, cache, ["ease", "hybrid", "content", "adapter"], args.user_samples
            )
            results[section] = run_p2(data, factories)
        else:
            msg = f"unknown section {section!r}"
            raise SystemExit(msg)
        results[section]["wall_time"] = time.perf_counter() - t
        results["benchmark_wall_time"] = time.perf_counter() - start
        path = write_json(name, results)
        print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
