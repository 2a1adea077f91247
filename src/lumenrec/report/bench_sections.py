"""Report sections for the benchmark records: P5 debiasing, P6 off-policy estimates, P7
privacy–utility, P8 trade-off curves and user groups, cold vs warm, training curves side by
side with RecBole, and a list of any other benchmark file."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lumenrec.report import plots
from lumenrec.report.anchors import anchors_for, describe_protocol, goal_for
from lumenrec.report.html import Section, fmt, fmt_stats, table
from lumenrec.report.loaders import ResultFile
from lumenrec.report.sections import Card, _significance_text, label
from lumenrec.report.stats import paired_test

__all__ = ["bench_sections", "other_section"]


def _stem(rf: ResultFile) -> str:
    return rf.name.rsplit(".", 1)[0].replace("_", "-").replace(".", "-")


def _p5(rf: ResultFile, slug: str) -> tuple[list[Section], list[Card]]:
    res = rf.data
    present = list(dict.fromkeys(m for c in res["aggregate"].values() for m in c))
    metrics = [m for m in present if m not in ("fit_time", "n_users", "n_pairs")]
    task = "rating prediction" if res.get("task") == "rating" else "labels >= 3"
    sec = Section(f"P5 on Coat: debiasing, {task}", slug, rf.name)
    sec.text(f"Protocol P5: {describe_protocol('p5')}")
    anchors = anchors_for("coat", "p5")
    rows = [[f"LumenRec {n}", *(fmt_stats(c.get(m)) for m in metrics)]
            for n, c in res["aggregate"].items()]  # fmt: skip
    anchors = {n: v for n, v in anchors.items() if any(m in v for m in metrics)}
    rows += [[f"{n} — published", *(fmt(list(v[m]) if isinstance(v.get(m), tuple) else v.get(m))
                                    for m in metrics)] for n, v in anchors.items()]  # fmt: skip
    classes = [""] * len(res["aggregate"]) + ["anchor"] * len(anchors)
    sec.add(table(["model", *map(label, metrics)], rows, row_classes=classes,
                  caption="mean ± std over seeds; published numbers in italics"))  # fmt: skip
    sec.text(f"Goal: {goal_for('coat', 'p5')}", "note")
    runs = [{"seed": e.get("seed"), "model": n, "metrics": e}
            for n, lst in (res.get("per_seed") or {}).items() for e in lst]  # fmt: skip
    if not metrics:
        sec.text("No metric found in this file.", "note")
        return [sec], []
    text, card = _significance_text(
        paired_test({"aggregate": res["aggregate"], "runs": runs}, metrics[0])
    )
    sec.text(text)
    series = {n: ([(c.get(m) or {}).get("mean") for m in metrics],
                  [(c.get(m) or {}).get("std") for m in metrics])
              for n, c in res["aggregate"].items()}  # fmt: skip
    sec.figure(plots.bar_chart([label(m) for m in metrics], series, key=f"{slug}-bars",
                               ylabel="score", title="Coat MAR test (error bars: ± std)"),
               "AUC and top-k metrics on the randomly assigned test ratings")  # fmt: skip
    return [sec], [card] if card else []


def _p6(rf: ResultFile, slug: str) -> tuple[list[Section], list[Card]]:
    res = rf.data
    sec = Section("P6 off-policy estimates (Open Bandit Dataset)", slug, rf.name)
    sec.text(f"Protocol P6: {describe_protocol('p6')}")
    cards: list[Card] = []
    for direction, boot in (res.get("bootstrap") or {}).items():
        nice = direction.replace("_", " ").replace("bts", "BTS").replace("random", "Random")
        sec.heading(nice)
        full = (res.get("full_sample") or {}).get(direction) or {}
        variants = [v for v in ("reference", "calibrated") if isinstance(boot.get(v), Mapping)]
        names = sorted({e for v in variants for e in boot[v]})
        truth = full.get("truth")
        est = {f"{v} (full sample)": ([(full.get(v) or {}).get(e, {}).get("value") for e in names], None)
               for v in variants if isinstance(full.get(v), Mapping)}  # fmt: skip
        if est and isinstance(truth, int | float):
            sec.figure(plots.dot_chart(names, est, key=f"{slug}-{direction}-est",
                                       xlabel="estimated click rate V̂", vline=("true V", truth),
                                       title=f"{nice}: estimates vs the true value"),
                       "full-sample estimates; dashed: the evaluated policy's own click rate")  # fmt: skip
        series: dict[str, tuple[list[Any], list[Any] | None]] = {
            f"LumenRec {v}": ([boot[v].get(e, {}).get("mean") for e in names],
                              [boot[v].get(e, {}).get("std") for e in names]) for v in variants
        }  # fmt: skip
        anchor = anchors_for("open-bandit", f"p6:{direction}").get("obp", {})
        if anchor:
            series["obp 0.5.7 (published)"] = ([anchor.get(e) for e in names], None)
        runs = boot.get("runs", "?")
        sec.figure(plots.dot_chart(names, series, key=f"{slug}-{direction}-err",
                                   xlabel="relative error |V̂ - V| / V (lower is better)",
                                   title=f"{nice}: bootstrap error, mean ± std over {runs} resamples"),
                   "error bars: ± 1 std over bootstrap resamples")  # fmt: skip
        rows = [
            [e, *(fmt_stats(boot[v].get(e)) for v in variants), fmt(anchor.get(e))] for e in names
        ]
        sec.add(table(["estimator", *(f"{v} error" for v in variants), "obp (published)"], rows))
        goal = (res.get("goals") or {}).get(direction) or {}
        if goal:
            met = bool(goal.get("best_meets_goal"))
            sec.text(f"Best: {goal.get('best')} with error {fmt(goal.get('best_error'))} "
                     f"(goal ≤ {fmt(goal.get('goal'), 2)}: {'met' if met else 'not met'}).")  # fmt: skip
            cards.append((fmt(goal.get("best_error"), 3), f"best OPE error, {nice} "
                          f"({'goal met' if met else 'goal not met'})"))  # fmt: skip
    return [sec], cards


def _epsilon_lists(value: Any, path: str = "", depth: int = 0) -> list[tuple[str, list[Any]]]:
    if depth > 4:
        return []
    if isinstance(value, list) and any(isinstance(v, Mapping) and "epsilon" in v for v in value):
        return [(path or "curve", [v for v in value if isinstance(v, Mapping) and "epsilon" in v])]
    items = value.items() if isinstance(value, Mapping) else []
    return [c for k, v in items for c in _epsilon_lists(v, f"{path}/{k}".strip("/"), depth + 1)]


def _eps(p: Mapping[str, Any]) -> float:
    """ε of a point as a float (``"inf"``, None or a non-number: infinity)."""
    e = p.get("epsilon")
    return float(e) if isinstance(e, int | float) else math.inf


def _mean_std(value: Any) -> tuple[Any, Any]:
    """(mean, std) of a ``{mean, std}`` cell or a plain number."""
    if isinstance(value, Mapping):
        return value.get("mean"), value.get("std")
    return value, None


def _p7(rf: ResultFile, slug: str) -> tuple[list[Section], list[Card]]:
    res = rf.data
    dataset = res.get("dataset") if isinstance(res.get("dataset"), str) else ""
    curves = _epsilon_lists(res)
    metric = next((m for m in ("ndcg@10", "recall@10", "rmse", "auc")
                   if any(m in p for _, pts in curves for p in pts)), None)  # fmt: skip
    task = " (rating task)" if metric == "rmse" else ""
    sec = Section(f"P7 privacy–utility{f' on {dataset}' if dataset else ''}{task}", slug, rf.name)
    sec.text(f"Protocol P7: {describe_protocol('p7')} This run: {res.get('protocol', '?')}.")
    if metric is None:
        sec.text("No utility metric found beside epsilon.", "note")
        return [sec], []
    finite = [_eps(p) for _, pts in curves for p in pts if math.isfinite(_eps(p))]
    inf_x = max(finite) * 2 if finite else 16.0

    def x_of(p: Mapping[str, Any]) -> float:
        return _eps(p) if math.isfinite(_eps(p)) else inf_x

    series: dict[str, plots.Series] = {}
    rows = []
    for path, pts in curves:
        for model in sorted({str(p.get("model", "")) for p in pts}):
            sub = sorted((p for p in pts if str(p.get("model", "")) == model), key=x_of)
            name = model or path
            cells = [_mean_std(p.get(metric)) for p in sub]
            series[name] = ([x_of(p) for p in sub], [c[0] for c in cells],
                            [c[1] or 0.0 for c in cells], None)  # fmt: skip
            rows += [[name, fmt(_eps(p), 2) if math.isfinite(_eps(p)) else "∞ (non-private)",
                      str(p.get("level", "")), fmt_stats(p.get(metric))
                      if isinstance(p.get(metric), Mapping) else fmt(p.get(metric))]
                     for p in sub]  # fmt: skip
    ticks = sorted({x for s in series.values() for x in s[0]})
    labels = ["∞" if t == inf_x else f"{t:g}" for t in ticks]
    sec.figure(plots.line_chart(series, key=f"{slug}-eps", xlabel="privacy budget ε",
                                ylabel=label(metric), xticks=ticks, xticklabels=labels,
                                title=f"{label(metric)} against ε (∞ = non-private)"),
               "utility at each privacy budget (band: ± std over seeds)")  # fmt: skip
    sec.add(table(["model", "ε", "protects", label(metric)], rows,
                  caption=f"δ = {res.get('delta', '?')}"))  # fmt: skip
    return [sec], []


def _curves(res: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for holder in (res.get("summary"), res.get("sweeps")):
        for name, pts in (holder or {}).items():
            if isinstance(pts, list) and pts and isinstance(pts[0], Mapping) and "lambda" in pts[0]:
                out[name] = pts
    return out


def _p8_tradeoffs(rf: ResultFile, slug: str) -> tuple[list[Section], list[Card]]:
    res = rf.data
    dataset = next((d for d in ("ml-100k", "ml-1m", "amazon-beauty") if d in rf.name), "")
    sec = Section(f"P8 trade-off curves{f' on {dataset}' if dataset else ''}", slug, rf.name)
    sec.text(f"Protocol P8: {describe_protocol('p8')} Split: {res.get('protocol', '?')}; "
             f"base model {(res.get('base_model') or {}).get('class', '?')}.")  # fmt: skip
    curves = _curves(res)
    y = next((m for m in ("ndcg@10", f"ndcg@{res.get('k', 10)}") if curves
              and m in next(iter(curves.values()))[0]), "ndcg@10")  # fmt: skip
    skip = {"lambda", y, "ms_per_user"}
    trade = sorted({m for pts in curves.values() for m, v in pts[0].items()
                    if m not in skip and isinstance(v, int | float)})  # fmt: skip
    rand = (res.get("summary") or {}).get("random")
    anchors = anchors_for(dataset, "p8:diversity")
    for m in trade:
        series = {n: ([p.get(m) for p in pts], [p.get(y) for p in pts], None,
                      [f"λ={p.get('lambda'):g}" for p in pts])
                  for n, pts in curves.items() if m in pts[0]}  # fmt: skip
        points = {}
        if isinstance(rand, Mapping) and m in rand and y in rand:
            points["random recommender"] = (rand[m], rand[y])
        points.update({f"{n} (published)": (v[m], v[y]) for n, v in anchors.items()
                       if m in v and y in v})  # fmt: skip
        sec.figure(plots.line_chart(series, key=f"{slug}-{m}", xlabel=m.replace("_", " "),
                                    ylabel=label(y), points=points,
                                    title=f"{label(y)} vs {m.replace('_', ' ')} over λ"),
                   "each point is one λ of the sweep (0 = base model)")  # fmt: skip
    goals = res.get("summary_goals") or res.get("goals") or {}
    rows = []
    for curve, entry in goals.items():
        inner = entry.values() if isinstance(entry, Mapping) and "met" not in entry else [entry]
        for g in inner:
            if isinstance(g, Mapping) and "met" in g:
                rows.append([curve, g.get("metric", ""), fmt(g.get("target")),
                             "met" if g.get("met") else "not met", fmt(g.get("lambda"), 1),
                             fmt(g.get("ndcg_ratio"))])  # fmt: skip
    if rows:
        sec.add(table(["curve", "metric", "target", "goal", "λ", "NDCG ratio"], rows,
                      caption=str(res.get("goal", ""))))  # fmt: skip
    return [sec], []


def _p8_groups(rf: ResultFile, slug: str) -> tuple[list[Section], list[Card]]:
    res = rf.data
    sec = Section("P8 user groups: active vs inactive users (FairRecSys)", slug, rf.name)
    sec.text(str(res.get("protocol", "")), "note")
    for name, ds in (res.get("datasets") or {}).items():
        ours = ds.get("ours") or {}
        cells = {m: ((e.get("as_coded") or {}).get("author") or {}).get("ndcg@10") or {}
                 for m, e in ours.items()}  # fmt: skip
        if not cells:
            continue
        sec.heading(name)
        models = list(cells)
        series = {g: ([cells[m].get(g) for m in models], None) for g in ("active", "inactive")}
        sec.figure(plots.bar_chart(models, series, key=f"{slug}-{name}", ylabel="NDCG@10",
                                   title=f"{name}: NDCG@10 of active vs inactive users"),
                   "authors' metric; the gap is the fairness measure")  # fmt: skip
        pub = ds.get("published_unaware") or {}
        rows = [[m, fmt(c.get("all")), fmt(c.get("active")), fmt(c.get("inactive")),
                 fmt(c.get("gap")), fmt(c.get("p_value"), 3),
                 fmt((pub.get(m) or {}).get("gap"))] for m, c in cells.items()]  # fmt: skip
        sec.add(table(["model", "all", "active", "inactive", "gap", "p (Welch)",
                       "published gap"], rows))  # fmt: skip
    return [sec], []


def _cold_start(rf: ResultFile, slug: str) -> tuple[list[Section], list[Card]]:
    res = rf.data
    dataset = (res.get("dataset") or {}).get("name", "?")
    sec = Section(f"Cold vs warm on {dataset}", slug, rf.name)
    sec.text(f"P3: {describe_protocol('p3')} {describe_protocol('p3-users')}")
    warm: dict[str, list[float]] = {}
    for run in (res.get("p2") or {}).get("runs") or []:
        v = (run.get("all") or {}).get("ndcg@10")
        if isinstance(v, int | float):
            warm.setdefault(str(run.get("model")), []).append(float(v))
    parts = {"warm (P2)": None, "cold items (P3)": ("p3", "all:ndcg@10"),
             "cold items, cold-only ranking": ("p3", "cold_only:ndcg@10"),
             "cold users (P3-users)": ("p3-users", "all:ndcg@10")}  # fmt: skip
    models = list(dict.fromkeys([*((res.get("p3") or {}).get("aggregate") or {}), *warm]))
    series: dict[str, tuple[list[Any], list[Any] | None]] = {}
    for part, where in parts.items():
        if where is None:
            series[part] = ([float(np.mean(warm[m])) if m in warm else None for m in models], None)
            continue
        agg = (res.get(where[0]) or {}).get("aggregate") or {}
        if agg:
            cells = [(agg.get(m) or {}).get(where[1]) or {} for m in models]
            series[part] = ([c.get("mean") for c in cells], [c.get("std") for c in cells])
    sec.figure(plots.bar_chart(models, series, key=f"{slug}-bars", ylabel="NDCG@10",
                               title=f"{dataset}: NDCG@10 warm vs cold (± std over seeds)"),
               "warm = the P2 leave-one-out figure of the same model")  # fmt: skip
    rows = [[m, *(fmt(s[0][i]) for s in series.values())] for i, m in enumerate(models)]
    sec.add(table(["model", *series], rows, caption="NDCG@10, mean over seeds"))
    return [sec], []


def _sasrec_vs_recbole(rf: ResultFile, slug: str) -> tuple[list[Section], list[Card]]:
    quality = rf.data.get("quality") or {}
    rounds = quality.get("by_round") or []
    sec = Section("Training curves: SASRec, LumenRec vs RecBole", slug, rf.name)
    sides = sorted({s for r in rounds for s in (r.get("ndcg@10") or {})})
    series = {f"{s}": ([r["cum_train_cpu_s"][s] for r in rounds], [r["ndcg@10"][s] for r in rounds],
                       None, None) for s in sides}  # fmt: skip
    if series:
        sec.figure(plots.line_chart(series, key=f"{slug}-curve", xlabel="cumulative training CPU s",
                                    ylabel="validation NDCG@10",
                                    title=f"SASRec on {rf.data.get('dataset', '?')}: equal budgets"),
                   str(quality.get("metric", "")))  # fmt: skip
    return [sec], []


_BUILDERS = {"p5": _p5, "p6": _p6, "p7": _p7, "p8_tradeoffs": _p8_tradeoffs,
             "p8_groups": _p8_groups, "cold_start": _cold_start,
             "sasrec_vs_recbole": _sasrec_vs_recbole}  # fmt: skip


def bench_sections(rf: ResultFile, idx: int) -> tuple[list[Section], list[Card]]:
    """Sections and glance cards for one benchmark record (kinds other than ``compare``)."""
    return _BUILDERS[rf.kind](rf, f"f{idx}-{_stem(rf)}"[:60])


def other_section(files: list[ResultFile]) -> Section:
    """One table listing benchmark files that have no dedicated section."""
    sec = Section("Other results files", "other")
    rows = []
    for rf in files:
        d = rf.data
        what = str(d.get("benchmark") or d.get("protocol") or d.get("schema") or "")
        flags = [(k, v) for holder in ("goals", "gates") for k, v in (d.get(holder) or {}).items()
                 if isinstance(v, bool) or (isinstance(v, Mapping) and isinstance(v.get("met"), bool))]  # fmt: skip
        met = sum(bool(v if isinstance(v, bool) else v["met"]) for _, v in flags)
        rows.append([rf.name, what[:110] + ("…" if len(what) > 110 else ""),
                     str(d.get("created_at", "")), f"{met}/{len(flags)}" if flags else "–"])  # fmt: skip
    sec.add(table(["file", "what", "created", "goals met"], rows))
    return sec
