"""README sections for the human-centric benchmarks (P5 debiasing, P8 re-ranking and user
fairness, P9 explanation faithfulness), rendered from their JSON results."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["human_sections"]


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _range(value: object) -> str:
    if isinstance(value, list):
        lo, hi = value
        return f"{lo:.3f}" if lo == hi else f"{lo:.3f}–{hi:.3f}"
    return "–" if value is None else f"{value:.3f}"


def _p5(results: Path, repo: Path) -> list[str]:
    res = _load(results / "p5_coat.json")
    if res is None:
        return []
    out = [
        f"**P5 — Coat debiasing (MNAR train, MAR test), labels ≥ 3** — "
        f"`{(results / 'p5_coat.json').relative_to(repo)}`, seeds {res['seeds']}\n",
        "| model | AUC | NDCG@5 | Recall@5 | published AUC | published NDCG@5 |",
        "|---|---|---|---|---|---|",
    ]
    for name, agg in res["aggregate"].items():
        anchor = res["anchors"].get(name, {})
        cells = [
            f"{agg[m]['mean']:.4f} ± {agg[m]['std']:.4f}" for m in ("auc", "ndcg@5", "recall@5")
        ]
        out.append(
            f"| LumenRec {name} | {' | '.join(cells)} | {_range(anchor.get('auc'))} | "
            f"{_range(anchor.get('ndcg@5'))} |"
        )
    for name, anchor in res["anchors"].get("literature", {}).items():
        out.append(
            f"| *{name}* | – | – | – | *{_range(anchor.get('auc'))}* | "
            f"*{_range(anchor.get('ndcg@5'))}* |"
        )
    out.append("")
    return out


def _p9(results: Path, repo: Path) -> list[str]:
    rows = []
    for stem in ("ml-1m-processed", "ml-100k", "amazon-beauty"):
        res = _load(results / f"p9_faithfulness_{stem}.json")
        if res is None:
            continue
        for model, entry in res["models"].items():
            m5 = entry["by_m"]["5"]
            rows.append(
                f"| {stem} | {model} | {m5['pn@10_cited']:.3f} | {m5['pn@10_random']:.3f} | "
                f"{m5['ratio']:.2f}× | {m5['max_possible_ratio']:.2f}× |"
            )
    if not rows:
        return []
    return [
        "**P9 — explanation faithfulness (remove the m = 5 top-cited vs 5 random history items)** — "
        "`benchmarks/results/p9_faithfulness_*.json`\n",
        "| dataset | model | PN@10 cited | PN@10 random | ratio | ceiling |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _p8(results: Path, repo: Path) -> list[str]:
    out = []
    ml = _load(results / "p8_tradeoffs_ml-100k.json")
    if ml is not None:
        g = ml["summary_goals"]["mmr_lm"]["diversity_lm"]
        verdict = (
            f"met at λ {g['lambda']} ({g['ndcg_ratio']:.1%} of NDCG@10)" if g["met"] else "not met"
        )
        out.append(
            f"- ML-100K MMR (LM-embedding diversity) reaches a random recommender's diversity: "
            f"{verdict}; co-occurrence diversity: "
            f"{'met' if ml['summary_goals']['mmr_lm']['diversity_cooccurrence']['met'] else 'not met'}."
        )
    for stem, label in (
        ("ml-1m", "ML-1M calibration −50% C_KL"),
        ("amazon-beauty", "Beauty brand Gini −20%"),
    ):
        res = _load(results / f"p8_tradeoffs_{stem}.json")
        if res is None:
            continue
        met = [name for name, goal in res["goals"].items() if goal["met"]]
        out.append(
            f"- {label} at ≤ 2% NDCG@10 loss: "
            + (f"met ({', '.join(met)})." if met else "not met (docs/reranking.md has the curves).")
        )
    speed = _load(results / "rerank_speed.json")
    if speed is not None:
        worst = max(r["p99_ms"] for r in speed["results"].values())
        out.append(
            f"- Re-ranking 100 → 10: worst p99 over all stages and a 3-stage chain {worst:.2f} ms."
        )
    fair = _load(results / "p8_fairrecsys.json")
    if fair is not None and "MovieLens" in fair["datasets"]:
        ours = fair["datasets"]["MovieLens"]["ours"]["MostPop"]["as_coded"]["author"]["ndcg@10"]
        pub = fair["datasets"]["MovieLens"]["published_unaware"]["MostPop"]
        out.append(
            f"- FairRecSys ML-100K MostPop NDCG@10 all/active/inactive {ours['all']:.4f} / "
            f"{ours['active']:.4f} / {ours['inactive']:.4f} (published {pub['ndcg_all']:.4f} / "
            f"{pub['ndcg_active']:.4f} / {pub['ndcg_inactive']:.4f})."
        )
    if not out:
        return []
    return [
        "**P8 — re-ranking and fairness goals** (`benchmarks/results/p8_*.json`, docs/reranking.md)\n",
        *out,
        "",
    ]


def _p6(results: Path, repo: Path) -> list[str]:
    res = _load(results / "p6_obd.json")
    if res is None:
        return []
    out = [
        "**P6 — off-policy evaluation on the Open Bandit sample (30-run bootstrap relative error, "
        "mean ± std)** — `benchmarks/results/p6_obd.json`\n",
        "| estimator | BTS←Random, obp reward model | ours (calibrated) | obp 0.5.7 | "
        "Random←BTS, obp reward model | ours (calibrated) | obp 0.5.7 |",
        "|---|---|---|---|---|---|---|",
    ]
    boot, goals = res["bootstrap"], res["goals"]
    fwd, rev = boot["bts_from_random"], boot["random_from_bts"]
    for name in fwd["reference"]:
        cells = []
        for side, key in ((fwd, "bts_from_random"), (rev, "random_from_bts")):
            ref, cal = side["reference"][name], side["calibrated"][name]
            anchor = goals[key]["anchors"].get(name)
            cells += [
                f"{ref['mean']:.3f} ± {ref['std']:.3f}",
                f"{cal['mean']:.3f} ± {cal['std']:.3f}",
                "–" if anchor is None else f"*{anchor:.3f}*",
            ]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    verdicts = [
        f"{key.replace('_', ' ')}: best {g['best']} {g['best_error']:.3f} (goal ≤ {g['goal']}, "
        f"{'met' if g['best_meets_goal'] else 'missed'})"
        for key, g in goals.items()
    ]
    out += [
        "",
        "Goals — " + "; ".join(verdicts) + ". IPS equals the reference to 1e-9; the "
        "model-based estimators from the reference q̂ equal obp's code to 1e-12.",
        "",
    ]
    return out


def _bandits(results: Path, repo: Path) -> list[str]:
    res = _load(results / "bandits_ml-100k.json")
    if res is None:
        return []
    lines = []
    for goal, verdicts in (res.get("goals") or {}).items():
        if isinstance(verdicts, dict):
            cells = ", ".join(f"{who} {'met' if ok else 'not met'}" for who, ok in verdicts.items())
            lines.append(f"- {goal}: {cells}")
    if not lines:
        return []
    return [
        "**Bandits (known best arm; ML-100K new items with text)** — "
        "`benchmarks/results/bandits_ml-100k.json`, docs/exploration.md\n",
        *lines,
        "",
    ]


def _p7(results: Path, repo: Path) -> list[str]:
    out = []
    for stem, label in (("ml-1m-processed", "ML-1M (P4)"), ("ml-100k", "ML-100K (P1)")):
        res = _load(results / f"p7_privacy_{stem}.json")
        if res is None:
            continue
        table: dict[str, dict] = {}
        levels: dict[str, str] = {}
        for row in res["rows"]:
            eps = (
                "∞"
                if row["epsilon"] in ("inf", None) or row["epsilon"] == float("inf")
                else f"{row['epsilon']:g}"
            )
            table.setdefault(row["model"], {})[eps] = row["ndcg@10"]
            if eps != "∞":
                levels[row["model"]] = row.get("level", "")
        cols = ["1", "2", "4", "8", "∞"]
        out += [
            f"**P7 — privacy–utility, {label}, NDCG@10 (mean ± std over seeds {res['seeds']}), "
            f"δ = {res['delta']:g}** — `benchmarks/results/p7_privacy_{stem}.json`\n",
            "| model | protects | " + " | ".join(f"ε = {c}" for c in cols) + " |",
            "|---|---|" + "---|" * len(cols),
        ]
        for model, cells in table.items():
            vals = [
                "–" if c not in cells else f"{cells[c]['mean']:.4f} ± {cells[c]['std']:.4f}"
                for c in cols
            ]
            out.append(f"| {model} | {levels.get(model, '')} | " + " | ".join(vals) + " |")
        goals = res.get("goals") or {}
        if goals:
            parts = [
                f"{k}: best {g['best_private_model']} keeps {g['best_share']:.0%} of its "
                f"non-private NDCG@10 (goal {g['goal_share']:.0%}, {'met' if g['met'] else 'not met'})"
                for k, g in goals.items()
            ]
            out += ["", "Goals — " + "; ".join(parts) + "."]
        out.append("")
    rating = _load(results / "p7_privacy_rating_ml-1m.json")
    if rating is not None:
        table = {}
        levels = {}
        for r in rating["rows"]:
            eps = "∞" if r["epsilon"] in ("inf", None) else f"{r['epsilon']:g}"
            table.setdefault(r["model"], {})[eps] = r["rmse"]
            if eps != "∞":
                levels[r["model"]] = r["level"]
        cols = ["1", "2", "4", "8", "∞"]
        out += [
            "**P7 — rating task, ML-1M (random 80/20, the TF Privacy setting), test RMSE "
            f"(mean ± std over seeds {rating['seeds']}), δ = {rating['delta']:g}** — "
            "`benchmarks/results/p7_privacy_rating_ml-1m.json`\n",
            "| model | protects | " + " | ".join(f"ε = {c}" for c in cols) + " |",
            "|---|---|" + "---|" * len(cols),
        ]
        for model, cells in table.items():
            vals = [
                "–" if c not in cells else f"{cells[c]['mean']:.4f} ± {cells[c]['std']:.4f}"
                for c in cols
            ]
            out.append(f"| {model} | {levels.get(model, '')} | " + " | ".join(vals) + " |")
        goal = rating.get("goal") or {}
        if goal:
            out += [
                "",
                f"Goal RMSE ≤ {goal['rmse_max']:g} at ε ≤ {goal['epsilon_max']:g}: "
                f"{'met' if goal['met'] else 'not met'} (published: 0.915 at ε = 10.61, "
                "0.893 non-private, Bu et al. 2020). PrivateRatingMF (DP-SGD through Opacus) "
                "ran one untuned configuration on seed 0.",
            ]
        out.append("")
    erasure = _load(results / "erasure_ml-1m.json")
    if erasure is not None:
        rows = [
            "**Erasure on ML-1M (100 users forgotten in a row)** — `benchmarks/results/erasure_ml-1m.json`\n",
            "| model | unlearning | retrain s | mean forget s | forget / retrain | "
            "one-time preparation s | max score gap after 100 |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, m in erasure["models"].items():
            gap = m.get("after_100_vs_retrain", m.get("after_100_vs_warm_retrain", {}))
            gap = gap.get("max_abs")
            prep = m.get("prepare_once_s")
            rows.append(
                f"| {name} | {m['unlearning']} | {m['retrain_s']:.3f} | {m['forget_s']['mean']:.4f} | "
                f"{m['forget_over_retrain']['mean']:.2%} | {'–' if prep is None else f'{prep:.2f}'} | "
                f"{'–' if gap is None else f'{gap:.1e}'} |"
            )
        out += [*rows, ""]
    return out


def _federated(results: Path, repo: Path) -> list[str]:
    out = []
    for stem, label in (("ml-100k", "ML-100K P1"), ("ml-1m-processed", "ML-1M P4")):
        res = _load(results / f"federated_{stem}.json")
        if res is None:
            continue
        sm = res["summary"]
        goal = (
            f"goal ≥ 0.95: {'met' if sm['goal_met'] else 'not met'}"
            if stem == "ml-100k"
            else "reported; the ≥ 0.95 goal is set on ML-100K"
        )
        out += [
            f"**Federated BPR with Flower (FedAvg, one client per user), {label}** — "
            f"`benchmarks/results/federated_{stem}.json`: NDCG@10 {sm['federated_ndcg@10']:.4f} "
            f"federated vs {sm['central_ndcg@10']:.4f} centralised (ratio {sm['ratio_mean']:.3f}, "
            f"min {sm['ratio_min']:.3f} over seeds {[r['seed'] for r in res['runs']]}; {goal}); "
            f"{sm['rounds']} rounds × {sm['clients']} clients, "
            f"{sm['bytes_per_round'] / 1e6:.0f} MB per round "
            f"({sm['bytes_total_training'] / 1e9:.1f} GB for training).",
            "",
        ]
    return out


def human_sections(results: Path, repo: Path) -> list[str]:
    """Markdown lines for P5, P6, P8, P9 and the bandit benchmark (absent JSON: left out)."""
    return [
        *_p5(results, repo),
        *_p6(results, repo),
        *_bandits(results, repo),
        *_p8(results, repo),
        *_p9(results, repo),
        *_p7(results, repo),
        *_federated(results, repo),
    ]
