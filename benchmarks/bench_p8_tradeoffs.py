"""P8: re-ranking trade-offs over λ ∈ {0, 0.1, …, 1} on EASE's top-100 candidates.

Usage::

    python benchmarks/bench_p8_tradeoffs.py --dataset ml-100k        # MMR vs diversity, P1
    python benchmarks/bench_p8_tradeoffs.py --dataset ml-1m          # calibration, P4 split
    python benchmarks/bench_p8_tradeoffs.py --dataset amazon-beauty  # brand exposure, P2

Per evaluated user, EASE (regularisation from the tuned P1/P2 results, or tuned on the P4
validation part for ML-1M) ranks the top 100 unseen items; each re-ranker reorders them and
the top 10 are scored on the held-out items (binary relevance, as in P1/P2).

- ML-100K (P1, 75/25 per user, seeds 0-4): MMR on MiniLM title+genre embeddings and MMR on
  co-occurrence vectors; intra-list diversity both as MS Recommenders computes it (cosine of
  the items' binary training columns) and as LM-embedding cosine; a random recommender's
  diversity for the goal (random's diversity at ≥ 90% of λ = 0 NDCG@10).
- ML-1M (``ml-1m-processed`` with ``movies.dat`` genres; P4 split, seed 0): Steck
  calibration; mean C_KL (α = 0.01) vs NDCG@10; goal −50% C_KL at ≤ 2% NDCG loss.
- Amazon Beauty (P2 leave-one-out): brand as provider, :class:`ProviderExposure` with a cap
  and/or a tail-brand minimum share; Gini of position-weighted brand exposure over all brands
  (unknown brand excluded); goal −20% Gini at ≤ 2% NDCG loss.

Writes ``benchmarks/results/p8_tradeoffs_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp
from _common import RESULTS, data_dir, hardware, write_json

from lumenrec.data.split import protocol_split
from lumenrec.datasets import load
from lumenrec.evaluation.beyond import intra_list_diversity
from lumenrec.evaluation.metrics import evaluate_rankings
from lumenrec.evaluation.runner import environment
from lumenrec.models.ease import EASE
from lumenrec.rerank import (
    MMR,
    Calibration,
    Candidates,
    ItemFeatures,
    ProviderExposure,
    Reranker,
    calibration_kl,
)
from lumenrec.rerank.fairness import popularity_buckets

LAMBDAS = [round(0.1 * i, 1) for i in range(11)]
K, N_CANDIDATES = 10, 100


def _threads() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def candidates(model: EASE, split, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    recs = model.recommend(users, k=N_CANDIDATES, filter_seen=True)
    return recs.items, recs.scores


def relevant_of(split, users):
    rel = sp.csr_matrix(split.test.matrix, dtype=np.float64, copy=True)
    rel.data[:] = 1.0
    return rel[users]


def rerank_all(
    stage: Reranker, items: np.ndarray, scores: np.ndarray, histories, feats: ItemFeatures
) -> tuple[np.ndarray, float]:
    """Top-K of every user after ``stage``; also the mean ms per call and infeasible count."""
    out = np.full((items.shape[0], K), -1, dtype=np.int32)
    start = time.perf_counter()
    for u in range(items.shape[0]):
        valid = items[u] >= 0
        cand = Candidates(items[u][valid], scores[u][valid], histories[u])
        ranked = stage.rerank(cand, K, feats).items[:K]
        out[u, : ranked.size] = ranked
    return out, 1000 * (time.perf_counter() - start) / max(items.shape[0], 1)


def ndcg(ranked, relevant) -> float:
    return float(np.nanmean(evaluate_rankings(ranked, relevant, ks=(K,))[f"ndcg@{K}"]))


def sweep(
    make: Callable[[float], Reranker],
    items,
    scores,
    histories,
    feats,
    relevant,
    measures: dict[str, Callable[[np.ndarray], float]],
) -> list[dict[str, Any]]:
    rows = []
    for lam in LAMBDAS:
        ranked, ms = rerank_all(make(lam), items, scores, histories, feats)
        row = {"lambda": lam, f"ndcg@{K}": ndcg(ranked, relevant), "ms_per_user": ms}
        row.update({name: fn(ranked) for name, fn in measures.items()})
        rows.append(row)
        print(
            f"    λ={lam:.1f} " + " ".join(f"{k}={v:.4f}" for k, v in row.items()), file=sys.stderr
        )
    return rows


def goal_check(rows, metric: str, target: float, *, max_loss: float, lower_is_better: bool):
    """Best λ meeting ``target`` on ``metric`` within ``max_loss`` relative NDCG loss."""
    base = rows[0][f"ndcg@{K}"]
    ok = [
        r
        for r in rows
        if (r[metric] <= target if lower_is_better else r[metric] >= target)
        and r[f"ndcg@{K}"] >= (1.0 - max_loss) * base
    ]
    best = ok[0] if ok else None
    return {
        "metric": metric,
        "target": target,
        "max_relative_ndcg_loss": max_loss,
        "met": best is not None,
        "lambda": None if best is None else best["lambda"],
        "ndcg_ratio": None if best is None else best[f"ndcg@{K}"] / base,
        "value": None if best is None else best[metric],
    }


def test_users(split) -> np.ndarray:
    return np.flatnonzero(np.diff(split.test.matrix.indptr) > 0).astype(np.int32)


def histories_of(train_matrix: sp.csr_matrix, users: np.ndarray) -> list[np.ndarray]:
    return [
        train_matrix.indices[train_matrix.indptr[u] : train_matrix.indptr[u + 1]] for u in users
    ]


# -- ML-100K: MMR vs diversity -----------------------------------------------------------------
def run_ml100k(args) -> dict[str, Any]:
    from lumenrec.encoders.factory import make_encoder
    from lumenrec.encoders.templates import ItemTextTemplate

    data = load("ml-100k", data_dir=data_dir(args.data_dir))
    tuned = json.loads((RESULTS / "p1_ml-100k.json").read_text())["tuning"]["models"]
    reg = float(tuned["ease"]["best_params"]["regularization"])
    texts = ItemTextTemplate(fields=("title", "genres")).render(data.catalog)
    t0 = time.perf_counter()
    encoder = make_encoder("minilm", cache=args.cache)
    emb = np.asarray(encoder.encode(texts), dtype=np.float32)
    encode_s = time.perf_counter() - t0
    per_seed = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        split = protocol_split(data, "p1", seed=seed)
        model_users = test_users(split)
        train = split.train_full.matrix
        binary_cols = sp.csr_matrix((train > 0).astype(np.float64).T)
        popularity = np.bincount(train.indices, minlength=data.n_items)
        lm_feats = ItemFeatures.from_catalog(
            data.catalog, data.items.ids, popularity, embeddings=emb
        )
        cooc = binary_cols.toarray().astype(np.float32)
        cooc_feats = ItemFeatures(
            popularity=lm_feats.popularity,
            embeddings=cooc / np.maximum(np.linalg.norm(cooc, axis=1, keepdims=True), 1e-12),
        )
        model = EASE(regularization=reg).fit(split.train_full)
        items, scores = candidates(model, split, model_users)
        relevant = relevant_of(split, model_users)
        hist = histories_of(train, model_users)
        measures = {
            "diversity_cooccurrence": lambda r, cols=binary_cols: float(
                np.nanmean(intra_list_diversity(r, cols, K))
            ),
            "diversity_lm": lambda r: float(np.nanmean(intra_list_diversity(r, emb, K))),
        }
        rng = np.random.default_rng(seed)
        rand = np.zeros((model_users.size, K), dtype=np.int32)
        for row in range(model_users.size):
            unseen = np.setdiff1d(np.arange(data.n_items), hist[row], assume_unique=True)
            rand[row] = rng.choice(unseen, K, replace=False)
        random_row = {
            f"ndcg@{K}": ndcg(rand, relevant),
            **{m: f(rand) for m, f in measures.items()},
        }
        print(f"  seed {seed}: random {random_row}", file=sys.stderr)
        runs = {}
        for name, feats in (("mmr_lm", lm_feats), ("mmr_cooccurrence", cooc_feats)):
            print(f"  seed {seed}: {name}", file=sys.stderr)
            runs[name] = sweep(lambda lam: MMR(lam), items, scores, hist, feats, relevant, measures)
        goals = {
            name: {
                metric: goal_check(
                    rows, metric, random_row[metric], max_loss=0.10, lower_is_better=False
                )
                for metric in measures
            }
            for name, rows in runs.items()
        }
        per_seed.append(
            {
                "seed": seed,
                "n_users": int(model_users.size),
                "random": random_row,
                "sweeps": runs,
                "goals": goals,
            }
        )
    return {
        "protocol": "P1 (MS Recommenders stratified 75/25 per user)",
        "dataset": {"name": "ml-100k", "fingerprint": data.fingerprint()},
        "base_model": {"class": "EASE", "regularization": reg, "source": "p1_ml-100k.json tuning"},
        "embeddings": {
            "encoder": "all-MiniLM-L6-v2 (minilm, cached)",
            "fields": ["title", "genres"],
            "encode_seconds": encode_s,
        },
        "goal": "random recommender's diversity at >= 90% of the lambda=0 NDCG@10",
        "per_seed": per_seed,
        "summary": (summary := _summarise(per_seed)),
        "summary_goals": _summary_goals(summary, ["diversity_cooccurrence", "diversity_lm"]),
    }


def _summarise(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"random": {}}
    for key in per_seed[0]["random"]:
        out["random"][key] = float(np.mean([s["random"][key] for s in per_seed]))
    for name in per_seed[0]["sweeps"]:
        rows = []
        for i, lam in enumerate(LAMBDAS):
            row = {"lambda": lam}
            for key in per_seed[0]["sweeps"][name][i]:
                if key != "lambda":
                    row[key] = float(np.mean([s["sweeps"][name][i][key] for s in per_seed]))
            rows.append(row)
        out[name] = rows
    return out


def _summary_goals(summary: dict[str, Any], metrics: list[str]) -> dict[str, Any]:
    return {
        name: {
            m: goal_check(rows, m, summary["random"][m], max_loss=0.10, lower_is_better=False)
            for m in metrics
        }
        for name, rows in summary.items()
        if name != "random"
    }


# -- ML-1M: calibration -------------------------------------------------------------------------
def run_ml1m(args) -> dict[str, Any]:
    data = load("ml-1m-processed", data_dir=data_dir(args.data_dir))
    seed = int(args.seeds.split(",")[0])
    split = protocol_split(data, "p4", seed=seed)
    grid = [250.0, 500.0, 1000.0, 2000.0]
    trials = []
    for reg in grid:
        model = EASE(regularization=reg).fit(split.train)
        users = np.flatnonzero(np.diff(split.valid.matrix.indptr) > 0).astype(np.int32)
        recs = model.recommend(users, k=K, filter_seen=True)
        rel = sp.csr_matrix(split.valid.matrix, dtype=np.float64, copy=True)
        rel.data[:] = 1.0
        trials.append({"regularization": reg, f"valid_ndcg@{K}": ndcg(recs.items, rel[users])})
        print(f"  tune EASE {trials[-1]}", file=sys.stderr)
    reg = max(trials, key=lambda t: t[f"valid_ndcg@{K}"])["regularization"]
    train_data = split.train_full
    train = train_data.matrix
    model = EASE(regularization=reg).fit(train_data)
    users = test_users(split)
    items, scores = candidates(model, split, users)
    relevant = relevant_of(split, users)
    hist = histories_of(train, users)
    popularity = np.bincount(train.indices, minlength=train.shape[1])
    catalog = train_data.catalog
    feats = ItemFeatures.from_catalog(
        catalog, train_data.items.ids, popularity, category_column="genres"
    )

    def mean_ckl(ranked):
        vals = [calibration_kl(h, r, feats.categories) for h, r in zip(hist, ranked, strict=True)]
        return float(np.nanmean(vals))

    rows = sweep(
        lambda lam: Calibration(lam), items, scores, hist, feats, relevant, {"c_kl": mean_ckl}
    )
    base_ckl = rows[0]["c_kl"]
    return {
        "protocol": "P4 (RecBole general ML-1M: rating>=3, 10-core, 80/10/10)",
        "dataset": {
            "name": "ml-1m-processed",
            "fingerprint": data.fingerprint(),
            "genres": "ml-1m/movies.dat",
        },
        "seed": seed,
        "n_users": int(users.size),
        "base_model": {"class": "EASE", "regularization": reg, "tuning": trials},
        "goal": "-50% mean C_KL at <= 2% NDCG@10 loss",
        "sweeps": {"calibration": rows},
        "goals": {
            "calibration": goal_check(
                rows, "c_kl", 0.5 * base_ckl, max_loss=0.02, lower_is_better=True
            )
        },
    }


# -- Amazon Beauty: brand exposure --------------------------------------------------------------
def brand_gini(ranked: np.ndarray, providers: np.ndarray, n_brands: int) -> float:
    """Gini of position-weighted exposure over all brands (unknown brand excluded)."""
    weights = 1.0 / np.log2(np.arange(2, ranked.shape[1] + 2))
    w = np.broadcast_to(weights, ranked.shape)
    valid = ranked >= 0
    brand = providers[np.where(valid, ranked, 0)]
    keep = valid & (brand >= 0)
    exposure = np.sort(np.bincount(brand[keep], weights=w[keep], minlength=n_brands))
    i = np.arange(1, n_brands + 1, dtype=np.float64)
    return float(((2.0 * i - n_brands - 1.0) @ exposure) / (n_brands * exposure.sum()))


def run_beauty(args) -> dict[str, Any]:
    data = load("amazon-beauty", data_dir=data_dir(args.data_dir))
    tuned = json.loads((RESULTS / "p2_amazon-beauty.json").read_text())["tuning"]["models"]
    reg = float(tuned["ease"]["best_params"]["regularization"])
    split = protocol_split(data, "p2")
    train = split.train_full.matrix
    t0 = time.perf_counter()
    model = EASE(regularization=reg).fit(split.train_full)
    fit_s = time.perf_counter() - t0
    users = test_users(split)
    items, scores = candidates(model, split, users)
    relevant = relevant_of(split, users)
    hist = histories_of(train, users)
    popularity = np.bincount(train.indices, minlength=data.n_items)
    feats = ItemFeatures.from_catalog(
        data.catalog, data.items.ids, popularity, provider_column="brand"
    )
    n_brands = len(feats.provider_names)
    known = feats.providers >= 0
    totals = np.bincount(
        feats.providers[known], weights=feats.popularity[known], minlength=n_brands
    )
    tail_brands = popularity_buckets(totals, 0.5, 0.0) != 0

    def tail_share(ranked):
        weights = 1.0 / np.log2(np.arange(2, ranked.shape[1] + 2))
        brand = feats.providers[np.where(ranked >= 0, ranked, 0)]
        w = np.broadcast_to(weights, ranked.shape) * (ranked >= 0) * (brand >= 0)
        return float((w * tail_brands[np.maximum(brand, 0)]).sum() / w.sum())

    measures = {
        "brand_gini": lambda r: brand_gini(r, feats.providers, n_brands),
        "tail_brand_share": tail_share,
    }
    configs = {
        "cap0.2": {"max_share": 0.2},
        "tail_min0.5": {"max_share": None, "min_share": 0.5},
        "cap0.2+tail_min0.5": {"max_share": 0.2, "min_share": 0.5},
    }
    sweeps, goals = {}, {}
    for name, opts in configs.items():
        print(f"  provider {name}", file=sys.stderr)
        rows = sweep(
            lambda lam, o=opts: ProviderExposure(lam, **o),
            items,
            scores,
            hist,
            feats,
            relevant,
            measures,
        )
        sweeps[name] = rows
        goals[name] = goal_check(
            rows, "brand_gini", 0.8 * rows[0]["brand_gini"], max_loss=0.02, lower_is_better=True
        )
    return {
        "protocol": "P2 (leave-one-out in event order, full ranking)",
        "dataset": {"name": "amazon-beauty", "fingerprint": data.fingerprint()},
        "n_users": int(users.size),
        "n_brands": n_brands,
        "unknown_brand_items": int((~known).sum()),
        "base_model": {
            "class": "EASE",
            "regularization": reg,
            "fit_seconds": fit_s,
            "source": "p2_amazon-beauty.json tuning",
        },
        "provider_options": configs,
        "tail_brands": "brands outside the head (most popular brands holding 50% of training interactions)",
        "goal": "-20% brand-exposure Gini at <= 2% NDCG@10 loss",
        "sweeps": sweeps,
        "goals": goals,
    }


RUNNERS = {"ml-100k": run_ml100k, "ml-1m": run_ml1m, "amazon-beauty": run_beauty}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(RUNNERS), default="ml-100k")
    ap.add_argument("--seeds", default=None, help="default 0,1,2,3,4 for ml-100k, else 0")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache", default=str(RESULTS.parent / ".cache" / "embeddings.sqlite"))
    args = ap.parse_args(argv)
    if args.seeds is None:
        args.seeds = "0,1,2,3,4" if args.dataset == "ml-100k" else "0"
    _threads()
    start = time.perf_counter()
    result = RUNNERS[args.dataset](args)
    env = environment()
    result.update(
        {
            "lambdas": LAMBDAS,
            "k": K,
            "n_candidates": N_CANDIDATES,
            "versions": env["versions"],
            "hardware": hardware(),
            "wall_time": time.perf_counter() - start,
        }
    )
    path = write_json(f"p8_tradeoffs_{args.dataset}", result)
    print("wrote", path)


if __name__ == "__main__":
    main()
