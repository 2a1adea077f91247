"""Off-policy evaluation: estimate a target policy's value from another policy's logs.

Position-wise estimators (one logged row per shown (action, position); Saito et al. 2021, obp):
with ``w_i = pi_e(a_i | x_i, k_i) / p_i``, ``q_f = q(x_i, a_i, k_i)`` and
``q_pi = sum_a pi_e(a | x_i, k_i) q(x_i, a, k_i)``,

- ``dm``: mean(q_pi)
- ``ips``: mean(w r); ``snips``: sum(w r) / sum(w)
- ``dr``: mean(q_pi + w (r - q_f)); ``sndr``: mean(q_pi + w (r - q_f) / mean(w))
- ``switch-dr``: DR with ``w 1{w <= lambda}``; ``dr-os``: DR with ``lambda w / (w^2 + lambda)``,
  lambda chosen by SLOPE (Su et al. 2020 with Tucker & Lee's 2021 refinement, exactly as obp
  0.5.7 implements it, delta = 0.1) from :data:`DEFAULT_LAMBDAS`.
- ``iips`` (slate): independent / position-based IPS of the expected *slate* reward
  ``(1 / n_slates) sum_slates sum_k w_k r_k`` (Li et al. 2018); needs ``BanditLog.slate_id``.

Every formula is written in obp's operation order, so values agree with obp bit for bit (or to
1e-16). :func:`estimate` checks the inputs (propensities, the target distribution, support).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lumenrec.errors import ConfigError, DataError, DataWarning
from lumenrec.explore._ope_log import BanditLog, check_action_dist
from lumenrec.explore._ope_terms import (
    DEFAULT_LAMBDAS,
    influence,
    round_terms,
    shrunk,
    slope_select,
)

__all__ = [
    "DEFAULT_ESTIMATORS",
    "DEFAULT_LAMBDAS",
    "ESTIMATORS",
    "BanditLog",
    "Estimate",
    "estimate",
    "estimate_from_terms",
    "relative_error",
    "slope_select",
    "support_report",
]

#: Every estimator name :func:`estimate` knows.
ESTIMATORS = ("dm", "ips", "snips", "dr", "sndr", "switch-dr", "dr-os", "iips")
#: The position-wise set of the P6 protocol.
DEFAULT_ESTIMATORS = ("dm", "ips", "snips", "dr", "sndr", "switch-dr", "dr-os")
#: Refuse when more than this share of the target's mass is on (action, position) pairs the log
#: never shows (see :func:`support_report`).
MAX_UNSUPPORTED = 0.05
_MODEL_BASED = frozenset({"dm", "dr", "sndr", "switch-dr", "dr-os"})


@dataclass(frozen=True)
class Estimate:
    """One estimator's estimate of the target policy's value.

    Attributes
    ----------
    value : float
        The point estimate (mean reward per logged row; per slate for ``iips``).
    ci_low, ci_high : float
        ``1 - alpha`` confidence interval: bootstrap percentile when ``n_bootstrap > 0``, else
        normal (value +- z std_error); ``extra["ci"]`` says which.
    std_error : float
        Bootstrap std (ddof 1), else the sample std of the per-row terms / sqrt(n)
        (linearised for the self-normalised estimators).
    effective_sample_size : float
        (sum w)^2 / sum w^2 of the (clipped / shrunk) weights actually used; n for ``dm``.
    n : int
        Logged rows (slates for ``iips``).
    extra : dict
        E.g. ``lambda`` chosen by SLOPE, ``unsupported_mass``, ``ci``.
    """

    value: float
    ci_low: float
    ci_high: float
    std_error: float
    effective_sample_size: float
    n: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (infinite lambdas written as the string ``"inf"``)."""
        extra = {
            k: ("inf" if isinstance(v, float) and math.isinf(v) else v)
            for k, v in self.extra.items()
        }
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "std_error": self.std_error,
            "effective_sample_size": self.effective_sample_size,
            "n": self.n,
            **extra,
        }


def relative_error(value: float, truth: float) -> float:
    """``|value - truth| / truth`` (the P6 error)."""
    return abs(value - truth) / truth


# --------------------------------------------------------------------------- estimation
def estimate_from_terms(
    reward: NDArray[np.float64],
    weight: NDArray[np.float64],
    q_factual: NDArray[np.float64] | None = None,
    q_target: NDArray[np.float64] | None = None,
    estimators: Sequence[str] = DEFAULT_ESTIMATORS,
    *,
    slate_id: NDArray[np.int64] | None = None,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    n_bootstrap: int = 0,
    alpha: float = 0.05,
    random_state: int = 0,
) -> dict[str, Estimate]:
    """Estimators from per-row quantities (no input checks beyond shapes; see :func:`estimate`).

    Parameters
    ----------
    reward, weight : ndarray of shape (n,), float64
        ``r_i`` and ``w_i = pi_e(a_i, k_i) / p_i``.
    q_factual, q_target : ndarray of shape (n,), float64, optional
        ``q(x_i, a_i, k_i)`` and ``sum_a pi_e(a | x_i, k_i) q(x_i, a, k_i)``; needed by the
        model-based estimators.
    slate_id : ndarray of shape (n,), int64, optional
        0-based slate index per row (``iips``).
    """
    names = _check_names(estimators)
    r, w = np.asarray(reward, np.float64), np.asarray(weight, np.float64)
    qf = None if q_factual is None else np.asarray(q_factual, np.float64)
    qpi = None if q_target is None else np.asarray(q_target, np.float64)
    if _MODEL_BASED.intersection(names) and (qf is None or qpi is None):
        msg = f"{sorted(_MODEL_BASED.intersection(names))} need q_hat (a reward model)"
        raise ConfigError(msg)
    if not (w > 0).any() and {"snips", "sndr"}.intersection(names):
        msg = (
            "the target policy gives probability 0 to every logged (action, position): the log "
            "has no overlap with it, so no importance-weighted estimate exists"
        )
        raise DataError(msg)
    z = _z(alpha)
    rng = np.random.default_rng(random_state)
    out: dict[str, Estimate] = {}
    for name in names:
        if name == "iips":
            out[name] = _iips(r, w, slate_id, n_bootstrap, alpha, rng)
            continue
        extra: dict[str, Any] = {}
        lam = math.inf
        if name in ("switch-dr", "dr-os"):
            assert qf is not None and qpi is not None
            lam = slope_select(name, r, w, qf, qpi, lambdas)
            extra["lambda"] = lam
        terms = round_terms(name, r, w, qf, qpi, lam)
        value = float(terms.mean())
        used = None if name == "dm" else shrunk(name, w, lam) if "-" in name else w
        ess = float(r.shape[0]) if used is None else _ess(used)

        def stat(rows: NDArray[np.int64], name: str = name, lam: float = lam) -> float:
            sub = (None if a is None else a[rows] for a in (qf, qpi))
            return float(round_terms(name, r[rows], w[rows], *sub, lam).mean())

        out[name] = _finish(
            value,
            influence(name, terms, r, w, qf, qpi),
            ess,
            r.shape[0],
            extra,
            stat,
            n_bootstrap,
            alpha,
            z,
            rng,
        )
    return out


def _iips(
    r: NDArray[np.float64],
    w: NDArray[np.float64],
    slate_id: NDArray[np.int64] | None,
    n_bootstrap: int,
    alpha: float,
    rng: np.random.Generator,
) -> Estimate:
    if slate_id is None:
        msg = (
            "iips (the slate estimator) needs slate ids: BanditLog.slate_id (from_frame(..., "
            "slate='request_id')) groups the rows of one served list"
        )
        raise ConfigError(msg)
    n_slates = int(slate_id.max()) + 1
    per_slate = np.bincount(slate_id, weights=r * w, minlength=n_slates)
    ess = _ess(np.bincount(slate_id, weights=w, minlength=n_slates))

    def stat(rows: NDArray[np.int64]) -> float:
        return float(per_slate[rows].mean())

    return _finish(
        float(per_slate.mean()),
        per_slate,
        ess,
        n_slates,
        {},
        stat,
        n_bootstrap,
        alpha,
        _z(alpha),
        rng,
    )


def _finish(
    value: float,
    infl: NDArray[np.float64],
    ess: float,
    n: int,
    extra: dict[str, Any],
    stat: Callable[[NDArray[np.int64]], float],
    n_bootstrap: int,
    alpha: float,
    z: float,
    rng: np.random.Generator,
) -> Estimate:
    if n_bootstrap > 0:
        boot = np.array([stat(rng.integers(0, n, n)) for _ in range(n_bootstrap)])
        lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
        se = float(boot.std(ddof=1)) if n_bootstrap > 1 else 0.0
        extra = {**extra, "ci": f"bootstrap percentile ({n_bootstrap} resamples)"}
        return Estimate(value, float(lo), float(hi), se, ess, n, extra)
    se = float(infl.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    extra = {**extra, "ci": "normal"}
    return Estimate(value, value - z * se, value + z * se, se, ess, n, extra)


def _ess(w: NDArray[np.float64]) -> float:
    sq = float((w**2).sum())
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        msg = f"alpha must be in (0, 1), got {alpha}"
        raise ConfigError(msg)
    from scipy import stats

    return float(stats.norm.ppf(1 - alpha / 2))


def _check_names(estimators: Sequence[str] | str) -> list[str]:
    names = [estimators] if isinstance(estimators, str) else list(estimators)
    names = [str(n).strip().lower() for n in names]
    bad = [n for n in names if n not in ESTIMATORS]
    if bad or not names:
        msg = f"unknown estimator(s) {bad}; valid: {', '.join(ESTIMATORS)}"
        raise ConfigError(msg)
    return list(dict.fromkeys(names))


def support_report(log: BanditLog, action_dist: NDArray[np.float64]) -> dict[str, float]:
    """How much of the target's mass the log cannot support.

    A pair (action, position) is supported when the log shows it at least once (with a positive
    propensity, which :class:`BanditLog` guarantees). ``unsupported_mass`` is the target's mean
    probability mass per (row, position) on unsupported pairs; IPS-type estimators are biased
    down by up to that share of the reward scale, and DM must extrapolate there.
    """
    pi = check_action_dist(action_dist, log)
    seen = np.zeros((log.n_actions, log.n_positions), dtype=bool)
    seen[log.action, log.position] = True
    mass = float(np.einsum("nak,ak->", pi, ~seen) / (log.n * log.n_positions))
    return {"unsupported_mass": mass, "unsupported_pairs": int((~seen).sum())}


def estimate(
    log: BanditLog,
    action_dist: NDArray[np.float64],
    estimators: Sequence[str] = DEFAULT_ESTIMATORS,
    *,
    q_hat: NDArray[np.float64] | None = None,
    reward_model: Any = "reference",
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    n_bootstrap: int = 0,
    alpha: float = 0.05,
    random_state: int = 0,
    max_unsupported: float = MAX_UNSUPPORTED,
) -> dict[str, Estimate]:
    """Estimate the value of a target policy from a log.

    Parameters
    ----------
    log : BanditLog
        The logging policy's feedback.
    action_dist : ndarray of shape (n, n_actions, n_positions) or (n_actions, n_positions)
        ``pi_e(a | x_i, k)``; each (row, position) sums to 1.
    estimators : sequence of str
        Names from :data:`ESTIMATORS`.
    q_hat : ndarray of shape (n, n_actions, n_positions), optional
        Estimated rewards; when None and a model-based estimator is asked for, ``reward_model``
        is fitted with cross-fitting (:mod:`lumenrec.explore.reward_model`).
    reward_model : {"reference", "calibrated"} or object with ``fit_predict(log)``
    lambdas : sequence of float
        SLOPE candidates for ``switch-dr`` and ``dr-os``.
    n_bootstrap : int
        > 0: percentile CI from that many row resamples (q_hat and lambda fixed); 0: normal CI.
    alpha : float
        1 - confidence level.
    random_state : int
        Seed of the bootstrap.
    max_unsupported : float
        Refuse (DataError) when the target puts more than this share of its mass on
        (action, position) pairs the log never shows; warn (DataWarning) when above 0.

    Returns
    -------
    dict of str to Estimate
    """
    names = _check_names(estimators)
    pi = check_action_dist(action_dist, log)
    support = support_report(log, pi)
    share = support["unsupported_mass"]
    if share > max_unsupported:
        msg = (
            f"the log gives no support to {share:.1%} of the target policy's probability mass "
            f"({support['unsupported_pairs']} (action, position) pairs it never shows; limit "
            f"{max_unsupported:.1%}); estimates would be biased - evaluate on a log that explores "
            f"those pairs, or restrict the target to logged actions"
        )
        raise DataError(msg)
    if share > 0:
        warnings.warn(
            f"{share:.2%} of the target's mass is on {support['unsupported_pairs']} (action, "
            f"position) pairs the log never shows; IPS-type estimates are biased down by up to "
            f"that share",
            DataWarning,
            stacklevel=2,
        )
    rows = np.arange(log.n)
    w = pi[rows, log.action, log.position] / log.pscore
    qf = qpi = None
    if _MODEL_BASED.intersection(names):
        if q_hat is None:
            from lumenrec.explore.reward_model import make_reward_model

            q_hat = make_reward_model(reward_model).fit_predict(log)
        q = np.asarray(q_hat, dtype=np.float64)
        if q.shape != (log.n, log.n_actions, log.n_positions):
            msg = f"q_hat must have shape {(log.n, log.n_actions, log.n_positions)}, got {q.shape}"
            raise DataError(msg)
        qf = q[rows, log.action, log.position]
        qpi = np.average(q[rows, :, log.position], weights=pi[rows, :, log.position], axis=1)
    out = estimate_from_terms(
        log.reward,
        w,
        qf,
        qpi,
        names,
        slate_id=log.slate_id,
        lambdas=lambdas,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        random_state=random_state,
    )
    for est in out.values():
        est.extra["unsupported_mass"] = share
    return out
