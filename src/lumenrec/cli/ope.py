"""``lumenrec ope``: off-policy estimates of a target policy from a log file or the service store."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from lumenrec.cli._common import (
    DebugOpt,
    QuietOpt,
    VerboseOpt,
    cli_errors,
    configure_logging,
    err_console,
    out_console,
    parse_names,
)
from lumenrec.errors import ConfigError, DataError

__all__ = ["OPE_HELP", "ope_command", "run_ope"]

OPE_HELP = "\n\n".join(
    [
        "Estimate a target policy's value from logged bandit feedback (off-policy evaluation).",
        "Prints each estimate with its 95% confidence interval (normal, or bootstrap percentile "
        "with --bootstrap N), standard error and effective sample size. Estimators: dm, ips, "
        "snips, dr, sndr, switch-dr, dr-os (lambda by SLOPE), iips (slate; lumenrec format with "
        "--col-slate).",
        "--format obd: an Open Bandit Dataset CSV (its item_context.csv beside it); targets "
        "'bts' (production Thompson sampling with the published prior) and 'random'. "
        "--format lumenrec: item_id, position (0-based), reward, propensity columns; target "
        "'random' (uniform over the logged items). --ground-truth FILE: the target policy's own "
        "log; its mean reward is the truth and the relative error is added.",
        "Exit codes: 0 success, 2 bad input (one 'error:' line; --debug adds the traceback), "
        "1 internal error.",
    ]
)
_TARGETS = {"obd": ("bts", "random"), "lumenrec": ("random",)}


def _detect_format(path: Path) -> str:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    return "obd" if "propensity_score" in header and "click" in header else "lumenrec"


def _obd_root(path: Path) -> Path | None:
    """``<root>`` of ``<root>/{random,bts}/<campaign>/<campaign>.csv`` when laid out so."""
    parents = path.resolve().parents
    return parents[2] if len(parents) > 2 and (parents[2] / "derived").is_dir() else None


def _load(path: Path, fmt: str, cols: dict[str, str]) -> tuple[Any, str]:
    from lumenrec.explore.ope import BanditLog

    if not path.is_file():
        msg = f"log file {str(path)!r} not found"
        raise DataError(msg)
    if fmt == "obd":
        from lumenrec.datasets.open_bandit import read_obd_file

        stem = path.stem if path.stem in ("all", "men", "women") else "all"
        return read_obd_file(path).log, stem
    return BanditLog.from_frame(path, **cols), ""


def _target(spec: str, fmt: str, log: Any, path: Path, campaign: str, n_sim: int) -> Any:
    from lumenrec.datasets.open_bandit import bts_action_dist, random_action_dist

    name = spec.strip().lower()
    if name not in _TARGETS[fmt]:
        msg = f"unknown --target {spec!r} for --format {fmt}; valid: {', '.join(_TARGETS[fmt])}"
        raise ConfigError(msg)
    if name == "random":
        return random_action_dist(log.n_actions, log.n_positions)
    root = _obd_root(path)
    dist = bts_action_dist(campaign, root, n_sim=None if root else n_sim)
    if dist.shape != (log.n_actions, log.n_positions):
        msg = f"the {campaign!r} BTS prior has {dist.shape[0]} items but the log {log.n_actions}"
        raise DataError(msg)
    return dist


def _truth(path: Path, fmt: str, cols: dict[str, str]) -> float:
    log, _ = _load(path, fmt, cols)
    return float(log.reward.mean())


def _store_log(db: Path, target: str, seed: int) -> tuple[Any, Any]:
    """The service store's explored lists as a log, and ``target``'s propensities over the
    same logged candidates (:func:`lumenrec.explore.store_log.log_from_impressions`)."""
    from lumenrec.explore.store_log import log_from_impressions

    if not db.is_file():
        msg = f"no event store at {db}; pass the --db file that `lumenrec serve` uses"
        raise ConfigError(msg)
    try:
        from lumenrec.serving.store import EventStore
    except ImportError as err:
        msg = "--db needs the serve extra: pip install 'lumenrec[serve]'"
        raise ConfigError(msg) from err
    store = EventStore(db)
    try:
        frame = store.impression_log()
    finally:
        store.close()
    return log_from_impressions(frame, target, random_state=seed)


def run_ope(
    *,
    logs: Path | None,
    db: Path | None,
    fmt: str,
    target: str,
    estimators: list[str],
    bootstrap: int = 0,
    ground_truth: Path | None = None,
    reward_model: str = "reference",
    seed: int = 0,
    max_unsupported: float = 0.05,
    n_sim: int = 1_000_000,
    cols: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Everything ``lumenrec ope`` computes, as a JSON-ready dict, and the warnings raised."""
    from lumenrec.explore.ope import estimate

    cols = cols or {}
    if (logs is None) == (db is None):
        msg = "give exactly one of --logs FILE or --db events.db"
        raise ConfigError(msg)
    if db is not None:
        log, dist = _store_log(db, target, seed)
        fmt, source = "store", str(db)
    else:
        assert logs is not None
        fmt = _detect_format(logs) if fmt == "auto" and logs.is_file() else fmt
        if fmt not in _TARGETS:
            msg = f"unknown --format {fmt!r}; valid: obd, lumenrec (or auto)"
            raise ConfigError(msg)
        log, campaign = _load(logs, fmt, cols)
        dist = _target(target, fmt, log, logs, campaign or "all", n_sim)
        source = str(logs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = estimate(log, dist, estimators, reward_model=reward_model, n_bootstrap=bootstrap,
                       random_state=seed, max_unsupported=max_unsupported)  # fmt: skip
    truth = None if ground_truth is None else _truth(ground_truth, fmt, cols)
    out: dict[str, Any] = {"logs": source, "format": fmt, "target": target, "n": log.n,
                           "n_actions": log.n_actions, "n_positions": log.n_positions,
                           "logged_mean_reward": float(log.reward.mean()),
                           "reward_model": reward_model, "truth": truth, "estimates": {}}  # fmt: skip
    for name, est in res.items():
        row = est.to_dict()
        if truth is not None:
            row["relative_error"] = abs(est.value - truth) / truth if truth else None
        out["estimates"][name] = row
    return out, [str(w.message) for w in caught]


def _table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    title = (f"OPE of {result['target']!r} on {result['logs']} ({result['n']} rows, "
             f"{result['n_actions']} actions, {result['n_positions']} positions; logged mean "
             f"{result['logged_mean_reward']:.6g})")  # fmt: skip
    if result["truth"] is not None:
        title += f"; truth {result['truth']:.6g}"
    table = Table(title=title)
    heads = ["estimator", "value", "95% CI", "std err", "ESS", "lambda"]
    if result["truth"] is not None:
        heads.append("rel. error")
    for i, h in enumerate(heads):
        table.add_column(h, justify="left" if i == 0 else "right", style="bold" if i == 0 else None)
    for name, e in result["estimates"].items():
        lam = e.get("lambda")
        cells = [name, f"{e['value']:.6g}", f"[{e['ci_low']:.6g}, {e['ci_high']:.6g}]",
                 f"{e['std_error']:.3g}", f"{e['effective_sample_size']:.0f}",
                 "" if lam is None else str(lam)]  # fmt: skip
        if result["truth"] is not None:
            err = e.get("relative_error")
            cells.append("–" if err is None else f"{err:.3f}")
        table.add_row(*cells)
    return table


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.generic):
        return _finite(obj.item())
    return obj


def ope_command(
    logs: Annotated[Path | None, typer.Option("--logs", help="Log file (CSV/TSV/Parquet).")] = None,
    target: Annotated[str, typer.Option("--target", help="Target policy: bts, random.")] = "random",
    estimators: Annotated[
        str, typer.Option("--estimators", help="Comma-separated estimator names.")
    ] = "dm,ips,snips,dr,sndr,switch-dr,dr-os",
    fmt: Annotated[str, typer.Option("--format", help="obd, lumenrec or auto.")] = "auto",
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples (0 = normal CI).")
    ] = 0,
    ground_truth: Annotated[
        Path | None, typer.Option("--ground-truth", help="The target policy's own log (truth).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="The service's event store.")] = None,
    reward_model: Annotated[
        str, typer.Option("--reward-model", help="reference (obp's) or calibrated.")
    ] = "reference",
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    max_unsupported: Annotated[
        float, typer.Option("--max-unsupported", help="Refuse above this unsupported target mass.")
    ] = 0.05,
    n_sim: Annotated[
        int, typer.Option("--n-sim", help="BTS Monte-Carlo draws (no derived/).")
    ] = 1_000_000,
    col_item: Annotated[str, typer.Option("--col-item")] = "item_id",
    col_position: Annotated[str, typer.Option("--col-position")] = "position",
    col_reward: Annotated[str, typer.Option("--col-reward")] = "reward",
    col_propensity: Annotated[str, typer.Option("--col-propensity")] = "propensity",
    col_slate: Annotated[str, typer.Option("--col-slate", help="Served-list id (iips).")] = "",
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Off-policy evaluation of a target policy on logged bandit feedback."""
    configure_logging(verbose, quiet)
    with cli_errors(debug):
        if bootstrap < 0:
            msg = "--bootstrap must be >= 0"
            raise ConfigError(msg)
        cols = {"action": col_item, "position": col_position, "reward": col_reward,
                "propensity": col_propensity, "slate": col_slate or None}  # fmt: skip
        result, notes = run_ope(
            logs=logs, db=db, fmt=fmt.strip().lower(), target=target,
            estimators=parse_names(estimators, "--estimators"), bootstrap=bootstrap,
            ground_truth=ground_truth, reward_model=reward_model, seed=seed,
            max_unsupported=max_unsupported, n_sim=n_sim, cols=cols,
        )  # fmt: skip
        for note in notes:
            err_console().print(f"[yellow]warning:[/] {note}")
        out_console().print(_table(result))
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(_finite(result), indent=2, allow_nan=False) + "\n")
