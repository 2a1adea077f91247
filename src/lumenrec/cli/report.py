"""``lumenrec report``: one self-contained HTML page from results JSON files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lumenrec.cli._common import (
    DebugOpt,
    QuietOpt,
    VerboseOpt,
    cli_errors,
    configure_logging,
    err_console,
)

__all__ = ["REPORT_HELP", "report_command"]

REPORT_HELP = "\n\n".join(
    [
        "Write an HTML evaluation report from results JSON files.",
        "Reads what `lumenrec evaluate --json` and benchmarks/ write (benchmarks/results/*.json) "
        "and renders one self-contained page: results beside the published anchors of the same "
        "protocol, mean ± std over seeds, a paired test of the best model against the "
        "runner-up, beyond-accuracy metrics and plots (NDCG@k over k, the long tail, user "
        "groups, trade-off curves, cold vs warm, off-policy estimates, privacy-utility, "
        "training curves) as inline SVG. The page loads nothing from anywhere: it opens "
        "offline from disk. Needs matplotlib (pip install 'lumenrec[report]').",
        "Exit codes: 0 success, 2 bad input (a missing file or one that is not a LumenRec "
        "results file: one 'error:' line naming it), 1 internal error.",
    ]
)


def report_command(
    results: Annotated[
        list[Path],
        typer.Argument(help="Results JSON files (lumenrec evaluate --json, benchmarks/results)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the HTML page.")] = Path(
        "report.html"
    ),
    title: Annotated[
        str, typer.Option("--title", help="Page title.")
    ] = "LumenRec evaluation report",
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Render results files as one self-contained HTML page (help: :data:`REPORT_HELP`)."""
    configure_logging(verbose, quiet)
    with cli_errors(debug):
        from lumenrec.report import write_report

        path = write_report(results, out, title=title)
        if not quiet:
            err_console().print(f"wrote {path}", markup=False)
