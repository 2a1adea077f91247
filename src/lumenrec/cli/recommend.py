"""``lumenrec recommend``: one user's list from a model directory, each item with its reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lumenrec.cli._common import DebugOpt, QuietOpt, VerboseOpt, cli_errors, configure_logging
from lumenrec.errors import ConfigError

__all__ = ["RECOMMEND_HELP", "recommend_command"]

RECOMMEND_HELP = "\n\n".join(
    [
        "Recommend for one user from a model directory (the current version of a "
        "`lumenrec train` registry), with a reason for every item: the history items or the "
        "words that contribute most, and one sentence.",
        "With --db (the event store of `lumenrec serve`) the user's recent feedback is folded "
        "in and their 'not interested' choices and personalisation switch are honoured, as on "
        "the service. --rerank applies re-rankers with weights in [0, 1], e.g. "
        "'mmr=0.3,calibration=0.5,provider=0.2'.",
        "Example: lumenrec recommend --model-dir models/ --user 196 --k 10 --json",
    ]
)


def recommend_command(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="Model directory written by `lumenrec train`.")
    ],
    user: Annotated[str, typer.Option("--user", "-u", help="External user id.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="List length.")] = 10,
    rerank: Annotated[
        str | None,
        typer.Option("--rerank", help="Re-rankers, e.g. 'mmr=0.3,calibration=0.5'."),
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Event store: feedback, profile, user controls.")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="Profile text for a user the model lacks.")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Model version (default: current).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Print ``user``'s top-``k`` (see :data:`RECOMMEND_HELP`)."""
    configure_logging(verbose, quiet)
    with cli_errors(debug):
        from lumenrec._post_rank import parse_chain
        from lumenrec.serving.registry import ModelRegistry

        if not model_dir.is_dir():
            msg = f"--model-dir {model_dir} is not a directory; train one with `lumenrec train`"
            raise ConfigError(msg)
        chain = parse_chain(rerank)
        registry = ModelRegistry(model_dir)
        if version is None and registry.current() is None:
            msg = f"--model-dir {model_dir} holds no model version; run `lumenrec train --out`"
            raise ConfigError(msg)
        pipeline = registry.load(version)
        context = _store_context(db, pipeline, user) if db is not None else {}
        ranked = pipeline.recommend(
            user,
            k,
            history=context.get("history"),
            profile=context.get("profile") or profile,
            forget=bool(context.get("deleted")),
            rerank=chain,
            controls=context.get("controls"),
        )
        result: dict[str, Any] = {
            "user_id": user,
            "model_version": pipeline.version,
            "fallback": ranked.fallback,
            "fold_in": ranked.fold_in,
            "items": ranked.items,
        }
        if ranked.rerank is not None:
            result["rerank"] = ranked.rerank
        if json_out:
            typer.echo(json.dumps(result, ensure_ascii=False))
        else:
            _print_table(result, pipeline)


def _store_context(db: Path, pipeline: Any, user: str) -> dict[str, Any]:
    from lumenrec.serving.store import EventStore

    if not db.is_file():
        msg = f"no event store at {db}; pass the --db file that `lumenrec serve` uses"
        raise ConfigError(msg)
    store = EventStore(db)
    try:
        history, profile, deleted = store.user_context(
            user, after_seq=pipeline.events_watermark, limit=200, deleted_since=pipeline.trained_at
        )
        controls = store.user_controls(user)
    finally:
        store.close()
    return {"history": history, "profile": profile, "deleted": deleted, "controls": controls}


def _print_table(result: dict[str, Any], pipeline: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    from lumenrec.cli._common import out_console

    explainer = pipeline.explainer()
    title = f"user {result['user_id']} · model {result['model_version']}"
    if result["fallback"]:
        title += f" · {result['fallback']} fallback"
    table = Table(title=title)
    for col in ("rank", "item", "score", "route", "why"):
        table.add_column(col)
    for entry in result["items"]:
        idx = int(pipeline.items.index([entry["item_id"]], missing="ignore")[0])
        label = explainer.label(idx) if idx >= 0 else entry["item_id"]
        reason = entry.get("reason") or {}
        table.add_row(
            str(entry["rank"]),
            Text(label),
            f"{entry['score']:.4f}",
            entry["route"],
            Text(reason.get("sentence", "")),
        )
    out = out_console()
    out.print(table)
    if result.get("rerank") and not result["rerank"]["feasible"]:
        out.print(Text("re-ranking: " + "; ".join(result["rerank"]["notes"])))
