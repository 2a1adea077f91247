"""OPE estimators by hand, SLOPE, input errors, the log format and the slate estimator."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lumenrec.errors import ConfigError, DataError, DataWarning
from lumenrec.explore.ope import BanditLog, estimate, estimate_from_terms, slope_select


def _log(**kw):
    base = {
        "action": np.array([0, 1, 2, 0, 1, 2]),
        "position": np.array([0, 0, 0, 1, 1, 1]),
        "reward": np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0]),
        "pscore": np.array([0.5, 0.25, 0.25, 0.25, 0.5, 0.25]),
        "n_actions": 3,
        "n_positions": 2,
    }
    base.update(kw)
    return BanditLog(**base)


def _dist():
    pi = np.array([[0.2, 0.6], [0.3, 0.3], [0.5, 0.1]])  # (actions, positions)
    return pi


def test_estimators_match_hand_formulas():
    log, pi = _log(), _dist()
    q = np.broadcast_to(np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]), (6, 3, 2)).copy()
    res = estimate(log, pi, ["dm", "ips", "snips", "dr", "sndr", "switch-dr", "dr-os"], q_hat=q)
    w = pi[log.action, log.position] / log.pscore
    r = log.reward
    qf = q[np.arange(6), log.action, log.position]
    qpi = (pi * q[0]).sum(0)[log.position]
    assert res["ips"].value == pytest.approx(np.mean(w * r), abs=1e-15)
    assert res["snips"].value == pytest.approx((w * r).sum() / w.sum(), abs=1e-15)
    assert res["dm"].value == pytest.approx(qpi.mean(), abs=1e-15)
    assert res["dr"].value == pytest.approx(np.mean(qpi + w * (r - qf)), abs=1e-15)
    assert res["sndr"].value == pytest.approx(np.mean(qpi + w * (r - qf) / w.mean()), abs=1e-15)
    # every weight is <= 10: Switch-DR keeps them all for any candidate; DR-os shrinks
    assert res["switch-dr"].value == pytest.approx(res["dr"].value, abs=1e-15)
    lam = res["dr-os"].extra["lambda"]
    shrunk = w if math.isinf(lam) else lam * w / (w**2 + lam)
    assert res["dr-os"].value == pytest.approx(np.mean(qpi + shrunk * (r - qf)), abs=1e-15)
    assert res["ips"].effective_sample_size == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert res["ips"].n == 6 and res["ips"].ci_low < res["ips"].value < res["ips"].ci_high


def test_slope_follows_obp():
    rng = np.random.default_rng(0)
    n = 3000
    wild = np.where(rng.random(n) < 0.01, 400.0, 0.5)
    r = rng.binomial(1, 0.05, n).astype(float)
    q = np.full(n, 0.05)
    # on-policy weights: every candidate agrees, so SLOPE keeps shrinking to the narrowest
    assert slope_select("dr-os", r, np.ones(n), q, q) == 10.0
    # a few huge weights: the shrunk estimates leave the widest (unbiased) interval at the first
    # step, and obp's SLOPE then keeps the unbiased end
    assert slope_select("dr-os", r, wild, q, q) == math.inf
    assert slope_select("switch-dr", r, wild, q, q, lambdas=(10.0, math.inf)) in (10.0, math.inf)


def test_bootstrap_ci_is_reproducible_and_covers():
    log, pi = _log(), _dist()
    a = estimate(log, pi, ["ips", "snips"], n_bootstrap=200, random_state=3)
    b = estimate(log, pi, ["ips", "snips"], n_bootstrap=200, random_state=3)
    assert a["ips"].ci_low == b["ips"].ci_low and a["ips"].ci_high == b["ips"].ci_high
    assert a["ips"].ci_low <= a["ips"].value <= a["ips"].ci_high
    assert "bootstrap" in a["ips"].extra["ci"] and a["ips"].std_error > 0


@pytest.mark.parametrize(
    ("pscore", "match"),
    [
        ([0.5, np.nan, 0.25, 0.25, 0.5, 0.25], r"1 of 6 propensities are missing"),
        ([0.5, 0.0, 0.25, 0.25, 0.5, 0.25], r"1 of 6 propensities are <= 0 and 0 are > 1"),
        ([0.5, 1.5, 0.25, 0.25, 0.5, 0.25], r"0 of 6 propensities are <= 0 and 1 are > 1"),
    ],
)
def test_bad_propensities_are_named(pscore, match):
    with pytest.raises(DataError, match=match):
        _log(pscore=np.array(pscore))


def test_action_dist_must_sum_to_one_and_names_are_checked():
    bad = _dist().copy()
    bad[0, 1] = 0.9
    with pytest.raises(DataError, match=r"sum to 1 .* 6 of 12 do not \(first: row 0, position 1"):
        estimate(_log(), bad, ["ips"])
    with pytest.raises(DataError, match="shape"):
        estimate(_log(), np.ones((4, 2)) / 4, ["ips"])
    with pytest.raises(ConfigError, match=r"unknown estimator.*'magic'.*valid: dm, ips"):
        estimate(_log(), _dist(), ["ips", "magic"])


def test_support_is_checked():
    log = _log(n_actions=4)  # action 3 is never logged
    pi = np.array([[0.2, 0.6], [0.3, 0.2], [0.49, 0.18], [0.01, 0.02]])
    with pytest.warns(DataWarning, match="1.50% of the target's mass"):
        res = estimate(log, pi, ["ips"])
    assert res["ips"].extra["unsupported_mass"] == pytest.approx(0.015)
    with pytest.raises(DataError, match=r"no support to 1\.5% .*\(2 \(action, position\) pairs"):
        estimate(log, pi, ["ips"], max_unsupported=0.01)
    only_unlogged = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(DataError, match="no support"):
        estimate(log, only_unlogged, ["ips"])
    with pytest.raises(DataError, match="no overlap"):
        estimate_from_terms(log.reward, np.zeros(6), estimators=["snips"])


def test_from_frame_maps_ids_and_names_missing_columns(tmp_path):
    df = pd.DataFrame(
        {
            "item_id": ["b", "a", "c", "a"],
            "position": [0, 1, 0, 1],
            "reward": [1, 0, 0, 1],
            "propensity": [0.5, 0.5, 0.5, 0.5],
            "request_id": [7, 7, 9, 9],
            "age": [1.0, 1.0, 2.0, 2.0],
        }
    )
    path = tmp_path / "log.csv"
    df.to_csv(path, index=False)
    log = BanditLog.from_frame(path, context_columns=["age"], slate="request_id")
    assert log.action_ids == ("a", "b", "c") and log.action.tolist() == [1, 0, 2, 0]
    assert log.n_positions == 2 and log.context.shape == (4, 1)
    assert log.slate_id.tolist() == [0, 0, 1, 1]
    with pytest.raises(DataError, match=r"missing column\(s\) \['propensity'\]"):
        BanditLog.from_frame(df.drop(columns="propensity"))
    with pytest.raises(DataError, match="column 'propensity': 1 of 4 propensities are missing"):
        BanditLog.from_frame(df.assign(propensity=[0.5, None, 0.5, 0.5]))


def test_iips_sums_weighted_rewards_per_slate():
    log = _log(slate_id=np.array([0, 0, 1, 1, 2, 2]))
    pi = _dist()
    res = estimate(log, pi, ["iips", "ips"])
    w = pi[log.action, log.position] / log.pscore
    per_slate = np.bincount(log.slate_id, weights=w * log.reward)
    assert res["iips"].value == pytest.approx(per_slate.mean()) and res["iips"].n == 3
    assert res["iips"].value == pytest.approx(2 * res["ips"].value)  # 2 positions per slate
    with pytest.raises(ConfigError, match="slate ids"):
        estimate(_log(), pi, ["iips"])
