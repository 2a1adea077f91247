"""``lumenrec serve``: run the HTTP service (uvicorn, one worker) with JSON log lines on stderr."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from lumenrec.cli._common import DebugOpt, QuietOpt, VerboseOpt, cli_errors
from lumenrec.errors import ConfigError, missing_dependency

__all__ = ["SERVE_HELP", "JsonFormatter", "read_config", "serve_command"]

log = logging.getLogger(__name__)

SERVE_HELP = "\n\n".join(
    [
        "Serve recommendations over HTTP from a model directory written by `lumenrec train`.",
        "Reads are open; writes (feedback, items, users, deletions, admin) need the key from "
        "LUMENREC_API_KEY sent as the X-API-Key header. Binding to an address other than "
        "127.0.0.1 without a key is refused. Other settings come from LUMENREC_* variables "
        "(e.g. LUMENREC_RATE_LIMIT, LUMENREC_STORE_SYNCHRONOUS) or a TOML file given with "
        "--config (same names in lower case; options beat variables, which beat the file). "
        "API docs: http://HOST:PORT/docs.",
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


#: settings that hold a plain secret: a config file holding one must be mode 0600 or stricter
_SECRET_KEYS = ("api_key", "read_api_key")
#: relative paths in a config file are taken relative to the file's directory
_PATH_KEYS = ("model_dir", "db")


def read_config(path: Path) -> dict[str, Any]:
    """Read a ``--config`` TOML file into ``ServiceSettings`` keyword arguments.

    Keys are the :class:`~lumenrec.serving.settings.ServiceSettings` field names (the
    ``LUMENREC_*`` variables without the prefix, in lower case), at the top level or under a
    ``[serve]`` table. Relative ``model_dir`` and ``db`` are resolved against the file's
    directory.

    Raises
    ------
    ConfigError
        Missing or unreadable file, invalid TOML, unknown keys, or a file holding a plain API
        key that other users can read (its mode must be 0600 or stricter).
    """
    import stat
    import tomllib

    from lumenrec.serving.settings import ServiceSettings

    if not path.is_file():
        msg = f"--config {path} does not exist or is not a file"
        raise ConfigError(msg)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        msg = f"--config {path} is not valid TOML ({err})"
        raise ConfigError(msg) from err
    if isinstance(data.get("serve"), dict):
        data = {**{k: v for k, v in data.items() if k != "serve"}, **data["serve"]}
    known = set(ServiceSettings.model_fields)
    unknown = sorted(set(data) - known)
    if unknown:
        msg = (
            f"--config {path}: unknown setting(s) {unknown}; valid keys are the "
            f"ServiceSettings fields: {', '.join(sorted(known))}"
        )
        raise ConfigError(msg)
    mode = stat.S_IMODE(path.stat().st_mode)
    secrets = [k for k in _SECRET_KEYS if str(data.get(k) or "").strip()]
    if mode & 0o077:
        if secrets:
            msg = (
                f"refusing to start: --config {path} holds {secrets[0]} but its mode is "
                f"{mode:04o}, so other users can read it; run `chmod 600 {path}` (mode 0600 "
                "or stricter) or move the key to LUMENREC_API_KEY"
            )
            raise ConfigError(msg)
        log.warning("--config %s has mode %04o; 0600 is recommended", path, mode)
    for key in _PATH_KEYS:
        if key in data and isinstance(data[key], str):
            value = Path(data[key]).expanduser()
            data[key] = value if value.is_absolute() else path.parent / value
    return data


def _settings_kwargs(
    config: Path | None, cli: dict[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    """Merge the sources: command-line options > ``LUMENREC_*`` variables > config file.

    ServiceSettings itself ranks keyword arguments above the environment, so a config value is
    passed on only when no variable overrides it.
    """
    values = read_config(config) if config is not None else {}
    env_names = {name.upper() for name in environ}
    values = {k: v for k, v in values.items() if f"LUMENREC_{k.upper()}" not in env_names}
    values.update({k: v for k, v in cli.items() if v is not None})
    return values


def serve_command(
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="Model directory written by `lumenrec train`."),
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="SQLite event store (created when missing).")
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Bind address [default: 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="TCP port [default: 8000].")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of settings (ServiceSettings field names, e.g. db, api_key, "
            "rate_limit). Command-line options beat LUMENREC_* variables, which beat the "
            "file. A file holding api_key must be mode 0600.",
        ),
    ] = None,
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
        cli = {"model_dir": model_dir, "db": db, "host": host, "port": port}
        kwargs = _settings_kwargs(config, cli, os.environ)
        try:
            settings = ServiceSettings(**kwargs)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            if first.get("type") == "missing" and where in ("model_dir", "db"):
                msg = (
                    f"--{where.replace('_', '-')} is required (or {where} in --config, "
                    f"or LUMENREC_{where.upper()})"
                )
            else:
                from_file = config is not None and where in kwargs and cli.get(where) is None
                source = (
                    f"{where} in --config {config}" if from_file else f"LUMENREC_{where.upper()}"
                )
                msg = f"invalid setting {source}: {first.get('msg')}"
            raise ConfigError(msg) from None
        settings.check_bind()
        settings.pseudonymizer()  # pseudonymize without a key: exit 2 before anything starts
        if settings.pseudonymize and access_log:
            msg = (
                "--access-log would write raw user ids (request paths hold them); it is refused "
                "while pseudonymisation is on"
            )
            raise ConfigError(msg)
        model_dir, host, port = settings.model_dir, settings.host, settings.port
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
