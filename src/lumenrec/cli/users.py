"""``lumenrec users delete``: erase a user from the event store (GDPR Art. 17), as ``DELETE /users``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lumenrec.cli._common import DebugOpt, QuietOpt, VerboseOpt, cli_errors, configure_logging
from lumenrec.errors import ConfigError, missing_dependency

__all__ = ["USERS_HELP", "delete_user_command", "rekey_command", "users_app"]

USERS_HELP = "Manage users of a service's event store (erasure)."
DELETE_HELP = "\n\n".join(
    [
        "Erase a user: the same erasure as DELETE /users/{id} on a running service.",
        "Their events and profile are deleted from the SQLite store (rows overwritten, WAL "
        "checkpointed) and an audit row keeps only a salted hash of the id and the time. A "
        "server running on the same --db drops its cached lists for the user at its next "
        "request and stops using the user's trained vector and fold-in history at once; the "
        "vector itself leaves the model files at the next `lumenrec train` or POST "
        "/admin/retrain. Repeating the command is harmless.",
        "With --model-dir the output also says whether the current model version was trained "
        "on the user (so a retrain is due). Example: lumenrec users delete u42 --db events.sqlite "
        "--model-dir models/",
    ]
)

users_app = typer.Typer(help=USERS_HELP, no_args_is_help=True)


def _check_user_id(user_id: str) -> str:
    from lumenrec.serving.schemas import ID_MAX

    if not 1 <= len(user_id) <= ID_MAX or not user_id.isprintable() or "\ufffd" in user_id:
        msg = f"user_id must be 1–{ID_MAX} printable characters (got {len(user_id)} characters)"
        raise ConfigError(msg)
    return user_id


def delete_user_command(
    user_id: Annotated[str, typer.Argument(help="The external user id to erase.")],
    db: Annotated[Path, typer.Option("--db", help="SQLite event store of the service.")],
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="Model directory: report whether a retrain is due."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")
    ] = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Erase ``user_id`` from ``--db`` (see :data:`DELETE_HELP`)."""
    configure_logging(verbose, quiet)
    with cli_errors(debug):
        try:
            from lumenrec.serving.store import EventStore
        except ImportError as err:
            raise missing_dependency(err.name or "fastapi", "serve") from err
        _check_user_id(user_id)
        if not db.is_file():
            msg = f"no event store at {db}; pass the --db file that `lumenrec serve` uses"
            raise ConfigError(msg)
        trained_on = _trained_on(model_dir, user_id) if model_dir is not None else None
        store = EventStore(db)
        try:
            had_profile = store.has_profile(user_id)
            n_events = store.delete_user(user_id)
        finally:
            store.close()
        result: dict[str, Any] = {
            "user_id": user_id,
            "events_deleted": n_events,
            "profile_deleted": had_profile,
            "audit_row": True,
        }
        if trained_on is not None:
            result.update(trained_on)
        if json_out:
            typer.echo(json.dumps(result))
        elif not quiet:
            from lumenrec.cli._common import err_console

            lines = [
                f"erased user {user_id!r}: {n_events} events" + (", profile" if had_profile else "")
            ]
            if trained_on and trained_on["in_model"]:
                lines.append(
                    f"model {trained_on['model_version']} was trained on this user: their vector "
                    "is masked while serving; run `lumenrec train` (or POST /admin/retrain) to "
                    "remove it from the model files"
                )
            err_console().print("\n".join(lines), markup=False)


def _trained_on(model_dir: Path, user_id: str) -> dict[str, Any]:
    """Whether the current model version of ``model_dir`` holds a trained row for the user."""
    from lumenrec.serving.registry import ModelRegistry

    if not model_dir.is_dir():
        msg = f"--model-dir {model_dir} is not a directory"
        raise ConfigError(msg)
    registry = ModelRegistry(model_dir)
    version = registry.current()
    if version is None:
        return {"model_version": None, "in_model": False, "retrain_due": False}
    pipeline = registry.load(version)
    present = user_id in pipeline.users
    return {"model_version": version, "in_model": present, "retrain_due": present}


users_app.command("delete", help=DELETE_HELP)(delete_user_command)


NEW_KEY_ENV = "LUMENREC_PSEUDONYM_NEW_KEY"
REKEY_HELP = "\n\n".join(
    [
        "Re-key pseudonymised user ids: every listed user's pseudonym under the old HMAC key "
        "(LUMENREC_PSEUDONYM_KEY) becomes the one under the new key (LUMENREC_PSEUDONYM_NEW_KEY), "
        "in the event store (one transaction) and in a republished current model version.",
        "An HMAC cannot be inverted, so the raw ids come from your system of record: --ids FILE "
        "holds one external id per line. Afterwards run the service with the new key and "
        "destroy the old one. Example: lumenrec users rekey --ids users.txt --db events.sqlite "
        "--model-dir models/",
    ]
)


def rekey_command(
    ids: Annotated[Path, typer.Option("--ids", help="File with one external user id per line.")],
    db: Annotated[Path | None, typer.Option("--db", help="The service's event store.")] = None,
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Model registry to republish.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Move pseudonyms from the old key to the new one (see :data:`REKEY_HELP`)."""
    import os

    configure_logging(verbose, quiet)
    with cli_errors(debug):
        from lumenrec.privacy.ids import Pseudonymizer

        try:
            from lumenrec.serving.rekey import rekey
        except ImportError as err:
            raise missing_dependency(err.name or "fastapi", "serve") from err
        if not ids.is_file():
            msg = f"--ids {ids} does not exist (one external user id per line)"
            raise ConfigError(msg)
        new_key = os.environ.get(NEW_KEY_ENV, "")
        if not new_key.strip():
            msg = "set LUMENREC_PSEUDONYM_NEW_KEY to the new key (and LUMENREC_PSEUDONYM_KEY to the old)"
            raise ConfigError(msg)
        old = Pseudonymizer.from_env()
        new = Pseudonymizer.from_secret(new_key.strip())
        raw = [
            line.strip() for line in ids.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        result = rekey(db, model_dir, raw, old, new)
        if json_out:
            typer.echo(json.dumps(result))
        elif not quiet:
            from lumenrec.cli._common import err_console

            err_console().print(f"re-keyed {result['ids']} ids: {result}", markup=False)


users_app.command("rekey", help=REKEY_HELP)(rekey_command)
