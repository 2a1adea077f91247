"""The paired significance test between the best model and the runner-up of a comparison."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["LOWER_IS_BETTER", "paired_test", "ranked_models"]


#: Metrics where a lower value is better (errors).
LOWER_IS_BETTER = ("mse", "mae", "rmse", "error")


def ranked_models(aggregate: Mapping[str, Any], metric: str) -> list[str]:
    """Model names from best to worst mean of ``metric`` (models without it are left out).

    Higher is better, except for the error metrics of :data:`LOWER_IS_BETTER`.
    """
    sign = 1.0 if metric.split("@")[0].lower() in LOWER_IS_BETTER else -1.0
    scored = [
        (float(cells[metric]["mean"]), name)
        for name, cells in aggregate.items()
        if isinstance(cells, Mapping)
        and isinstance(cells.get(metric), Mapping)
        and isinstance(cells[metric].get("mean"), int | float)
    ]
    return [name for _, name in sorted(scored, key=lambda t: sign * t[0])]


def _per_user_pairs(
    runs: list[Mapping[str, Any]], best: str, second: str, metric: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-user values of both models, paired within each seed and pooled over seeds."""
    by = {(r.get("seed"), r.get("model")): r for r in runs}
    seeds = sorted({r.get("seed") for r in runs}, key=str)
    a_parts, b_parts = [], []
    for seed in seeds:
        ra, rb = by.get((seed, best)), by.get((seed, second))
        if ra is None or rb is None:
            continue
        ua, ub = (r.get("per_user", {}).get(metric) for r in (ra, rb))
        if not isinstance(ua, list) or not isinstance(ub, list) or len(ua) != len(ub) or not ua:
            return None
        a_parts.append(np.asarray(ua, dtype=np.float64))
        b_parts.append(np.asarray(ub, dtype=np.float64))
    if not a_parts:
        return None
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def paired_test(results: Mapping[str, Any], metric: str) -> dict[str, Any] | None:
    """Paired test of ``metric`` between the best model and the runner-up.

    Over users (Wilcoxon signed-rank, :func:`scipy.stats.wilcoxon`) when every run of both
    models carries ``per_user[metric]``; otherwise over seeds (paired t-test,
    :func:`scipy.stats.ttest_rel`), pairing the two models' values on the same seed's split.

    Parameters
    ----------
    results : mapping
        A ``lumenrec.compare/1`` record (``aggregate`` and ``runs``).
    metric : str
        E.g. ``"ndcg@10"``.

    Returns
    -------
    dict or None
        ``best, runner_up, metric, difference, pairing, test, n, statistic, p_value, note``;
        None with fewer than two models. ``p_value`` is None when no test is possible
        (one seed, or the same difference on every pair).
    """
    from scipy import stats

    aggregate = results.get("aggregate") or {}
    order = ranked_models(aggregate, metric)
    if len(order) < 2:
        return None
    best, second = order[:2]
    diff = float(aggregate[best][metric]["mean"]) - float(aggregate[second][metric]["mean"])
    out: dict[str, Any] = {"best": best, "runner_up": second, "metric": metric,
                           "difference": diff, "statistic": None, "p_value": None, "note": ""}  # fmt: skip
    runs = [r for r in results.get("runs") or [] if isinstance(r, Mapping)]
    users = _per_user_pairs(runs, best, second, metric)
    if users is not None:
        a, b = users
        out.update(pairing="users", test="Wilcoxon signed-rank (scipy.stats.wilcoxon)", n=a.size)
        if not np.any(a != b):
            out["note"] = "identical per-user values: no test"
            return out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.wilcoxon(a, b)
    else:
        values: dict[tuple[Any, str], float] = {}
        for r in runs:
            v = (r.get("metrics") or {}).get(metric)
            if isinstance(v, int | float) and math.isfinite(v):
                values[(r.get("seed"), str(r.get("model")))] = float(v)
        seeds = sorted({s for s, m in values if m == best} & {s for s, m in values if m == second},
                       key=str)  # fmt: skip
        a = np.array([values[(s, best)] for s in seeds])
        b = np.array([values[(s, second)] for s in seeds])
        out.update(pairing="seeds", test="paired t-test (scipy.stats.ttest_rel)", n=len(seeds))
        if len(seeds) < 2:
            out["note"] = "one seed: no test (run several seeds for one)"
            return out
        d = a - b
        if np.allclose(d, d[0], rtol=0, atol=1e-15):
            out["note"] = "the same difference on every seed: the t statistic is undefined"
            return out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.ttest_rel(a, b)
    stat, p = float(res.statistic), float(res.pvalue)
    out["statistic"] = stat if math.isfinite(stat) else None
    out["p_value"] = p if math.isfinite(p) else None
    return out
