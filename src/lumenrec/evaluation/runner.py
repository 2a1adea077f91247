"""Compare several models over several seeded splits of one protocol, with a reproducible record.

:func:`compare` loops seeds × models through :func:`lumenrec.evaluation.protocol.evaluate` and
returns a :class:`Comparison` whose ``results`` dict is JSON-serialisable (protocol, dataset
fingerprint, seeds, parameters, library versions, hardware, per-seed and aggregated metrics).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from lumenrec._progress import progress as _progress
from lumenrec.errors import ConfigError
from lumenrec.evaluation.protocol import EvalResult, _jsonable, evaluate
from lumenrec.types import PathLike

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset
    from lumenrec.data.split import Split
    from lumenrec.models.base import Recommender

__all__ = ["RESULTS_SCHEMA", "Comparison", "compare", "environment", "write_results"]

log = logging.getLogger(__name__)

#: Version tag of the results dict written by :func:`compare`.
RESULTS_SCHEMA = "lumenrec.compare/1"

ModelFactory = Callable[[], "Recommender"]
SplitHook = Callable[[int, "Split"], None]
ResultHook = Callable[[int, str, EvalResult, "Split"], None]


@dataclass
class Comparison:
    """What :func:`compare` returns.

    Attributes
    ----------
    results : dict
        JSON-serialisable record (see :func:`compare` for the keys).
    evaluations : dict of (seed, model name) to EvalResult
        Full results, only when ``compare(..., keep=True)``; otherwise empty.
    """

    results: dict[str, Any]
    evaluations: dict[tuple[int, str], EvalResult] = field(default_factory=dict)

    def mean(self, model: str, metric: str) -> float:
        """Mean over seeds of ``metric`` for ``model`` (NaN when undefined)."""
        value = self.results["aggregate"][model][metric]["mean"]
        return math.nan if value is None else float(value)


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0:
            msg = f"seeds must be non-negative ints (got {list(seeds)!r})"
            raise ConfigError(msg)
        out.append(int(s))
    if not out or len(set(out)) != len(out):
        msg = f"seeds must be a non-empty list of distinct ints (got {out})"
        raise ConfigError(msg)
    return out


def _build(factory: ModelFactory | Recommender, seed: int) -> Recommender:
    """A fresh model; ``random_state=None`` is replaced by the split seed for reproducibility."""
    if isinstance(factory, type) or not hasattr(factory, "fit"):
        model = factory()  # a class or a zero-argument callable
    else:
        model = factory.clone()  # type: ignore[union-attr]
    params = model.get_params() if hasattr(model, "get_params") else {}
    if "random_state" in params and params["random_state"] is None:
        model.set_params(random_state=seed)
    return model


def _qualname(model: object) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def environment() -> dict[str, Any]:
    """Library versions and hardware facts for a results record."""
    import pandas as pd

    from lumenrec.persistence import library_versions

    versions = {**library_versions(), "pandas": pd.__version__, "python": platform.python_version()}
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable = os.cpu_count()
    hardware = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
    }
    return {"versions": versions, "hardware": hardware}


def _aggregate(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    finite = bool(np.isfinite(arr).all())
    mean = float(arr.mean()) if finite else None
    std = float(arr.std(ddof=1)) if finite and arr.size >= 2 else None
    return {"mean": mean, "std": std, "n": int(arr.size)}


def compare(
    models: Mapping[str, ModelFactory | Recommender],
    data: Dataset,
    protocol: str,
    seeds: Sequence[int] = (0,),
    *,
    k: int = 10,
    ks: Sequence[int] = (5, 10, 20),
    use_valid: bool = False,
    candidates: ArrayLike | str | None = None,
    progress: bool | None = None,
    on_split: SplitHook | None = None,
    on_result: ResultHook | None = None,
    keep: bool = False,
) -> Comparison:
    """Evaluate every model on the split of every seed and aggregate mean ± std over seeds.

    Parameters
    ----------
    models : mapping of str to factory or model
        Name → zero-argument callable returning an unfitted model, or a model instance
        (cloned for every run). A model whose ``random_state`` is None gets the split seed.
    data : Dataset
        The full dataset; :func:`lumenrec.data.split.protocol_split` cuts it per seed.
    protocol : str
        ``"p1"`` … ``"p4"`` (see BENCHMARKS.md).
    seeds : sequence of int
        Distinct non-negative split seeds.
    k, ks, use_valid, candidates
        Passed to :func:`~lumenrec.evaluation.protocol.evaluate` (``candidates="cold_items"``
        ranks P3 targets against the seed's cold items only).
    progress : bool, optional
        Progress bar over seeds × models (default: on for INFO logging on a TTY).
    on_split : callable(seed, split), optional
        Called once per seed right after the split is made (e.g. to save it).
    on_result : callable(seed, name, result, split), optional
        Called after each evaluation (e.g. to save the recommendations).
    keep : bool, default False
        Keep every :class:`EvalResult` in :attr:`Comparison.evaluations` (memory grows with
        seeds × models × users).

    Returns
    -------
    Comparison
        ``results`` has the keys ``schema, protocol, description, evaluated_on, dataset
        {name, fingerprint, n_users, n_items, n_events}, seeds, k, ks, models {name: {class,
        params, random_state}}, splits [{seed, description, n_train, n_valid, n_test}], runs
        [{seed, model, n_users, fit_time, eval_time, metrics}], aggregate {model: {metric:
        {mean, std, n}}}, versions, hardware, wall_time, created_at``. ``std`` uses ddof=1 and
        is None for a single seed; NaN values are written as None. ``description`` is the
        first seed's split description (every seed's is under ``splits``). With
        ``candidates``, a ``candidates`` key names them (the extras key, or ``"given"``).
    """
    from lumenrec.data.split import protocol_split

    if not models:
        msg = "compare needs at least one model"
        raise ConfigError(msg)
    seed_list = _check_seeds(seeds)
    wall_start = time.perf_counter()
    created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    results: dict[str, Any] = {
        "schema": RESULTS_SCHEMA,
        "protocol": protocol,
        "description": None,
        "evaluated_on": "valid" if use_valid else "test",
        "dataset": {
            "name": data.name,
            "fingerprint": data.fingerprint(),
            "n_users": data.n_users,
            "n_items": data.n_items,
            "n_events": data.n_events,
        },
        "seeds": seed_list,
        "k": int(k),
        "ks": sorted({int(x) for x in (*ks, k)}),
        "models": {},
        "splits": [],
        "runs": [],
    }
    if candidates is not None:  # only then: the record of a full-ranking run is unchanged
        results["candidates"] = candidates if isinstance(candidates, str) else "given"
    out = Comparison(results)
    per_model: dict[str, dict[str, list[float]]] = {name: {} for name in models}
    split: Split | None = None
    current_seed: int | None = None
    pairs = [(seed, name) for seed in seed_list for name in models]
    for seed, name in _progress(
        pairs, total=len(pairs), desc=f"{protocol} seeds×models", enabled=progress
    ):
        if seed != current_seed:
            split = None  # free the previous seed's split before making the next one
            split = protocol_split(data, protocol=protocol, seed=seed)
            current_seed = seed
            results["description"] = results["description"] or split.description
            results["splits"].append(_split_record(seed, split))
            if on_split is not None:
                on_split(seed, split)
        assert split is not None  # internal invariant: set on the first pair of each seed
        model = _build(models[name], seed)
        if name not in results["models"]:
            params = model.get_params() if hasattr(model, "get_params") else {}
            results["models"][name] = {
                "class": _qualname(model),
                "params": _jsonable({p: v for p, v in params.items() if p != "random_state"}),
                "random_state": "seed" if "random_state" in params else None,
            }
        log.info("seed %d: evaluating %s", seed, name)
        res = evaluate(model, split, k=k, ks=ks, use_valid=use_valid, candidates=candidates)
        metrics = res.metrics
        results["runs"].append(
            {
                "seed": seed,
                "model": name,
                "n_users": res.n_users,
                "fit_time": res.fit_time,
                "eval_time": res.eval_time,
                "metrics": _jsonable(metrics),
                **_run_extras(res),
            }
        )
        rows = {**metrics, "n_users": res.n_users, "fit_time": res.fit_time}
        rows["eval_time"] = res.eval_time
        for metric, value in rows.items():
            per_model[name].setdefault(metric, []).append(float(value))
        if on_result is not None:
            on_result(seed, name, res, split)
        if keep:
            out.evaluations[(seed, name)] = res
    results["aggregate"] = {
        name: {metric: _aggregate(values) for metric, values in table.items()}
        for name, table in per_model.items()
    }
    results.update(environment())
    results["wall_time"] = time.perf_counter() - wall_start
    results["created_at"] = created
    return out


def _run_extras(res: EvalResult) -> dict[str, Any]:
    """``long_tail`` (exposure by popularity decile) and, for models that record one, the
    per-epoch training ``history`` (loss, validation scores) of a run record."""
    out: dict[str, Any] = {}
    if res.long_tail:
        out["long_tail"] = _jsonable(res.long_tail)
    history = getattr(res.model, "history_", None)
    if isinstance(history, Mapping) and history.get("loss"):
        keys = ("loss", "valid_epochs", "valid_scores", "best_epoch")
        out["history"] = _jsonable({key: history[key] for key in keys if key in history})
    elif getattr(res.model, "loss_history_", None) is not None:
        out["history"] = {"loss": _jsonable(np.asarray(res.model.loss_history_).tolist())}
    return out


def _split_record(seed: int, split: Split) -> dict[str, Any]:
    return {
        "seed": seed,
        "description": split.description,
        "n_train": split.train.n_events,
        "n_valid": None if split.valid is None else split.valid.n_events,
        "n_test": split.test.n_events,
    }


def write_results(results: Mapping[str, Any], path: PathLike | None) -> str:
    """Serialise a results dict as indented JSON; write it to ``path`` ("-" or None: no file).

    Returns
    -------
    str
        The JSON text (strict: no NaN).
    """
    text = json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n"
    if path is not None and os.fspath(path) != "-":
        target = Path(os.fspath(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return text
