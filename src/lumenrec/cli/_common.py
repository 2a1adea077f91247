"""Shared CLI plumbing: logging set-up, the error → exit-code policy, consoles and option parsers.

Exit codes (SERVICE.md): 0 success; 2 usage or data errors (any :class:`LumenError`), printed as
one ``error: ...`` line on stderr, with the traceback only under ``--debug``; 1 for anything
unexpected, always with the traceback.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from lumenrec.errors import ConfigError, LumenError

__all__ = [
    "DebugOpt",
    "QuietOpt",
    "VerboseOpt",
    "cli_errors",
    "configure_logging",
    "err_console",
    "out_console",
    "parse_names",
    "parse_params",
    "parse_seeds",
]

VerboseOpt = Annotated[
    int,
    typer.Option(
        "--verbose", "-v", count=True, help="More log output: -v for INFO, -vv for DEBUG."
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors; no progress bars.")]
DebugOpt = Annotated[
    bool, typer.Option("--debug", help="Show full tracebacks for data and usage errors.")
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Where built-in datasets are stored.")
]
ColUserOpt = Annotated[str, typer.Option("--col-user", help="User id column.")]
ColItemOpt = Annotated[str, typer.Option("--col-item", help="Item id column.")]
ColRatingOpt = Annotated[str, typer.Option("--col-rating", help="Rating column ('' to ignore).")]
ColTimestampOpt = Annotated[
    str, typer.Option("--col-timestamp", help="Timestamp column ('' to ignore).")
]

_HANDLER_TAG = "_lumenrec_cli_handler"


def out_console() -> Any:
    """A rich Console on stdout (wide when not a terminal, so tables are not squeezed)."""
    from rich.console import Console

    wide = None if sys.stdout.isatty() else 200
    return Console(width=wide, highlight=False, soft_wrap=False)


def err_console() -> Any:
    """A rich Console on stderr."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def configure_logging(verbose: int = 0, quiet: bool = False) -> int:
    """Attach one rich handler on stderr to the ``lumenrec`` logger and set its level.

    WARNING by default, INFO with ``-v``, DEBUG with ``-vv``, ERROR with ``-q``. The root
    logger is left alone; calling this again replaces the handler instead of adding one.

    Returns
    -------
    int
        The logging level that was set.
    """
    from rich.logging import RichHandler

    if quiet:
        level = logging.ERROR
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logger = logging.getLogger("lumenrec")
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_TAG, False):
            logger.removeHandler(handler)
    handler = RichHandler(
        console=err_console(), show_path=level <= logging.DEBUG, rich_tracebacks=False
    )
    setattr(handler, _HANDLER_TAG, True)
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)
    return level


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"error: {text}"


@contextmanager
def cli_errors(debug: bool = False) -> Iterator[None]:
    """Map exceptions raised by a command body to exit codes (see module docstring)."""
    try:
        yield
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except LumenError as err:
        if debug:
            traceback.print_exc(file=sys.stderr)
        click.echo(_one_line(err), err=True)
        raise typer.Exit(2) from None
    except Exception as err:
        traceback.print_exc(file=sys.stderr)
        click.echo(
            f"internal error ({type(err).__name__}); please report it with the traceback above",
            err=True,
        )
        raise typer.Exit(1) from None


def parse_names(text: str, what: str) -> list[str]:
    """Split a comma-separated list; empty items are dropped."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        msg = f"{what} is empty; give a comma-separated list"
        raise ConfigError(msg)
    return names


def parse_seeds(text: str) -> list[int]:
    """Parse ``--seeds``: comma-separated non-negative ints and ranges (``0,1,2`` or ``0-4``)."""
    seeds: list[int] = []
    hint = "expected comma-separated non-negative integers such as 0,1,2 or a range 0-4"
    for part in (p.strip() for p in text.split(",")):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            msg = f"bad --seeds {text!r}: {part!r} is not a seed; {hint}"
            raise ConfigError(msg)
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            msg = f"bad --seeds {text!r}: the range {part!r} is empty; {hint}"
            raise ConfigError(msg)
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        msg = f"bad --seeds {text!r}: seeds repeat; each seed must appear once"
        raise ConfigError(msg)
    return seeds


def _parse_value(raw: str) -> Any:
    text = raw.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_params(text: str | None, models: list[str]) -> dict[str, dict[str, Any]]:
    """Parse ``--params 'ease.regularization=300,als.n_factors=128'`` into per-model dicts.

    Values become bool (true/false), None (none/null), int or float where they parse, else str.
    Every prefix must be one of ``models``.
    """
    out: dict[str, dict[str, Any]] = {name: {} for name in models}
    if not text or not text.strip():
        return out
    for item in (p.strip() for p in text.split(",") if p.strip()):
        key, eq, value = item.partition("=")
        model, dot, param = key.strip().partition(".")
        model = model.lower()
        if not eq or not dot or not model or not param:
            msg = (
                f"bad --params entry {item!r}; expected MODEL.PARAM=VALUE, "
                "e.g. ease.regularization=300"
            )
            raise ConfigError(msg)
        if model not in out:
            msg = (
                f"--params entry {item!r} is for model {model!r}, which is not in "
                f"--models ({', '.join(models)})"
            )
            raise ConfigError(msg)
        out[model][param.strip()] = _parse_value(value)
    return out
