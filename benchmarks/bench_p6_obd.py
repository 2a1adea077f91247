"""P6: off-policy evaluation on the Open Bandit Dataset sample (campaign "all").

BTS evaluated on the uniform-random logs and Random evaluated on the BTS logs, by DM, IPS, SNIPS,
DR, SNDR, Switch-DR and DR-os (SLOPE), beside the on-policy truth (the evaluated policy's own
mean click), full sample and the 30-run bootstrap of obp's example
(``RandomState(b).choice(10000, 10000)``, reward model refitted each run). Two reward models:
``reference`` (obp's per-position logistic regression, C = 100, 3-fold cross-fitting) and
``calibrated`` (ours: one model over all positions, C chosen by inner CV log-loss on the clicks).

Exactness checks: IPS/SNIPS against the BENCHMARKS.md anchors; the model-based estimators
computed from the q-hat files (derived/obp_qhat_full_sample_*.csv) against :data:`OBP_FROM_QHAT`,
the values that obp 0.5.7's own estimator code (``obp/ope/estimators.py``,
``estimators_tuning.py``, ``helper.py`` from the PyPI sdist, sha256 3060d67f...) returns on
those files' per-row terms. ``--obp-src DIR`` (a folder holding an importable ``obp`` package with
those three files and ``utils.py``) recomputes them instead of using the recorded numbers.

    nice -n 10 python benchmarks/bench_p6_obd.py [--runs 30] [--data-dir ../shared/datasets]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir, hardware, sha256_files, write_json  # noqa: E402

from lumenrec.datasets.open_bandit import (  # noqa: E402
    bts_action_dist,
    find_obd_dir,
    load_open_bandit,
    random_action_dist,
)
from lumenrec.explore.ope import (  # noqa: E402
    DEFAULT_ESTIMATORS,
    estimate,
    estimate_from_terms,
    relative_error,
)
from lumenrec.explore.reward_model import make_reward_model  # noqa: E402

DIRECTIONS = {  # name: (evaluated policy, logging policy)
    "bts_from_random": ("bts", "random"),
    "random_from_bts": ("random", "bts"),
}
#: BENCHMARKS.md P6 anchors (obp 0.5.7 on this sample).
ANCHOR_FULL = {"bts_from_random": {"ips": 0.004566904, "snips": 0.0047906}}
ANCHOR_BOOT = {
    "bts_from_random": {"dm": 0.157, "ips": 0.311, "snips": 0.312, "dr": 0.292,
                        "switch-dr": 0.258, "dr-os": 0.160, "mips-slope": 0.155},
    "random_from_bts": {"dm": 0.437, "ips": 0.391, "dr": 0.293, "dr-os": 0.332},
}  # fmt: skip
GOAL = {"bts_from_random": 0.14, "random_from_bts": 0.27}
#: obp 0.5.7's estimators on the q-hat files (see the module docstring; recomputed with --obp-src).
OBP_FROM_QHAT = {
    "bts_from_random": {
        "dm": 0.0035140229178680167, "ips": 0.004566904, "snips": 0.0047906024861338985,
        "dr": 0.004833522906376397, "sndr": 0.004898155346621041,
        "switch-dr": 0.0032773520324047537, "dr-os": 0.0036131742052698344,
    },
    "random_from_bts": {
        "dm": 0.005308357644424085, "ips": 0.0023596395168460067, "snips": 0.002333713893161734,
        "dr": 0.0033484817170301062, "sndr": 0.003370015093377946,
        "switch-dr": 0.004849059248153789, "dr-os": 0.00499209076562812,
    },
}  # fmt: skip
OBP_LAMBDA = {"bts_from_random": {"switch-dr": 10.0, "dr-os": 10.0},
              "random_from_bts": {"switch-dr": 10.0, "dr-os": 10.0}}  # fmt: skip


def _qhat_file(root: Path, name: str) -> Any:
    import pandas as pd

    return pd.read_csv(root / "derived" / f"obp_qhat_full_sample_{name}.csv")


def obp_values(obp_src: Path, ref: Any) -> dict[str, float]:
    """Run obp's own estimators on the per-row terms of a q-hat file (2-action encoding)."""
    sys.path.insert(0, str(obp_src))
    from obp.ope.estimators import (  # type: ignore[import-not-found]
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedDoublyRobust,
        SelfNormalizedInverseProbabilityWeighting,
    )
    from obp.ope.estimators_tuning import (  # type: ignore[import-not-found]
        DoublyRobustWithShrinkageTuning,
        SwitchDoublyRobustTuning,
    )

    n, rows = len(ref), np.arange(len(ref))
    k = ref.position.to_numpy() - 1
    pi, qf, qpi = (ref[c].to_numpy() for c in ("pi_e", "qhat_factual", "qhat_pi_e"))
    dist, q = np.full((n, 2, 3), 0.5), np.zeros((n, 2, 3))
    dist[rows, 0, k], dist[rows, 1, k] = pi, 1 - pi
    q[rows, 0, k], q[rows, 1, k] = qf, (qpi - pi * qf) / (1 - pi)
    lams = [10, 50, 100, 500, 1000, 5000, 10000, np.inf]
    ests = {"dm": DirectMethod(), "ips": InverseProbabilityWeighting(),
            "snips": SelfNormalizedInverseProbabilityWeighting(), "dr": DoublyRobust(),
            "sndr": SelfNormalizedDoublyRobust(),
            "switch-dr": SwitchDoublyRobustTuning(lambdas=list(lams)),
            "dr-os": DoublyRobustWithShrinkageTuning(lambdas=list(lams))}  # fmt: skip
    kw = {"reward": ref.click.to_numpy(), "action": np.zeros(n, int), "position": k,
          "pscore": ref.propensity_score.to_numpy(), "action_dist": dist,
          "estimated_rewards_by_reg_model": q}  # fmt: skip
    return {name: float(e.estimate_policy_value(**kw)) for name, e in ests.items()}


def _summary(errs: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(errs)), "std": float(np.std(errs, ddof=1))}


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = find_obd_dir(data_dir(args.data_dir))
    logs = {p: load_open_bandit(p, "all", root) for p in ("random", "bts")}
    targets = {"bts": bts_action_dist("all", root), "random": random_action_dist(80, 3)}
    truth = {p: logs[p].on_policy_value for p in logs}
    out: dict[str, Any] = {"full_sample": {}, "bootstrap": {}, "checks": {}}
    for name, (target, behaviour) in DIRECTIONS.items():
        log, pi, v = logs[behaviour].log, targets[target], truth[target]
        ref = _qhat_file(root, name)
        obp = obp_values(args.obp_src, ref) if args.obp_src else OBP_FROM_QHAT[name]
        order_ok = bool((ref.row_id.to_numpy() == logs[behaviour].row_id).all())
        pi_ok = float(np.abs(pi[log.action, log.position] - ref.pi_e.to_numpy()).max())
        w = pi[log.action, log.position] / log.pscore
        from_q = estimate_from_terms(log.reward, w, ref.qhat_factual.to_numpy(),
                                     ref.qhat_pi_e.to_numpy(), DEFAULT_ESTIMATORS)  # fmt: skip
        full: dict[str, Any] = {"truth": v, "from_obp_qhat": {}, "obp": {}}
        for est, e in from_q.items():
            full["from_obp_qhat"][est] = {"value": e.value, "error": relative_error(e.value, v),
                                          "lambda": _lam(e.extra.get("lambda"))}  # fmt: skip
            full["obp"][est] = {"value": obp[est], "error": relative_error(obp[est], v)}
        diff_q = max(abs(from_q[e].value - obp[e]) for e in obp)
        for model in ("reference", "calibrated"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = estimate(log, pi, reward_model=model, max_unsupported=1.0)
            full[model] = {e: {"value": r.value, "error": relative_error(r.value, v),
                               "ci": [r.ci_low, r.ci_high], "ess": r.effective_sample_size,
                               "lambda": _lam(r.extra.get("lambda"))}
                           for e, r in res.items()}  # fmt: skip
        ratio = {e: full["reference"][e]["value"] / obp[e] - 1 for e in obp}
        out["full_sample"][name] = full
        checks = {"row_order_equals_obp": order_ok, "pi_e_max_abs_diff": pi_ok,
                  "qhat_estimators_max_abs_diff_vs_obp": diff_q,
                  "qhat_estimators_equal_obp_1e-12": diff_q <= 1e-12,
                  "lambda_equal_obp": all(from_q[e].extra["lambda"] == OBP_LAMBDA[name][e]
                                          for e in OBP_LAMBDA[name]),
                  "own_reference_model_rel_diff_vs_obp": ratio,
                  "own_reference_model_within_5pct": all(abs(x) <= 0.05 for x in ratio.values())}  # fmt: skip
        for est, anchor in ANCHOR_FULL.get(name, {}).items():
            diff = abs(from_q[est].value - anchor)
            digits = len(repr(anchor).split(".")[1])
            checks[f"{est}_abs_diff_vs_anchor"] = diff
            checks[f"{est}_equal_anchor_1e-9"] = diff <= 1e-9
            checks[f"{est}_equal_anchor_to_its_printed_digits"] = diff <= 0.5 * 10**-digits
            checks[f"{est}_equal_obp_code_1e-15"] = abs(from_q[est].value - obp[est]) <= 1e-15
        out["checks"][name] = checks
        out["bootstrap"][name] = _bootstrap(log, pi, v, args.runs)
    mc = bts_action_dist("all", root, n_sim=1_000_000)
    out["checks"]["bts_action_dist_1e6_draws_equals_derived_file"] = bool(
        (mc == targets["bts"]).all()
    )
    out["goals"] = _goals(out["bootstrap"])
    out["truth"] = truth
    return out


def _lam(x: float | None) -> float | str | None:
    return "inf" if x is not None and math.isinf(x) else x


def _bootstrap(log: Any, pi: Any, truth: float, runs: int) -> dict[str, Any]:
    errs: dict[str, dict[str, list[float]]] = {"reference": {}, "calibrated": {}}
    unsupported = []
    for b in range(runs):
        rows = np.random.RandomState(b).choice(log.n, log.n, replace=True)
        sub = log.take(rows)
        for model in errs:
            q = make_reward_model(model).fit_predict(sub)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = estimate(sub, pi, q_hat=q, max_unsupported=1.0)
            for est, r in res.items():
                errs[model].setdefault(est, []).append(relative_error(r.value, truth))
        unsupported.append(res["ips"].extra["unsupported_mass"])
    out: dict[str, Any] = {m: {e: _summary(v) for e, v in d.items()} for m, d in errs.items()}
    out["unsupported_mass_mean"] = float(np.mean(unsupported))
    out["runs"] = runs
    return out


def _goals(boot: dict[str, Any]) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    for name, res in boot.items():
        ours = {
            f"{m}/{e}": s["mean"] for m in ("reference", "calibrated") for e, s in res[m].items()
        }
        best = min(ours, key=ours.__getitem__)
        rec = res["calibrated"]["dr-os"]["mean"]
        anchors = ANCHOR_BOOT[name]
        goals[name] = {
            "best": best, "best_error": ours[best], "goal": GOAL[name],
            "best_meets_goal": ours[best] <= GOAL[name],
            "best_beats_every_obp_anchor": all(ours[best] < a for a in anchors.values()),
            "recommended": "calibrated/dr-os", "recommended_error": rec,
            "recommended_meets_goal": rec <= GOAL[name],
            "recommended_beats_every_obp_anchor": all(rec < a for a in anchors.values()),
            "anchors": anchors,
        }  # fmt: skip
    return goals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--obp-src", type=Path, help="folder with an importable obp (see docstring)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = run(args)
    root = find_obd_dir(data_dir(args.data_dir))
    files = [root / p / "all" / "all.csv" for p in ("random", "bts")]
    files += sorted((root / "derived").glob("*.csv"))
    payload = {
        "protocol": "P6",
        "dataset": "open-bandit sample, campaign all",
        "dataset_sha256": sha256_files(files),
        "seeds": list(range(args.runs)),
        "obp_reference": "recomputed from --obp-src" if args.obp_src else "recorded constants",
        "versions": {p: version(p) for p in ("numpy", "scipy", "scikit-learn", "pandas")},
        "hardware": hardware(),
        **results,
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    path = write_json("p6_obd", payload)
    for name, g in results["goals"].items():
        print(name, {k: v for k, v in g.items() if k != "anchors"})
    print("wrote", path)


if __name__ == "__main__":
    main()
