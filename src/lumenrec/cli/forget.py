"""``lumenrec forget``: erase a user from the models (unlearning) and, with --db, the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lumenrec.cli._common import DebugOpt, QuietOpt, VerboseOpt, cli_errors, configure_logging

__all__ = ["FORGET_HELP", "forget_command"]

FORGET_HELP = "\n\n".join(
    [
        "Erase a user and their effect on the model: publish a new model version without them.",
        "The current version is loaded, the user is forgotten inside the model — exactly for "
        "popularity, ItemKNN, EASE and the content model (scores equal a retrain without the "
        "user), an exact item refit for ALS, and marked pending_retrain for neural/SGD models, "
        "whose per-user rows are dropped at once — and published as the next version; the "
        "superseded version is deleted and older versions that hold the user are rewritten "
        "without them. With --db the user's events and profile are erased from the store as "
        "`lumenrec users delete` does. An audit record without personal data (salted hash of "
        "the id, time, changed artifacts, new version) is printed and appended to "
        "MODEL_DIR/erasure-audit.jsonl.",
        "Example: lumenrec forget --model-dir models/ --user u42 --db events.sqlite --json",
    ]
)


def forget_command(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="Model registry written by `lumenrec train`.")
    ],
    user: Annotated[str, typer.Option("--user", help="The external user id to erase.")],
    db: Annotated[
        Path | None,
        typer.Option("--db", help="SQLite event store of the service: erase the user there too."),
    ] = None,
    older: Annotated[
        str,
        typer.Option(
            "--older", help="Older versions holding the user: 'rewrite' them or 'delete' them."
        ),
    ] = "rewrite",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the audit record as one JSON object on stdout.")
    ] = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Erase ``user`` from ``--model-dir`` (and ``--db``); see :data:`FORGET_HELP`."""
    configure_logging(verbose, quiet)
    with cli_errors(debug):
        from lumenrec.cli.users import _check_user_id
        from lumenrec.privacy.forget import forget_user

        _check_user_id(user)
        record = forget_user(model_dir, user, db=db, older=older)
        if json_out:
            typer.echo(json.dumps(record, sort_keys=True))
        elif not quiet:
            from lumenrec.cli._common import err_console

            lines = [
                f"erased user (hash {record['user_hash'][:12]}…): model {record['model_version']}"
                f" ({record['model_effect']})"
            ]
            lines += [f"  {c['artifact']}: {c['action']}" for c in record["artifacts_changed"]]
            if record["pending_retrain"]:
                lines.append(
                    "  the model's weights still hold the user's influence: retrain by "
                    f"{record['pending_retrain']['retrain_due_by']}"
                )
            err_console().print("\n".join(lines), markup=False)
