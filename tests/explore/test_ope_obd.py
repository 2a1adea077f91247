"""P6 exactness on the Open Bandit Dataset sample (skipped when ../shared/datasets is absent)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumenrec.datasets.open_bandit import bts_action_dist, load_open_bandit, random_action_dist
from lumenrec.explore.ope import DEFAULT_ESTIMATORS, estimate, estimate_from_terms

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_p6_obd import OBP_FROM_QHAT, OBP_LAMBDA  # noqa: E402

CASES = {"bts_from_random": ("random", "bts"), "random_from_bts": ("bts", "random")}


def _case(root, name):
    behaviour, target = CASES[name]
    log = load_open_bandit(behaviour, "all", root).log
    pi = bts_action_dist("all", root) if target == "bts" else random_action_dist(80, 3)
    ref = pd.read_csv(root / "open-bandit" / "derived" / f"obp_qhat_full_sample_{name}.csv")
    return log, pi, ref


def test_ips_snips_equal_the_anchors(shared_datasets):
    log, pi, _ = _case(shared_datasets, "bts_from_random")
    res = estimate(log, pi, ["ips", "snips"])
    assert abs(res["ips"].value - 0.004566904) <= 1e-9
    assert abs(res["snips"].value - OBP_FROM_QHAT["bts_from_random"]["snips"]) <= 1e-15
    assert abs(res["snips"].value - 0.0047906) <= 5e-8  # the anchor's printed precision
    assert res["ips"].effective_sample_size == pytest.approx(1643, abs=1)


@pytest.mark.parametrize("name", list(CASES))
def test_model_based_estimators_from_the_qhat_files_equal_obp(shared_datasets, name):
    log, pi, ref = _case(shared_datasets, name)
    w = pi[log.action, log.position] / log.pscore
    res = estimate_from_terms(
        log.reward, w, ref.qhat_factual.to_numpy(), ref.qhat_pi_e.to_numpy(), DEFAULT_ESTIMATORS
    )
    for est, value in OBP_FROM_QHAT[name].items():
        assert abs(res[est].value - value) <= 1e-12, est
    for est, lam in OBP_LAMBDA[name].items():
        assert res[est].extra["lambda"] == lam


@pytest.mark.parametrize("name", list(CASES))
def test_own_reference_model_within_five_percent_of_obp(shared_datasets, name):
    log, pi, _ = _case(shared_datasets, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random_from_bts: one (item, position) never logged
        res = estimate(log, pi, DEFAULT_ESTIMATORS, reward_model="reference")
    for est, value in OBP_FROM_QHAT[name].items():
        assert res[est].value == pytest.approx(value, rel=0.05), est
    assert np.isfinite([r.ci_low for r in res.values()]).all()
