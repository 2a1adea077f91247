"""``lumenrec datasets``: list the built-in datasets and whether their files are present."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lumenrec.cli._common import (
    DebugOpt,
    QuietOpt,
    VerboseOpt,
    cli_errors,
    configure_logging,
    out_console,
)

__all__ = ["dataset_rows", "datasets_command"]


def dataset_rows(data_dir: Path | None = None) -> list[dict[str, Any]]:
    """``[{name, description, present, path, missing}]`` for every built-in dataset."""
    from lumenrec.datasets import available

    return [
        {
            "name": info.name,
            "description": info.description,
            "present": bool(info.present),
            "path": str(info.path),
            "missing": list(info.missing),
        }
        for info in available(data_dir)
    ]


def datasets_command(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Folder with one sub-folder per dataset "
            "(default: $LUMENREC_DATA_DIR, else ~/.lumenrec/data).",
        ),
    ] = None,
    json_flag: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of a table.")
    ] = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List built-in datasets and whether their files are present in the data directory."""
    configure_logging(verbose, quiet)
    with cli_errors(debug):
        rows = dataset_rows(data_dir)
        if json_flag:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.table import Table
        from rich.text import Text

        from lumenrec.datasets import resolve_data_dir

        table = Table(title=Text(f"Built-in datasets in {resolve_data_dir(data_dir)}"))
        table.add_column("name", style="bold")
        table.add_column("present")
        table.add_column("description")
        for row in rows:
            present = "yes" if row["present"] else "no"
            table.add_row(Text(row["name"]), present, Text(row["description"]))
        out_console().print(table)
