"""``lumenrec evaluate``: compare models on a protocol over seeds; table, JSON and saved files."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lumenrec.cli._common import (
    ColItemOpt,
    ColRatingOpt,
    ColTimestampOpt,
    ColUserOpt,
    DataDirOpt,
    DebugOpt,
    QuietOpt,
    VerboseOpt,
    cli_errors,
    configure_logging,
    err_console,
    out_console,
    parse_names,
    parse_params,
    parse_seeds,
)
from lumenrec.cli._evaluate_hooks import GroupBy, SaveHooks
from lumenrec.cli._evaluate_table import print_table, render_table
from lumenrec.cli._registry import MODELS, check_model_names, make_model
from lumenrec.errors import ConfigError

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = ["PROTOCOL_HELP", "evaluate_command", "load_dataset", "print_table", "render_table"]

log = logging.getLogger(__name__)

#: What each protocol of :data:`lumenrec.data.split.PROTOCOLS` does, for ``--help``.
PROTOCOL_HELP: dict[str, str] = {
    "p1": "per-user random 75/25 (Microsoft Recommenders, ML-100K)",
    "p2": "leave-one-out in time order: last item test, second-to-last valid (S3-Rec)",
    "p3": "cold items: 10% of items removed from training, P2 targets (Beauty)",
    "p3-users": "cold users: 10% of users keep only their first event, P2 targets",
    "p4": "ratings >= 3, 10-core, per-user shuffled 80/10/10 (RecBole, ML-1M)",
    "temporal": "global time cut: the last 20% of events by time are test",
}
_TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".txt", ".dat", ".gz")

_HELP = "\n\n".join(
    [
        "Compare models on a published protocol, over several split seeds.",
        "Fits each model on the training part of every seed's split, ranks all items for every "
        "test user (training items masked) and prints mean ± std (ddof 1) over seeds per model.",
        "Protocols: " + "; ".join(f"{name} = {text}" for name, text in PROTOCOL_HELP.items()) + ".",
        "Models: " + ", ".join(f"{n} ({spec.summary})" for n, spec in MODELS.items()) + ".",
        "--save-recs and --save-split accept a {seed} placeholder in the path to write one file "
        "(directory) per seed; without it the recommendations of the LAST seed and the split of "
        "the FIRST seed are written. Together they let anyone recompute the reported metrics "
        "(lumenrec.evaluation.protocol.metrics_from_files).",
        "Exit codes: 0 success, 2 bad input (one 'error:' line; --debug adds the traceback), "
        "1 internal error.",
    ]
)


def _check_protocol(name: str) -> str:
    from lumenrec.data.split import PROTOCOLS as known

    key = name.strip().lower()
    if key not in known:
        msg = f"unknown protocol {name!r}; valid: {', '.join(known)}"
        raise ConfigError(msg)
    return key


def _is_file_spec(spec: str) -> bool:
    path = Path(spec)
    return (
        path.is_file()
        or "/" in spec
        or os.sep in spec
        or any(spec.lower().endswith(s) for s in _TABLE_SUFFIXES)
    )


def load_dataset(
    spec: str,
    *,
    items: Path | None = None,
    data_dir: Path | None = None,
    columns: dict[str, str | None] | None = None,
    download: bool = False,
) -> Dataset:
    """A built-in dataset by name, or an interactions file (CSV/TSV/Parquet) by path."""
    if _is_file_spec(spec):
        from lumenrec.data.io import read_interactions

        return read_interactions(spec, items=items, **dict(columns or {}))
    if items is not None:
        msg = f"--items only applies when --dataset is a file (got the built-in name {spec!r})"
        raise ConfigError(msg)
    from lumenrec.datasets import load

    return load(spec, data_dir=data_dir, download=download)


def evaluate_command(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            "-d",
            help="Built-in dataset name (see `lumenrec datasets`) or an interactions file "
            "(.csv/.tsv/.parquet with user_id,item_id[,rating][,timestamp]).",
        ),
    ],
    protocol: Annotated[
        str, typer.Option("--protocol", "-p", help=f"Split protocol: {', '.join(PROTOCOL_HELP)}.")
    ] = "p1",
    models: Annotated[
        str,
        typer.Option(
            "--models",
            "-m",
            help=f"Comma-separated model names, from: {', '.join(MODELS)}. The default is "
            "the collaborative ones; text models (content, adapter, hybrid) encode the catalogue.",
        ),
    ] = "pop,itemknn,ease,als,bpr",
    params: Annotated[
        str | None,
        typer.Option(
            "--params", help="Model parameters, e.g. 'ease.regularization=300,als.n_factors=128'."
        ),
    ] = None,
    seeds: Annotated[
        str, typer.Option("--seeds", help="Split seeds: comma-separated ints or a range 0-4.")
    ] = "0",
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Main cut-off for the table.")] = 10,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write the full results as JSON to this file ('-': stdout)."),
    ] = None,
    save_recs: Annotated[
        str | None,
        typer.Option(
            "--save-recs",
            help="Write recommendations (model,user_id,item_id,rank,score) as Parquet; "
            "'{seed}' in the path writes one file per seed, else the last seed's.",
        ),
    ] = None,
    save_split: Annotated[
        str | None,
        typer.Option(
            "--save-split",
            help="Write train/valid/test.parquet to this directory; '{seed}' in the path "
            "writes every seed, else the first seed's.",
        ),
    ] = None,
    items: Annotated[
        Path | None, typer.Option("--items", help="Item catalogue file (with item_id) for a file.")
    ] = None,
    data_dir: DataDirOpt = None,
    col_user: ColUserOpt = "user_id",
    col_item: ColItemOpt = "item_id",
    col_rating: ColRatingOpt = "rating",
    col_timestamp: ColTimestampOpt = "timestamp",
    download: Annotated[
        bool,
        typer.Option(
            "--download",
            help="Fetch a missing built-in dataset from its public location first "
            "(checksum-verified; needs network).",
        ),
    ] = False,
    use_valid: Annotated[
        bool,
        typer.Option("--use-valid", help="Tuning mode: fit on train, score on the valid part."),
    ] = False,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by",
            help="Also report every metric per user group, with the gap and a significance "
            "test: activity (training-activity quartiles), active (top 5% most active vs "
            "rest), gender, age, occupation (MovieLens user attributes). Comma-separated.",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write a self-contained HTML report of the results to this file "
            "(see `lumenrec report`; needs matplotlib).",
        ),
    ] = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Compare models on a protocol over seeds (the ``--help`` text is :data:`_HELP`)."""
    configure_logging(verbose, quiet)
    with cli_errors(debug):
        if protocol.lower() == "p5" or dataset.lower() == "coat":
            if report is not None and (json_out is None or str(json_out) == "-"):
                msg = "--report with the p5 protocol needs --json FILE (the report is made from it)"
                raise ConfigError(msg)
            _run_p5(dataset, protocol, models, seeds, json_out, data_dir)
            if report is not None and json_out is not None:
                _write_report(json_out.read_text(), report)
            return
        names = check_model_names(parse_names(models, "--models"))
        per_model = parse_params(params, names)
        seed_list = parse_seeds(seeds)
        proto = _check_protocol(protocol)
        grouping = GroupBy.parse(group_by, k=k, use_valid=use_valid)
        prototypes = {name: make_model(name, per_model[name]) for name in names}
        for model in prototypes.values():
            _validate_early(model)
        columns = {
            "col_user": col_user,
            "col_item": col_item,
            "col_rating": col_rating or None,
            "col_timestamp": col_timestamp or None,
        }
        data = load_dataset(
            dataset, items=items, data_dir=data_dir, columns=columns, download=download
        )
        if grouping is not None:
            grouping.check(data)
        paths = [p for p in (save_recs, save_split) if p]
        if len(paths) == 2 and len(seed_list) > 1 and not all("{seed}" in p for p in paths):
            log.warning(
                "--save-recs holds the last seed and --save-split the first; put {seed} "
                "in both paths to get matching files for every seed"
            )
        savers = SaveHooks(save_recs, save_split, seed_list, names)
        from lumenrec.evaluation.runner import compare, write_results

        comparison = compare(
            prototypes,
            data,
            proto,
            seed_list,
            k=k,
            use_valid=use_valid,
            progress=sys.stderr.isatty() and not quiet,
            on_split=savers.on_split,
            on_result=savers.on_result if grouping is None else grouping.chain(savers.on_result),
        )
        results = comparison.results
        if grouping is not None:
            results["groups"] = grouping.record()
        to_stdout = json_out is not None and str(json_out) == "-"
        text = write_results(results, json_out) if json_out is not None else ""
        if report is not None:  # from the same JSON-safe record that --json writes
            savers.written.append(_write_report(text or write_results(results, None), report))
        if to_stdout:
            sys.stdout.write(text)
            return
        print_table(results, out_console())
        if grouping is not None:
            grouping.print(results["groups"], out_console())
        if not quiet:
            for path in [*savers.written, *([json_out] if json_out else [])]:
                err_console().print(f"wrote {path}", markup=False)


def _write_report(text: str, path: Path) -> Path:
    """``--report``: the HTML report of one results record (its JSON text)."""
    import json

    from lumenrec.report import write_report

    return write_report([json.loads(text)], path)


def _validate_early(model: Any) -> None:
    """Check hyperparameters before any data is read (models check again in ``fit``)."""
    constraints = getattr(model, "_param_constraints", None)
    if constraints:
        from lumenrec._params import validate_params

        validate_params(model, constraints)


def _run_p5(
    dataset: str,
    protocol: str,
    models: str,
    seeds: str,
    json_out: Path | None,
    data_dir: Path | None,
) -> None:
    """``--dataset coat --protocol p5``: the debiasing protocol (MNAR train, MAR test)."""
    from lumenrec.cli._p5 import run_p5_command

    if dataset.lower() != "coat" or protocol.lower() != "p5":
        msg = (
            f"protocol p5 runs on the coat dataset only (got --dataset {dataset} --protocol "
            f"{protocol}); use --dataset coat --protocol p5 --models mf,mf-ips,mf-dr"
        )
        raise ConfigError(msg)
    run_p5_command(parse_names(models, "--models"), parse_seeds(seeds), json_out, data_dir)
