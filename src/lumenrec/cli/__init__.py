"""The ``lumenrec`` command line: datasets, evaluate, demo, encode, train, serve, recommend,
ope, report, forget, users (Typer)."""

from __future__ import annotations

from typing import Annotated

import typer

from lumenrec.cli.datasets import datasets_command
from lumenrec.cli.demo import DEMO_HELP, demo_command
from lumenrec.cli.encode import ENCODE_HELP, encode
from lumenrec.cli.evaluate import _HELP as _EVALUATE_HELP
from lumenrec.cli.evaluate import evaluate_command
from lumenrec.cli.forget import FORGET_HELP, forget_command
from lumenrec.cli.ope import OPE_HELP, ope_command
from lumenrec.cli.recommend import RECOMMEND_HELP, recommend_command
from lumenrec.cli.report import REPORT_HELP, report_command
from lumenrec.cli.serve import SERVE_HELP, serve_command
from lumenrec.cli.train import TRAIN_HELP, train_command
from lumenrec.cli.users import USERS_HELP, users_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="lumenrec",
    help="LumenRec: a recommender engine with honest, reproducible evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from lumenrec import __version__

        typer.echo(f"lumenrec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """LumenRec: a recommender engine with honest, reproducible evaluation.

    Every command takes -v/-q for more or less logging and --debug for full tracebacks.
    Exit codes: 0 success, 2 usage or data error, 1 internal error.
    """


app.command("datasets")(datasets_command)
app.command("evaluate", help=_EVALUATE_HELP)(evaluate_command)
app.command("demo", help=DEMO_HELP)(demo_command)
app.command("encode", help=ENCODE_HELP)(encode)
app.command("train", help=TRAIN_HELP)(train_command)
app.command("serve", help=SERVE_HELP)(serve_command)
app.command("recommend", help=RECOMMEND_HELP)(recommend_command)
app.command("ope", help=OPE_HELP)(ope_command)
app.command("report", help=REPORT_HELP)(report_command)
app.command("forget", help=FORGET_HELP)(forget_command)
app.add_typer(users_app, name="users", help=USERS_HELP)


def main() -> None:
    """Console-script entry point (``lumenrec = "lumenrec.cli:main"``)."""
    app()
