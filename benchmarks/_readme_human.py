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


def human_sections(results: Path, repo: Path) -> list[str]:
    """Markdown lines for P5, P8 and P9 (sections whose JSON is absent are left out)."""
    return [*_p5(results, repo), *_p8(results, repo), *_p9(results, repo)]
