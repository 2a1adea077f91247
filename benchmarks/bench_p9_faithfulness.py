"""P9: explanation faithfulness by deletion (remove the cited history items, re-score by fold-in).

Usage::

    nice -n 10 python benchmarks/bench_p9_faithfulness.py --dataset ml-1m-processed
    nice -n 10 python benchmarks/bench_p9_faithfulness.py --dataset ml-100k
    nice -n 10 python benchmarks/bench_p9_faithfulness.py --dataset amazon-beauty

Protocol (BENCHMARKS.md, P9). The training part of the dataset's protocol split (ML-1M: P4
train ∪ valid, seed 0; ML-100K: P1 train, seed 0; Beauty: P2 train ∪ valid) is fitted once per
model. For each evaluated user the reference list is the top 10 of the fold-in scores of the
user's training row (``model.score_history(row)``), every training item masked; it equals the
served list (``recommend``), which the JSON checks. Each of the 10 items is explained with
:func:`lumenrec.explain.history_attribution` on that same row (exact decomposition for EASE and
ItemKNN, batched occlusion for the hybrid). For m in {1, 3, 5, 10}:

- **cited**: remove the item's m top-cited history items, re-score the remaining history by
  fold-in (one batched ``score_history`` call per user holds every modified row) and count
  whether the item leaves the top 10; the candidates are all items but the user's *original*
  training items (the removed items cannot come back as recommendations);
- **random**: remove m history items drawn uniformly (``--draws`` draws per user and m, from a
  seeded generator), same re-scoring and masking, and count how many of the 10 items leave.

PN@10 = share of (user, item) pairs whose item leaves the top 10 (random: averaged over draws);
ratio = PN cited / PN random. Users with fewer than m + 1 training items are skipped for that m.
Rank ties are broken by lower item index (as a stable sort would). The hybrid is
``HybridRecommender({"cf": EASE, "text": ContentRecommender})`` (weighted z-score fusion, equal
weights): its fold-in row is the content component's recency weights ``history_weights_[u]``,
which reproduces the served score (EASE binarises the row); the cited lists the serving
Explainer would give (``history_attribution(model, items, user=u)``, occlusion on the raw
``seen_`` row) are scored as a second variant, ``cited_explainer``.
Writes ``benchmarks/results/p9_faithfulness_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from _common import data_dir, hardware, write_json

from lumenrec.cli._registry import default_cache
from lumenrec.data.split import protocol_split
from lumenrec.datasets import load
from lumenrec.evaluation.protocol import evaluate
from lumenrec.evaluation.runner import environment
from lumenrec.explain import history_attribution
from lumenrec.fusion.hybrid import HybridRecommender
from lumenrec.models.content import ContentRecommender
from lumenrec.models.ease import EASE
from lumenrec.models.itemknn import ItemKNN

TOP = 10
MS = (1, 3, 5, 10)

#: Per dataset: protocol, models, default user sample, tuned parameters (from
#: benchmarks/results/<protocol>_<dataset>.json: grid search on the validation part, seed 0).
CONFIG: dict[str, dict[str, Any]] = {
    "ml-1m-processed": {
        "protocol": "p4",
        "models": ["ease"],
        "max_users": 0,
        "ease": None,  # tuned here on the P4 validation part (no P4 results file yet)
        "itemknn": {"n_neighbors": 200, "similarity": "bm25"},
    },
    "ml-100k": {
        "protocol": "p1",
        "models": ["ease", "itemknn", "hybrid"],
        "max_users": 0,
        "ease": 800.0,
        "itemknn": {"n_neighbors": 200, "similarity": "bm25"},
    },
    "amazon-beauty": {
        "protocol": "p2",
        "models": ["ease", "itemknn", "hybrid"],
        "max_users": 1000,
        "ease": 100.0,
        "itemknn": {"n_neighbors": 400, "similarity": "bm25"},
    },
}
GOALS = {
    "ml-1m-processed": {"ease": ("pn_cited", 0.8)},
    "ml-100k": {m: ("ratio", 3.0) for m in ("ease", "itemknn", "hybrid")},
    "amazon-beauty": {m: ("ratio", 3.0) for m in ("ease", "itemknn", "hybrid")},
}


def tune_ease(data, protocol: str, seed: int, grid: list[float]) -> tuple[float, list[dict]]:
    """EASE's regularization by validation NDCG@10 (the protocol's own validation part)."""
    split = protocol_split(data, protocol, seed=seed)
    trials = []
    for reg in grid:
        res = evaluate(EASE(regularization=reg), split, k=TOP, ks=(TOP,), use_valid=True)
        trials.append({"regularization": reg, "valid_ndcg@10": res.summary["ndcg@10"]})
        print(f"  tune ease {reg}: valid ndcg@10={res.summary['ndcg@10']:.4f}", file=sys.stderr)
    best = max(trials, key=lambda t: t["valid_ndcg@10"])
    return float(best["regularization"]), trials


def make(name: str, cfg: dict[str, Any], encoder: str) -> Any:
    if name == "ease":
        return EASE(regularization=cfg["ease"])
    if name == "itemknn":
        return ItemKNN(**cfg["itemknn"])
    if name == "hybrid":
        return HybridRecommender(
            {
                "cf": EASE(regularization=cfg["ease"]),
                "text": ContentRecommender(encoder=encoder, cache=default_cache()),
            }
        )
    msg = f"unknown model {name}"
    raise SystemExit(msg)


def history_row(model: Any, user: int) -> sp.csr_matrix:
    """The row whose fold-in reproduces the served score (see the module docstring)."""
    if isinstance(model, HybridRecommender):
        text = model.components[model.text]
        return sp.csr_matrix(text.history_weights_[user], dtype=np.float32)
    return sp.csr_matrix(model.seen_[user], dtype=np.float32)


def _rows(cols: np.ndarray, vals: np.ndarray, drops: list[np.ndarray], n_items: int):
    """One CSR row per entry of ``drops``: the history without those positions."""
    indices, data, indptr = [], [], [0]
    for drop in drops:
        keep = np.ones(len(cols), bool)
        keep[drop] = False
        indices.append(cols[keep])
        data.append(vals[keep])
        indptr.append(indptr[-1] + int(keep.sum()))
    return sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)),
        shape=(len(drops), n_items),
    )


def _ranks(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of ``items[r, j]`` in row r of ``scores``; ties: lower index first."""
    idx = np.arange(scores.shape[1])
    own = np.take_along_axis(scores, items, axis=1)  # (rows, j)
    above = (scores[:, None, :] > own[:, :, None]).sum(axis=2)
    tied = ((scores[:, None, :] == own[:, :, None]) & (idx[None, None, :] < items[:, :, None])).sum(
        axis=2
    )
    return above + tied


def _clean(scores: np.ndarray, mask_cols: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isnan(s), -np.inf, s)
    s[:, mask_cols] = -np.inf
    return s


def run_model(
    model: Any, users: np.ndarray, draws: int, seed: int, *, explainer_variant: bool
) -> dict[str, Any]:
    n_items = model.n_items_
    rng = np.random.default_rng(seed)
    variants = ["cited", "random"] + (["cited_explainer"] if explainer_variant else [])
    # per m and variant: list of per-user arrays of 0/1 "left the top 10"
    left: dict[int, dict[str, list[np.ndarray]]] = {m: {v: [] for v in variants} for m in MS}
    skipped = dict.fromkeys(MS, 0)
    share: dict[int, list[float]] = {m: [] for m in MS}  # m / history length, per user
    served_agree = 0
    n_pairs = 0
    exact_err = 0.0
    exact_rel = 0.0
    methods: set[str] = set()
    notes = 0
    cited_sizes: list[int] = []
    start = time.perf_counter()
    served = model.recommend(users, k=TOP, filter_seen=True).items
    for pos, u in enumerate(users):
        row = history_row(model, int(u))
        row.sum_duplicates()
        cols, vals = row.indices.copy(), row.data.copy()
        h = len(cols)
        base = _clean(model.score_history(row), cols)[0]
        order = np.lexsort((np.arange(n_items), -base))
        top = order[:TOP].astype(np.int32)
        served_agree += len(np.intersect1d(top, served[pos]))
        n_pairs += TOP
        attrs = history_attribution(model, top, history=row)
        methods.update(a.method for a in attrs)
        notes += sum(a.note is not None for a in attrs)
        for j, a in enumerate(attrs):
            if a.explained_score is not None:
                diff = abs(a.explained_score - base[top[j]])
                exact_err = max(exact_err, diff)
                exact_rel = max(exact_rel, diff / max(abs(base[top[j]]), 1.0))
        pos_of = {int(c): p for p, c in enumerate(cols)}
        cited = [np.array([pos_of[int(c)] for c in a.items], np.int64) for a in attrs]
        cited_sizes.append(min(len(c) for c in cited))
        expl = None
        if explainer_variant:
            e_attrs = history_attribution(model, top, user=int(u))
            expl = [np.array([pos_of[int(c)] for c in a.items], np.int64) for a in e_attrs]
        drops: list[np.ndarray] = []
        plan: list[tuple[int, str, int, int]] = []  # (m, variant, first row, n rows)
        for m in MS:
            if h < m + 1:
                skipped[m] += 1
                continue
            share[m].append(m / h)
            plan.append((m, "cited", len(drops), TOP))
            drops += [c[:m] for c in cited]
            if expl is not None:
                plan.append((m, "cited_explainer", len(drops), TOP))
                drops += [c[:m] for c in expl]
            plan.append((m, "random", len(drops), draws))
            drops += [rng.choice(h, m, replace=False) for _ in range(draws)]
        if not drops:
            continue
        scores = _clean(model.score_history(_rows(cols, vals, drops, n_items)), cols)
        for m, variant, first, n in plan:
            block = scores[first : first + n]
            if variant == "random":
                ranks = _ranks(block, np.broadcast_to(top, (n, TOP)))
                left[m][variant].append((ranks >= TOP).mean(axis=0))  # per item, over draws
            else:
                ranks = _ranks(block, top[:, None])[:, 0]
                left[m][variant].append((ranks >= TOP).astype(np.float64))
        if (pos + 1) % 200 == 0:
            el = time.perf_counter() - start
            print(f"    {pos + 1}/{len(users)} users ({el:.0f}s)", file=sys.stderr)
    out: dict[str, Any] = {}
    for m in MS:
        per_user = {v: np.array([x.mean() for x in left[m][v]]) for v in variants}
        n_users = len(per_user["cited"])
        cell: dict[str, Any] = {
            "users": n_users,
            "skipped_users": skipped[m],
            "mean_share_of_history_removed": float(np.mean(share[m])) if n_users else None,
        }
        for v in variants:
            vals_ = per_user[v]
            cell[f"pn@10_{v}"] = float(vals_.mean()) if n_users else None
            cell[f"pn@10_{v}_se"] = (
                float(vals_.std(ddof=1) / np.sqrt(n_users)) if n_users > 1 else None
            )
        rnd = cell["pn@10_random"]
        for v in variants:
            if v == "random":
                continue
            key = "ratio" if v == "cited" else "ratio_explainer"
            cell[key] = (cell[f"pn@10_{v}"] / rnd) if rnd else None
        # the largest ratio any explanation could reach here (PN cited <= 1)
        cell["max_possible_ratio"] = (1.0 / rnd) if rnd else None
        if n_users > 1:  # bootstrap over users for the ratio's spread
            boot_rng = np.random.default_rng(seed + 1)
            idx = boot_rng.integers(0, n_users, (1000, n_users))
            c = per_user["cited"][idx].mean(axis=1)
            r = per_user["random"][idx].mean(axis=1)
            ok = r > 0
            if ok.any():
                lo, hi = np.percentile(c[ok] / r[ok], [2.5, 97.5])
                cell["ratio_ci95"] = [float(lo), float(hi)]
        out[str(m)] = cell
    return {
        "by_m": out,
        "attribution_methods": sorted(methods),
        "attributions_with_note": notes,
        "foldin_vs_served_top10_overlap": served_agree / max(n_pairs, 1),
        # float64 sum of the contributions vs the float32 fold-in score of the same row
        "max_abs_contribution_sum_minus_score": exact_err if "exact" in methods else None,
        "max_rel_contribution_sum_minus_score": exact_rel if "exact" in methods else None,
        "min_cited_list_length": int(min(cited_sizes)) if cited_sizes else None,
        "wall_time": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k", choices=sorted(CONFIG))
    ap.add_argument("--models", default=None, help="comma list (default: the dataset's)")
    ap.add_argument("--max-users", type=int, default=None, help="0 = all (default per dataset)")
    ap.add_argument("--draws", type=int, default=10, help="random removals per user and m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder", default="minilm", help="hybrid's text encoder")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    cfg = dict(CONFIG[args.dataset])
    models = args.models.split(",") if args.models else cfg["models"]
    max_users = cfg["max_users"] if args.max_users is None else args.max_users
    data = load(args.dataset, data_dir=data_dir(args.data_dir))
    tuning = None
    if ("ease" in models or "hybrid" in models) and cfg["ease"] is None:
        grid = [100.0, 200.0, 400.0, 800.0, 1600.0]
        cfg["ease"], trials = tune_ease(data, cfg["protocol"], args.seed, grid)
        tuning = {
            "ease": {
                "selection": f"validation ndcg@10 of the {cfg['protocol']} split (seed "
                f"{args.seed})",
                "trials": trials,
                "selected": cfg["ease"],
            }
        }
    split = protocol_split(data, cfg["protocol"], seed=args.seed)
    train = split.train_full
    lengths = np.diff(train.matrix.indptr)
    pool = np.flatnonzero(lengths >= 2).astype(np.int32)
    rng = np.random.default_rng(args.seed)
    users = (
        pool
        if not max_users or max_users >= len(pool)
        else np.sort(rng.choice(pool, max_users, replace=False)).astype(np.int32)
    )
    print(
        f"{args.dataset}: {train.n_users} users, {train.n_items} items, {train.n_events} train "
        f"events; evaluating {len(users)} of {len(pool)} users with >= 2 training items",
        file=sys.stderr,
    )
    results: dict[str, Any] = {}
    for name in models:
        model = make(name, cfg, args.encoder)
        t = time.perf_counter()
        model.fit(train)
        fit_time = time.perf_counter() - t
        print(f"  {name}: fitted in {fit_time:.1f}s", file=sys.stderr)
        res = run_model(model, users, args.draws, args.seed, explainer_variant=name == "hybrid")
        res["fit_time"] = fit_time
        res["params"] = _params(name, cfg, args.encoder)
        results[name] = res
        for m in MS:
            c = res["by_m"][str(m)]
            ratio = "n/a" if c.get("ratio") is None else f"{c['ratio']:.2f}"
            print(
                f"  {name} m={m}: PN cited {c['pn@10_cited']:.3f} random "
                f"{c['pn@10_random']:.3f} ratio {ratio} ({c['users']} users, "
                f"{c['skipped_users']} skipped)",
                file=sys.stderr,
            )
    goals = {}
    for name, (kind, target) in GOALS[args.dataset].items():
        if name not in results:
            continue
        cell = results[name]["by_m"]["5"]
        value = cell["pn@10_cited"] if kind == "pn_cited" else cell["ratio"]
        goals[name] = {
            "goal": f"{'PN@10 cited' if kind == 'pn_cited' else 'cited/random ratio'} >= "
            f"{target} at m = 5",
            "value": value,
            "met": bool(value is not None and value >= target),
        }
    env = environment()
    payload = {
        "schema": "lumenrec.bench.p9/1",
        "protocol": "p9",
        "description": __doc__.split("Protocol (BENCHMARKS.md, P9).")[1]
        .split("Writes ``")[0]
        .strip(),
        "dataset": {
            "name": data.name,
            "fingerprint": data.fingerprint(),
            "n_users": data.n_users,
            "n_items": data.n_items,
            "n_events": data.n_events,
        },
        "split": {
            "protocol": cfg["protocol"],
            "seed": args.seed,
            "part": "train_full (train ∪ valid)",
            "description": split.description,
            "train_fingerprint": train.fingerprint(),
            "train_events": train.n_events,
        },
        "users": {
            "eligible": int(len(pool)),
            "evaluated": int(len(users)),
            "sample": "all" if len(users) == len(pool) else f"seeded sample (seed {args.seed})",
            "train_items_per_user": {
                "min": int(lengths[users].min()),
                "median": float(np.median(lengths[users])),
                "max": int(lengths[users].max()),
            },
        },
        "k": TOP,
        "ms": list(MS),
        "seeds": {"split": args.seed, "users": args.seed, "random_removals": args.seed},
        "random_draws_per_user_and_m": args.draws,
        "hybrid_encoder": args.encoder if "hybrid" in models else None,
        "tuning": tuning,
        "models": results,
        "goals": goals,
        "versions": env["versions"],
        "hardware": env["hardware"],
        "benchmark_hardware": hardware(),
        "wall_time": time.perf_counter() - start,
    }
    path = write_json(args.out or f"p9_faithfulness_{args.dataset}", payload)
    print("wrote", path)


def _params(name: str, cfg: dict[str, Any], encoder: str) -> dict[str, Any]:
    if name == "ease":
        return {"regularization": cfg["ease"]}
    if name == "itemknn":
        return dict(cfg["itemknn"])
    return {
        "components": {
            "cf": {"model": "EASE", "regularization": cfg["ease"]},
            "text": {"model": "ContentRecommender", "encoder": encoder, "half_life": 20.0},
        },
        "fusion": "weighted",
        "weights": "equal",
        "normalize": "zscore",
    }


if __name__ == "__main__":
    main()
