"""Regenerate the README results table from benchmarks/results/*.json (no hand-typed numbers).

Usage: ``python benchmarks/make_readme_table.py`` — rewrites the block between
``<!-- results:start -->`` and ``<!-- results:end -->`` in README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _readme_human import human_sections  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"

#: (result file stem, title, metrics shown)
TABLES = [
    (
        "p1_ml-100k",
        "P1 — ML-100K, per-user random 75/25 (BENCHMARKS.md), full ranking, 5 seeds",
        ["ndcg@10", "precision@10", "recall@10", "map@10"],
    ),
    (
        "p1_neural_ml-100k",
        "P1 — ML-100K, neural models (same protocol and seeds; classic models in the table above)",
        ["ndcg@10", "precision@10", "recall@10", "map@10"],
    ),
    (
        "p1-item_ml-100k",
        "P1-item — ML-100K, the item-stratified 75/25 split the MS Recommenders notebook ran (seed 42)",
        ["ndcg@10", "precision@10", "recall@10", "map@10"],
    ),
    (
        "p2_amazon-beauty",
        "P2 — Amazon Beauty, leave-one-out, full ranking (12,101 items)",
        ["ndcg@10", "hr@10", "ndcg@5", "hr@5"],
    ),
    (
        "p2_sasrec_amazon-beauty",
        "P2 — Amazon Beauty, SASRec id-only vs text-unified (frozen MiniLM), seeds = model init",
        ["ndcg@10", "hr@10", "ndcg@5", "hr@5"],
    ),
    (
        "p2_neural_amazon-beauty",
        "P2 — Amazon Beauty, MultVAE and LightGCN (one seed, settings fixed in advance)",
        ["ndcg@10", "hr@10", "ndcg@5", "hr@5"],
    ),
]


def _cell(agg: dict, metric: str) -> str:
    entry = agg.get(metric)
    if not entry or entry.get("mean") is None:
        return "–"
    std = entry.get("std")
    return f"{entry['mean']:.4f}" + (f" ± {std:.4f}" if std and std >= 5e-5 else "")


def render() -> str:
    out = []
    for stem, title, metrics in TABLES:
        path = RESULTS / f"{stem}.json"
        if not path.is_file():
            continue
        res = json.loads(path.read_text())
        out.append(f"**{title}** — `{path.relative_to(REPO)}`, seeds {res['seeds']}\n")
        out.append(
            "| model | "
            + " | ".join(m.upper().replace("@", "@") for m in metrics)
            + " | fit s | tuned params (validation only) |"
        )
        out.append("|---" * (len(metrics) + 3) + "|")
        rows = []
        for name, agg in res["aggregate"].items():
            params = res.get("tuning", {}).get("models", {}).get(name, {}).get("best_params", {})
            fit = agg.get("fit_time", {}).get("mean")
            rows.append((agg.get(metrics[0], {}).get("mean") or 0, name, agg, params, fit))
        for _, name, agg, params, fit in sorted(rows, key=lambda r: -r[0]):
            ptxt = ", ".join(f"{k}={v}" for k, v in params.items()) or "–"
            out.append(
                f"| LumenRec {name} | "
                + " | ".join(_cell(agg, m) for m in metrics)
                + f" | {fit:.2f} | {ptxt} |"
            )
        for anchor, values in res.get("anchors", {}).items():
            out.append(
                f"| *{anchor}* | "
                + " | ".join(f"*{values[m]:.4f}*" if m in values else "–" for m in metrics)
                + " | | published anchor |"
            )
        out.append("")
    out.extend(_cold_start())
    out.extend(human_sections(RESULTS, REPO))
    lift = RESULTS / "p1_text_lift_ml-100k.json"
    if lift.is_file():
        res = json.loads(lift.read_text())
        agg, tl = res["aggregate"], res["text_lift"]
        names = list(agg)
        cells = ", ".join(f"{n} {agg[n]['ndcg@10']['mean']:.4f}" for n in names)
        out.append(
            f"**P1 ML-100K with and without text** — `{lift.relative_to(REPO)}`: NDCG@10 {cells}; "
            f"lift {tl['mean']:+.4f} ({tl['seeds_improved']}/{len(tl['per_seed_difference'])} seeds "
            f"improved; learned text weights {[w.get('text') for w in tl['learned_weights_per_seed']]}).\n"
        )
    load = RESULTS / "service_load.json"
    if load.is_file():
        res = json.loads(load.read_text())
        parts = []
        for label, name in (
            ("reads_no_cache", "reads, no result cache"),
            ("reads_cache", "reads, cached"),
            ("writes", "feedback writes"),
        ):
            r = res[label]
            parts.append(f"{name} {r['requests_per_s']:.0f}/s (p99 {r['p99_ms']:.1f} ms)")
        w = res["writes"]
        out.append(
            f"**Service load** — `{load.relative_to(REPO)}` ({res['protocol']}): "
            + "; ".join(parts)
            + f"; {w['rows_in_store']} rows stored for {w['acknowledged']} acknowledged writes.\n"
        )
    extra = RESULTS / "als_vs_implicit_ml-1m-processed.json"
    if extra.is_file():
        res = json.loads(extra.read_text())
        out.append(f"**ALS vs implicit** — `{extra.relative_to(REPO)}`: {_als_line(res)}\n")
    return "\n".join(out)


def _cold_start() -> list[str]:
    out = []
    for ds in ("amazon-beauty", "amazon-toys"):
        path = RESULTS / f"cold_start_{ds}.json"
        if not path.is_file():
            continue
        res = json.loads(path.read_text())
        p3 = res["p3"]["aggregate"]
        out.append(
            f"**P3 cold items — {ds}** (10% of items held out of training; test users whose target "
            f"is cold; seeds {res['seeds']}) — `{path.relative_to(REPO)}`\n"
        )
        out.append(
            "| model | NDCG@10 all items | HR@10 all items | cold share of top-10 | NDCG@10 cold items only | HR@10 cold only |"
        )
        out.append("|---|---|---|---|---|---|")
        for name, agg in p3.items():
            cells = [
                _cell(agg, m)
                for m in (
                    "all:ndcg@10",
                    "all:hr@10",
                    "all:cold_share@10",
                    "cold_only:ndcg@10",
                    "cold_only:hr@10",
                )
            ]
            out.append(f"| LumenRec {name} | " + " | ".join(cells) + " |")
        lift = res["p2"]["lift_hybrid_vs_ease"]
        p2 = {}
        for run in res["p2"]["runs"]:
            p2.setdefault(run["model"], run["all"])
        absolute = ", ".join(f"{m} {v['ndcg@10']:.4f} / {v['hr@10']:.4f}" for m, v in p2.items())
        out.append(
            f"\nP2 warm, same data (NDCG@10 / HR@10): {absolute}. Hybrid (EASE + MiniLM content) vs EASE alone: NDCG@10 "
            f"{lift['ndcg@10_diff']:+.4f} ({lift['ndcg@10_relative']:+.0%}), paired bootstrap 95% CI "
            f"[{lift['ci95'][0]:.4f}, {lift['ci95'][1]:.4f}] over {lift['n_users']} users.\n"
        )
    return out


def _als_line(res: dict) -> str:
    try:
        ours, theirs = res["metrics"]["lumenrec"], res["metrics"]["implicit"]
        return (
            f"NDCG@10 {ours['ndcg@10']:.4f} (ours) vs {theirs['ndcg@10']:.4f} (implicit), "
            f"median fit {res['fit_seconds']['lumenrec']['median']:.2f} s vs "
            f"{res['fit_seconds']['implicit']['median']:.2f} s, ratio ours/implicit "
            f"{res['fit_time_ratio_ours_over_implicit']:.2f} (same run, {res['hardware'].get('threads', '?')} threads)"
        )
    except (KeyError, TypeError):
        return "see the JSON"


def main() -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    if START not in text:
        msg = f"README.md has no {START} marker"
        raise SystemExit(msg)
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n" + render() + "\n" + END + tail)


if __name__ == "__main__":
    main()
