"""Terminal output of ``lumenrec evaluate``: the rich table of model x metric (mean +- std over
seeds), in the wide form or transposed (metrics in rows) when the wide form does not fit the
console. :func:`render_table` and :func:`print_table` are re-exported by
:mod:`lumenrec.cli.evaluate`, their public home."""

from __future__ import annotations

from typing import Any

__all__ = ["print_table", "render_table", "stats_cell"]

_COLUMNS = (
    ("ndcg", "NDCG"),
    ("precision", "P"),
    ("recall", "R"),
    ("map", "MAP"),
    ("hr", "HR"),
    ("coverage", "Cov"),
    ("novelty", "Nov"),
)


def stats_cell(stats: dict[str, Any] | None, digits: int = 4, spread: bool = True) -> Any:
    """``mean`` with ``± std`` dimmed on a second line (keeps the columns narrow)."""
    from rich.text import Text

    if stats is None or stats.get("mean") is None:
        return Text("–")
    text = Text(f"{stats['mean']:.{digits}f}")
    if spread and stats.get("std") is not None:
        text.append(f"\n± {stats['std']:.{digits}f}", style="dim")
    return text


def render_table(results: dict[str, Any], *, transpose: bool = False) -> Any:
    """A rich Table of model × metric (mean ± std over seeds) from a results dict.

    ``transpose=True`` puts the metrics in rows and the models in columns (for narrow
    terminals).
    """
    from rich.table import Table
    from rich.text import Text

    k = results["k"]
    data = results["dataset"]
    title = (
        f"{results['protocol'].upper()} on {data['name']} ({data['n_users']} users, "
        f"{data['n_items']} items, {data['n_events']} events), "
        f"seeds {','.join(map(str, results['seeds']))}, {results['evaluated_on']} part"
    )
    labels = [f"{label}@{k}" for _, label in _COLUMNS] + ["users", "fit s", "eval s"]
    cells: dict[str, list[Any]] = {}
    for name, agg in results["aggregate"].items():
        row = [stats_cell(agg.get(f"{metric}@{k}")) for metric, _ in _COLUMNS]
        row.append(stats_cell(agg.get("n_users"), 0, spread=False))
        row += [stats_cell(agg.get("fit_time"), 2), stats_cell(agg.get("eval_time"), 2)]
        cells[name] = row
    caption = results.get("description")
    table = Table(title=Text(title), caption=Text(caption) if caption else None)
    if transpose:
        table.add_column("metric", style="bold")
        for name in cells:
            table.add_column(Text(name), justify="right")
        for i, label in enumerate(labels):
            table.add_row(label, *(row[i] for row in cells.values()))
        return table
    table.add_column("model", style="bold")
    for label in labels:
        table.add_column(label, justify="right")
    for name, row in cells.items():
        table.add_row(Text(name), *row)
    return table


def print_table(results: dict[str, Any], console: Any) -> None:
    """Print :func:`render_table`, transposed when the wide form does not fit the console."""
    from rich.measure import Measurement

    table = render_table(results)
    needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if needed > console.width:
        table = render_table(results, transpose=True)
    console.print(table)
