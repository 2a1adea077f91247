"""``lumenrec serve``: run the HTTP service (uvicorn, one worker) with JSON log lines on stderr."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from lumenrec.cli._common import DebugOpt, QuietOpt, VerboseOpt, cli_errors
from lumenrec.errors import ConfigError, missing_dependency

__all__ = ["SERVE_HELP", "JsonFormatter", "serve_command"]

log = logging.getLogger(__name__)

SERVE_HELP = "\n\n".join(
    [
        "Serve recommendations over HTTP from a model directory written by `lumenrec train`.",
        "Reads are open; writes (feedback, items, users, deletions, admin) need the key from "
        "LUMENREC_API_KEY sent as the X-API-Key header. Binding to an address other than "
        "127.0.0.1 without a key is refused. Other settings come from LUMENREC_* variables "
        "(e.g. LUMENREC_RATE_LIMIT, LUMENREC_STORE_SYNCHRONOUS). API docs: http://HOST:PORT/docs.",
    ]
)
_HANDLER_TAG = "_lumenrec_json_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` (+ ``exc``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_json_logging(level: int) -> None:
    """JSON lines on stderr for the ``lumenrec`` and ``uvicorn`` loggers (service entry only)."""
    for name in ("lumenrec", "uvicorn"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if getattr(handler, _HANDLER_TAG, False) or name == "lumenrec":
                logger.removeHandler(handler)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        setattr(handler, _HANDLER_TAG, True)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


def serve_command(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="Model directory written by `lumenrec train`.")
    ],
    db: Annotated[Path, typer.Option("--db", help="SQLite event store (created when missing).")],
    host: Annotated[str, typer.Option("--host", help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (paths hold user ids).")
    ] = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run the service (see :data:`SERVE_HELP`)."""
    level = logging.ERROR if quiet else {0: logging.INFO}.get(verbose, logging.DEBUG)
    with cli_errors(debug):
        try:
            import uvicorn
            from pydantic import ValidationError

            from lumenrec.serving import ModelRegistry, ServiceSettings, create_app
        except ImportError as err:
            raise missing_dependency(err.name or "fastapi", "serve") from err
        try:
            settings = ServiceSettings(model_dir=model_dir, db=db, host=host, port=port)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            msg = f"invalid setting LUMENREC_{where.upper()}: {first.get('msg')}"
            raise ConfigError(msg) from None
        settings.check_bind()
        registry = ModelRegistry(model_dir)
        if registry.current() is None:
            msg = f"no model in {model_dir}; publish one first: lumenrec train --out {model_dir}"
            raise ConfigError(msg)
        pipeline = registry.load()  # a corrupt or incompatible model: exit 2 before binding
        configure_json_logging(level)
        app = create_app(settings, pipeline=pipeline)
        log.info("serving on http://%s:%d (API docs at /docs)", host, port)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=access_log,
            server_header=False,
            workers=1,
        )
