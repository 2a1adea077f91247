"""``lumenrec evaluate --dataset coat --protocol p5``: the debiasing protocol's table and JSON.

Called by :mod:`lumenrec.cli.evaluate` inside its ``cli_errors`` block, so a
:class:`~lumenrec.errors.LumenError` (missing Coat files, unknown model) becomes the usual
one-line ``error:`` and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lumenrec.cli._common import err_console, out_console

__all__ = ["render_p5_table", "run_p5_command"]

_METRICS = {
    "binary": (("auc", "AUC"), ("ndcg@5", "NDCG@5"), ("recall@5", "Recall@5")),
    "rating": (("mse", "MSE"), ("mae", "MAE")),
}


def _anchor_text(anchor: dict[str, Any] | None, metric: str) -> str:
    value = (anchor or {}).get(metric)
    if value is None:
        return "–"
    if isinstance(value, list):
        lo, hi = value
        return f"{lo:.3f}" if lo == hi else f"{lo:.3f}–{hi:.3f}"
    return f"{value:.3f}"


def render_p5_table(results: dict[str, Any]) -> Any:
    """A rich Table: one row per model, mean ± std over seeds beside the published anchors."""
    from rich.table import Table
    from rich.text import Text

    task = results.get("task", "binary")
    metrics = _METRICS[task]
    data = results["dataset"]
    title = (
        f"P5 on Coat ({data['n_train']} MNAR train ratings; reported MAR test "
        f"{data['n_test_reported']} pairs, {data['n_valid_heldout']} held out for validation "
        f"and P(y)), labels rating >= {results['threshold']}"
        if task == "binary"
        else f"P5 rating variant on Coat (MSE/MAE on {data['n_test_reported']} MAR test ratings)"
    )
    table = Table(
        title=Text(title),
        caption=Text(f"seeds {','.join(map(str, results['seeds']))}; anchor = published"),
    )
    table.add_column("model", style="bold")
    for _, label in metrics:
        table.add_column(label, justify="right")
        table.add_column("anchor", justify="right", style="dim")
    table.add_column("fit s", justify="right")
    anchors = results.get("anchors") or {}
    for name, agg in results["aggregate"].items():
        row: list[Any] = [Text(name)]
        for key, _ in metrics:
            stats = agg.get(key) or {}
            cell = Text(f"{stats['mean']:.4f}") if stats.get("mean") is not None else Text("–")
            if stats.get("std") is not None:
                cell.append(f" ± {stats['std']:.4f}", style="dim")
            row += [cell, _anchor_text(anchors.get(name), key)]
        row.append(f"{agg['fit_time']['mean']:.1f}")
        table.add_row(*row)
    return table


def run_p5_command(
    models: list[str],
    seeds: list[int],
    json_out: Path | None,
    data_dir: Path | None,
) -> None:
    """Run :func:`lumenrec.evaluation.p5.run_p5`, print its table, write its JSON.

    Parameters
    ----------
    models : list of str
        ``mf``, ``mf-ips``, ``mf-snips``, ``mf-dr``.
    seeds : list of int
    json_out : Path, optional
        Where to write the results JSON; ``-`` writes it to stdout instead of the table.
    data_dir : Path, optional
        Folder holding ``coat/`` (default: ``$LUMENREC_DATA_DIR`` / ``~/.lumenrec/data``).
    """
    from lumenrec.evaluation.p5 import run_p5
    from lumenrec.evaluation.runner import write_results

    results = run_p5(models, seeds, data_dir=data_dir, progress=sys.stderr.isatty())
    to_stdout = json_out is not None and str(json_out) == "-"
    text = write_results(results, json_out) if json_out is not None else ""
    if to_stdout:
        sys.stdout.write(text)
        return
    out_console().print(render_p5_table(results))
    if json_out is not None:
        err_console().print(f"wrote {json_out}", markup=False)
