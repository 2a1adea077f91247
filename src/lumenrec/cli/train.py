"""``lumenrec train``: fit a model on a dataset and publish it as a new version of a model registry."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any

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
)
from lumenrec.errors import ConfigError

__all__ = ["TRAIN_HELP", "train_command"]

log = logging.getLogger(__name__)

TRAIN_HELP = "\n\n".join(
    [
        "Train a model and publish it to a model directory that `lumenrec serve` loads.",
        "The directory is a registry: each run adds a version (v1, v2, ...) written atomically "
        "and moves the `current` pointer to it only after the new version loads back cleanly. "
        "A running server picks it up with POST /admin/reload.",
        "Example: lumenrec train --dataset ratings.csv --items items.csv --model hybrid "
        "--params encoder=hashing --out models/",
        "Differential privacy: --epsilon E [--delta D] [--max-epsilon M] trains the private "
        "variant of pop, itemknn, ease or bpr/mf (user-level DP; see docs/privacy.md). Every "
        "private training is recorded in <out>/privacy-ledger.json; one that would take the "
        "(dataset, model) total past the maximum stops before it starts.",
    ]
)


def _model_params(text: str | None, name: str) -> dict[str, Any]:
    """``--params``: ``key=value`` pairs, optionally prefixed with the model name."""
    from lumenrec.cli._common import parse_params

    if not text:
        return {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    prefixed = ",".join(p if p.lower().startswith(f"{name}.") else f"{name}.{p}" for p in parts)
    return parse_params(prefixed, [name])[name]


def _check_private(
    out: Path, data: Any, name: str, epsilon: float, delta: float, max_epsilon: float | None
) -> Any:
    """Check (ε, δ) and the ledger before a private training starts (writes nothing)."""
    from lumenrec.privacy.dp import check_budget
    from lumenrec.privacy.ledger import PrivacyLedger

    check_budget(epsilon, delta, data.n_users, unit="users")
    ledger = PrivacyLedger(out)
    ledger.check(data.fingerprint(), name, epsilon, max_epsilon)
    return ledger


def _privacy_metadata(ledger: Any, data: Any, name: str, model: Any) -> dict[str, Any]:
    """The spend of this training and the ledger totals including it (manifest metadata)."""
    spend = dict(model.privacy_)
    fingerprint = data.fingerprint()
    before, before_delta = ledger.spent(fingerprint, name)
    all_eps, all_delta = ledger.spent(fingerprint)
    return {
        **spend,
        "protects": "a whole user's history" if spend["level"] == "user" else "one interaction",
        "ledger": {
            "composition": "basic (sum of epsilons and deltas)",
            "model_total_epsilon": before + spend["epsilon"],
            "model_total_delta": before_delta + spend["delta"],
            "dataset_total_epsilon": all_eps + spend["epsilon"],
            "dataset_total_delta": all_delta + spend["delta"],
        },
    }


def train_command(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            "-d",
            help="Built-in dataset name (see `lumenrec datasets`) or an interactions file "
            "(.csv/.tsv/.parquet with user_id,item_id[,rating][,timestamp]).",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Model directory (registry) to publish into.")
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name (see `lumenrec evaluate --help`).")
    ] = "ease",
    items: Annotated[
        Path | None, typer.Option("--items", help="Item catalogue file (with item_id) for a file.")
    ] = None,
    params: Annotated[
        str | None,
        typer.Option(
            "--params", help="Model parameters, e.g. 'regularization=300,encoder=hashing'."
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    col_user: ColUserOpt = "user_id",
    col_item: ColItemOpt = "item_id",
    col_rating: ColRatingOpt = "rating",
    col_timestamp: ColTimestampOpt = "timestamp",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")
    ] = False,
    epsilon: Annotated[
        float | None,
        typer.Option("--epsilon", help="Train privately at this epsilon (> 0)."),
    ] = None,
    delta: Annotated[
        float, typer.Option("--delta", help="Private training's delta (< 1/n_users).")
    ] = 1e-6,
    max_epsilon: Annotated[
        float | None,
        typer.Option(
            "--max-epsilon",
            help="Budget of this (dataset, model) in the ledger; stored for later runs.",
        ),
    ] = None,
    pseudonymize: Annotated[
        bool,
        typer.Option(
            "--pseudonymize",
            help="Replace user ids by keyed HMAC pseudonyms before training (key from "
            "LUMENREC_PSEUDONYM_KEY), as `lumenrec serve` does with LUMENREC_PSEUDONYMIZE=true.",
        ),
    ] = False,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Fit ``--model`` on ``--dataset`` and publish it to ``--out`` (see :data:`TRAIN_HELP`)."""
    configure_logging(verbose, quiet)
    with cli_errors(debug):
        from lumenrec.cli._registry import check_model_names, make_model
        from lumenrec.cli.evaluate import load_dataset
        from lumenrec.pipeline import RecommendPipeline
        from lumenrec.serving.registry import ModelRegistry

        if epsilon is None:
            (name,) = check_model_names([model])
            chosen = _model_params(params, name)
            recommender = make_model(name, chosen)
        else:
            from lumenrec.privacy.dp import check_budget
            from lumenrec.privacy.private_models import make_private_model

            check_budget(epsilon, delta, 1)  # epsilon > 0 and finite, before loading data
            name = model.strip().lower()
            chosen = _model_params(params, name)
            recommender = make_private_model(name, epsilon, delta, chosen)
        pseudonym = None
        if pseudonymize:
            from lumenrec.privacy.ids import Pseudonymizer

            pseudonym = Pseudonymizer.from_env()  # no key: a clear error before any work
        if out.exists() and not out.is_dir():
            msg = f"--out {out} exists and is not a directory"
            raise ConfigError(msg)
        columns = {
            "col_user": col_user,
            "col_item": col_item,
            "col_rating": col_rating or None,
            "col_timestamp": col_timestamp or None,
        }
        data = load_dataset(dataset, items=items, data_dir=data_dir, columns=columns)
        if pseudonym is not None:
            from lumenrec.privacy.ids import pseudonymize_dataset

            data = pseudonymize_dataset(data, pseudonym)
        ledger = (
            None
            if epsilon is None
            else _check_private(out, data, name, epsilon, delta, max_epsilon)
        )
        start = time.perf_counter()
        pipeline = RecommendPipeline.fit(
            recommender,
            data,
            metadata={
                "dataset": data.name,
                "fingerprint": data.fingerprint(),
                "model": name,
                "params": {k: v for k, v in chosen.items() if k != "cache"},
                "pseudonymized": pseudonym is not None,
            },
        )
        seconds = time.perf_counter() - start
        if ledger is not None:
            pipeline.metadata["privacy"] = _privacy_metadata(ledger, data, name, recommender)
        version = ModelRegistry(out).publish(pipeline)
        if ledger is not None:
            from lumenrec.privacy.dp import PrivacySpend

            spend = PrivacySpend.from_dict(recommender.privacy_)
            ledger.record(data.fingerprint(), name, spend, version, max_epsilon)
        result = {
            "model_dir": str(out),
            "version": version,
            "model": name,
            "n_users": pipeline.n_users,
            "n_items": pipeline.n_items,
            "fit_seconds": round(seconds, 3),
        }
        if ledger is not None:
            result["privacy"] = pipeline.metadata["privacy"]
        if json_out:
            typer.echo(json.dumps(result))
        elif not quiet:
            err_console().print(
                f"published {name} as {version} in {out} ({pipeline.n_users} users, "
                f"{pipeline.n_items} items, fit {seconds:.1f}s)",
                markup=False,
            )
