"""Report sections for ``lumenrec.compare/1`` records (``lumenrec evaluate --json`` and the
P1/P2/P4 benchmarks): results beside published anchors, the paired test, beyond-accuracy
metrics, NDCG@k over k, the long tail, user groups and training curves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lumenrec.report import plots
from lumenrec.report.anchors import anchors_for, describe_protocol, goal_for
from lumenrec.report.html import Markup, Section, esc, fmt, fmt_stats, table
from lumenrec.report.loaders import ResultFile
from lumenrec.report.stats import paired_test, ranked_models

__all__ = ["Card", "compare_sections"]

#: (big text, small text) of an "at a glance" card.
Card = tuple[str, str]

_LABELS = {"ndcg": "NDCG", "precision": "P", "recall": "R", "map": "MAP", "hr": "HR",
           "mrr": "MRR", "auc": "AUC"}  # fmt: skip
_BEYOND = ("coverage", "gini", "novelty", "popularity_bias", "longtail_share", "provider_gini")


def label(metric: str) -> str:
    """``ndcg@10`` → ``NDCG@10`` (other names unchanged)."""
    name, _, k = metric.partition("@")
    return f"{_LABELS.get(name, name)}@{k}" if k else _LABELS.get(name, name)


def _anchor_cell(value: Any) -> str:
    return fmt(list(value) if isinstance(value, tuple) else value)


def _accuracy_metrics(res: Mapping[str, Any], k: int) -> list[str]:
    sequential = str(res.get("protocol", "")).lower().startswith(("p2", "p3"))
    names = ["ndcg", "hr"] if sequential else ["ndcg", "precision", "recall", "map", "hr"]
    wanted = [f"{n}@{k}" for n in names]
    if sequential:
        wanted += [f"{n}@5" for n in ("ndcg", "hr") if k != 5]
    present = {m for cells in res["aggregate"].values() for m in cells}
    return [m for m in wanted if m in present]


def _slug(name: str, idx: int) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"f{idx}-{keep}"[:60]


def _significance_text(test: Mapping[str, Any] | None) -> tuple[str, Card | None]:
    if test is None:
        return "Only one model: no significance test.", None
    head = (
        f"Best model {test['best']} vs runner-up {test['runner_up']} on {label(test['metric'])}: "
        f"difference {test['difference']:+.4f}; {test['test']} paired over {test['n']} "
        f"{test['pairing']}"
    )
    if test["p_value"] is None:
        return f"{head}: {test['note']}.", None
    p = test["p_value"]
    verdict = "significant at 0.05" if p < 0.05 else "not significant at 0.05"
    stat = "" if test["statistic"] is None else f"statistic {test['statistic']:.3g}, "
    card = (f"p = {p:.2g}", f"{test['best']} vs {test['runner_up']}, {test['pairing']}: {verdict}")
    return f"{head}: {stat}p = {p:.3g} ({verdict}).", card


def _results_table(
    res: Mapping[str, Any], metrics: list[str], anchors: Mapping[str, Any]
) -> Markup:
    agg = res["aggregate"]
    order = ranked_models(agg, metrics[0]) or list(agg)
    order += [m for m in agg if m not in order]
    rows: list[list[Any]] = []
    classes: list[str] = []
    for i, name in enumerate(order):
        cells = agg[name]
        users = (cells.get("n_users") or {}).get("mean")
        rows.append([f"LumenRec {name}", *(fmt_stats(cells.get(m)) for m in metrics),
                     fmt(int(users)) if isinstance(users, int | float) else "–"])  # fmt: skip
        classes.append("best" if i == 0 else "")
    for source, values in anchors.items():
        if isinstance(values, Mapping):
            rows.append(
                [f"{source} — published", *(_anchor_cell(values.get(m)) for m in metrics), ""]
            )
            classes.append("anchor")
    caption = "mean ± std (ddof 1) over seeds; published anchors in italics (same protocol)"
    return table(["model", *map(label, metrics), "users"], rows, caption=caption,
                 row_classes=classes)  # fmt: skip


def _ndcg_plot(res: Mapping[str, Any], key: str, anchors: Mapping[str, Any]) -> str | None:
    ks = [int(x) for x in res.get("ks") or []]
    series: dict[str, plots.Series] = {}
    for name, cells in res["aggregate"].items():
        pts = [
            (k, cells.get(f"ndcg@{k}")) for k in ks if isinstance(cells.get(f"ndcg@{k}"), Mapping)
        ]
        if len(pts) >= 2:
            series[name] = ([k for k, _ in pts], [c.get("mean") for _, c in pts],
                            [c.get("std") or 0.0 for _, c in pts], None)  # fmt: skip
    if not series:
        return None
    points = {f"{n} (published)": (10.0, float(np.mean(v["ndcg@10"])))
              for n, v in anchors.items() if isinstance(v, Mapping) and "ndcg@10" in v}  # fmt: skip
    return plots.line_chart(series, key=key, xlabel="k (list length)", ylabel="NDCG@k",
                            title="NDCG@k over k (band: ± std over seeds)", points=points,
                            xticks=ks)  # fmt: skip


def _long_tail_plot(res: Mapping[str, Any], key: str) -> str | None:
    per_model: dict[str, list[list[float]]] = {}
    popularity: list[list[float]] = []
    for run in res.get("runs") or []:
        lt = run.get("long_tail") if isinstance(run, Mapping) else None
        if isinstance(lt, Mapping) and lt.get("exposure_share"):
            per_model.setdefault(str(run.get("model")), []).append(list(lt["exposure_share"]))
            popularity.append(list(lt.get("popularity_share") or []))
    if not per_model:
        return None
    n = len(next(iter(per_model.values()))[0])
    cats = [f"D{i + 1}" for i in range(n)]
    cats[0], cats[-1] = "D1 (head)", f"D{n} (tail)"
    series = {m: (np.mean(v, axis=0).tolist(), None) for m, v in per_model.items()}
    overlay = (
        ("training interactions", np.mean(popularity, axis=0).tolist()) if popularity else None
    )
    return plots.bar_chart(cats, series, key=key, ylabel="share", overlay=overlay,
                           xlabel="item-popularity decile (equal item counts, most popular first)",
                           title="Long tail: share of recommendations per popularity decile")  # fmt: skip


def _beyond_table(res: Mapping[str, Any], k: int) -> Markup | None:
    agg = res["aggregate"]
    metrics = [f"{b}@{k}" for b in _BEYOND if any(f"{b}@{k}" in c for c in agg.values())]
    if not metrics:
        return None
    rows = [[name, *(fmt_stats(cells.get(m)) for m in metrics)] for name, cells in agg.items()]
    caption = ("coverage: share of the catalogue recommended; gini: concentration of exposure "
               "(0 = even); novelty: mean -log2 popularity; popularity_bias: mean popularity "
               "percentile; longtail_share: share of slots outside the head; provider_gini: "
               "exposure concentration over providers")  # fmt: skip
    return table(["model", *metrics], rows, caption=caption)


def _groups(res: Mapping[str, Any], k: int, slug: str, section: Section) -> None:
    groups = res.get("groups")
    if not isinstance(groups, Mapping):
        return
    metric = f"ndcg@{k}"
    for by in groups.get("by") or []:
        table_by = (groups.get("aggregate") or {}).get(by) or {}
        runs = [r for r in groups.get("runs") or [] if r.get("group_by") == by]
        if not table_by or not runs:
            continue
        names = list(runs[0].get("groups") or [])
        sizes = runs[0].get("n_users") or {}
        section.heading(f"Per user group: {by}")
        series, rows = {}, []
        for model, cells in table_by.items():
            cell = cells.get(metric) or {}
            means = cell.get("mean") or {}
            series[model] = ([means.get(g) for g in names], None)
            p = cell.get("p_value")
            rows.append([model, *(fmt(means.get(g)) for g in names), fmt(cell.get("gap")),
                         f"{p:.2g}" if isinstance(p, float) else "–", cell.get("test", "")])  # fmt: skip
        cats = [f"{g} (n={sizes.get(g, '?')})" for g in names]
        section.figure(plots.bar_chart(cats, series, key=f"{slug}-groups-{by}", ylabel=label(metric),
                                       title=f"{label(metric)} per {by} group"),
                       f"{label(metric)} per {by} group, mean over seeds")  # fmt: skip
        section.add(table(["model", *names, "gap", "p (mean over seeds)", "test"], rows,
                          caption=f"{label(metric)} per group; gap = max - min group mean"))  # fmt: skip


def _training(res: Mapping[str, Any], slug: str) -> Section | None:
    runs = [r for r in res.get("runs") or [] if isinstance(r, Mapping) and r.get("history")]
    training = res.get("training")
    if not runs and not training:
        return None
    section = Section(f"Training curves: {res.get('protocol', '?')} on "
                      f"{(res.get('dataset') or {}).get('name', '?')}", f"{slug}-training")  # fmt: skip
    loss: dict[str, plots.Series] = {}
    valid: dict[str, plots.Series] = {}
    seen: set[str] = set()
    for run in runs:
        name = str(run.get("model"))
        if name in seen:
            continue  # the first seed of each model
        seen.add(name)
        hist = run["history"]
        if hist.get("loss"):
            loss[name] = (list(range(1, len(hist["loss"]) + 1)), hist["loss"], None, None)
        if hist.get("valid_scores") and hist.get("valid_epochs"):
            valid[name] = (hist["valid_epochs"], hist["valid_scores"], None, None)
    if loss:
        section.figure(plots.line_chart(loss, key=f"{slug}-loss", xlabel="epoch", ylabel="loss",
                                        title="Training loss per epoch (first seed)"),
                       "training loss per epoch")  # fmt: skip
    if valid:
        section.figure(plots.line_chart(valid, key=f"{slug}-valid", xlabel="epoch",
                                        ylabel="validation NDCG@10",
                                        title="Validation score per epoch (first seed)"),
                       "validation score per epoch")  # fmt: skip
    entries: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(training, Mapping):
        entries = [(m, e) for m, lst in training.items() for e in lst if isinstance(e, Mapping)]
    elif isinstance(training, list):
        entries = [(str(e.get("model", "")), e) for e in training if isinstance(e, Mapping)]
    if entries:
        keys = [k for k in ("epochs_run", "best_epoch", "best_valid_ndcg@10",
                            "best_inner_valid_ndcg@10", "stopped_early", "mean_epoch_seconds")
                if any(k in e for _, e in entries)]  # fmt: skip
        rows = [[m, e.get("seed", ""), *(fmt(e.get(k)) for k in keys)] for m, e in entries]
        section.add(table(["model", "seed", *keys], rows, caption="early stopping per run"))
        if not loss and not valid:
            section.text("This file records each run's early-stopping summary, not the "
                         "per-epoch history.", "note")  # fmt: skip
    return section if section.parts else None


def compare_sections(rf: ResultFile, idx: int) -> tuple[list[Section], list[Card]]:
    """Sections and glance cards for one ``lumenrec.compare/1`` record."""
    res = rf.data
    k = int(res.get("k") or 10)
    data = res.get("dataset") or {}
    dataset, protocol = str(data.get("name", "?")), str(res.get("protocol", "?"))
    slug = _slug(f"{protocol}-{dataset}", idx)
    anchors: Mapping[str, Any] = anchors_for(dataset, protocol) or res.get("anchors") or {}
    metrics = _accuracy_metrics(res, k)
    main = Section(f"{protocol.upper()} on {dataset}: results", slug, rf.name)
    about = describe_protocol(protocol)
    if about:
        main.text(f"Protocol {protocol.upper()}: {about}")
    seeds = ", ".join(map(str, res.get("seeds") or []))
    size = (f"{fmt(data.get('n_users'))} users, {fmt(data.get('n_items'))} items, "
            f"{fmt(data.get('n_events'))} events")  # fmt: skip
    desc = str(res.get("description") or "").strip()
    desc = desc if not desc or desc.endswith(".") else f"{desc}."
    main.text(f"{desc} Dataset: {size}; seeds {seeds}; "
              f"evaluated on the {res.get('evaluated_on', 'test')} part.", "note")  # fmt: skip
    cards: list[Card] = []
    if metrics:
        main.add(_results_table(res, metrics, anchors))
        goal = goal_for(dataset, protocol)
        if goal:
            main.text(f"Goal: {goal}", "note")
        test = paired_test(res, metrics[0])
        text, sig_card = _significance_text(test)
        main.text(text)
        order = ranked_models(res["aggregate"], metrics[0])
        if order:
            best = res["aggregate"][order[0]][metrics[0]]
            cards.append((f"{order[0]}: {fmt_plain(best)}", f"best {label(metrics[0])}, "
                          f"{protocol.upper()} on {dataset}"))  # fmt: skip
            pub = [(float(np.mean(v[metrics[0]])), n) for n, v in anchors.items()
                   if isinstance(v, Mapping) and metrics[0] in v]  # fmt: skip
            if pub and best.get("mean"):
                top, who = max(pub)
                cards.append((f"{(best['mean'] / top - 1) * 100:+.1f}%",
                              f"vs best published {label(metrics[0])} {top:.4f} ({who})"))  # fmt: skip
        if sig_card:
            cards.append(sig_card)
    grid = [
        (_ndcg_plot(res, f"{slug}-ndcgk", anchors), "NDCG@k for each k the run measured"),
        (_long_tail_plot(res, f"{slug}-longtail"),
         "bars: share of all top-k slots per item-popularity decile; dashed: share of training "
         "interactions (bars left of the dashed line = popularity amplified)"),
    ]  # fmt: skip
    figs = [Markup(f'<figure class="plot">{svg}<figcaption>{esc(cap)}</figcaption></figure>')
            for svg, cap in grid if svg]  # fmt: skip
    if figs:
        main.add(Markup(f'<div class="grid">{"".join(figs)}</div>'))
    head = _head_share(res)
    if head:
        main.text(head, "note")
    out = [main]
    beyond = _beyond_table(res, k)
    title = f"{protocol.upper()} on {dataset}: beyond accuracy and user groups"
    groups = Section(title, f"{slug}-beyond", rf.name)
    if beyond is not None:
        groups.add(beyond)
    _groups(res, k, slug, groups)
    if res.get("groups") is None and beyond is not None:
        groups.text("Per-user-group metrics: add --group-by activity,gender,age to lumenrec "
                    "evaluate (gender and age where the dataset has them).", "note")  # fmt: skip
    if groups.parts:
        out.append(groups)
    training = _training(res, slug)
    if training is not None:
        training.source = rf.name
        out.append(training)
    return out, cards


def _head_share(res: Mapping[str, Any]) -> str:
    """One sentence on how much of each model's exposure the most popular decile takes."""
    shares: dict[str, list[float]] = {}
    pop: list[float] = []
    for run in res.get("runs") or []:
        lt = run.get("long_tail") if isinstance(run, Mapping) else None
        if isinstance(lt, Mapping) and lt.get("exposure_share") and lt.get("popularity_share"):
            shares.setdefault(str(run.get("model")), []).append(float(lt["exposure_share"][0]))
            pop.append(float(lt["popularity_share"][0]))
    if not shares:
        return ""
    parts = ", ".join(f"{m} {np.mean(v) * 100:.0f}%" for m, v in shares.items())
    return (f"Long tail: the 10% most popular items hold {np.mean(pop) * 100:.0f}% of the "
            f"training interactions and take this share of the recommendations: {parts}.")  # fmt: skip


def fmt_plain(stats: Mapping[str, Any]) -> str:
    """``mean ± std`` as plain text."""
    std = stats.get("std")
    return fmt(stats.get("mean")) + (f" ± {fmt(std)}" if isinstance(std, int | float) else "")
