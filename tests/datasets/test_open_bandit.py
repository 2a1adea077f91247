"""Open Bandit Dataset loader: the P6 preparation, targets and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lumenrec.datasets.open_bandit import (
    bts_action_dist,
    load_open_bandit,
    on_policy_value,
    random_action_dist,
)
from lumenrec.errors import ConfigError, DataError


def test_prepared_like_obp(shared_datasets):
    obd = load_open_bandit("random", "all", shared_datasets)
    log = obd.log
    assert (log.n, log.n_actions, log.n_positions) == (10000, 80, 3)
    assert log.context.shape == (10000, 20) and set(np.unique(log.context)) == {0.0, 1.0}
    assert log.action_context.shape == (80, 4)
    assert log.action_context[:, :3].max(0).tolist() == [11, 20, 6]  # 12/21/7 levels
    assert np.allclose(log.pscore, 0.0125) and log.position.max() == 2
    ref = pd.read_csv(
        shared_datasets / "open-bandit/derived/obp_qhat_full_sample_bts_from_random.csv"
    )
    assert (ref.row_id.to_numpy() == obd.row_id).all()  # obp's timestamp order
    assert (ref.click.to_numpy() == log.reward).all()
    assert obd.sha256.startswith("7168295b")


def test_truths_and_targets(shared_datasets):
    assert on_policy_value("bts", "all", shared_datasets) == pytest.approx(0.0042)
    assert on_policy_value("random", "all", shared_datasets) == pytest.approx(0.0038)
    dist = bts_action_dist("all", shared_datasets)
    assert dist.shape == (80, 3) and np.allclose(dist.sum(0), 1.0)
    assert random_action_dist(80, 3)[5, 2] == 1 / 80


def test_bts_simulation_repeats_obps_draw_loop(shared_datasets):
    prior = pd.read_csv(shared_datasets / "open-bandit/derived/bts_production_prior.csv")
    prior = prior[prior.campaign == "men"].sort_values("item_id")
    rs = np.random.RandomState(7)
    counts = np.zeros((len(prior), 3))
    for _ in range(300):  # obp's BernoulliTS.compute_batch_action_dist, one draw at a time
        theta = rs.beta(a=prior.alpha.to_numpy() + 0.0, b=prior.beta.to_numpy() + 0.0)
        for k, a in enumerate(theta.argsort()[::-1][:3]):
            counts[a, k] += 1
    ours = bts_action_dist("men", shared_datasets, n_sim=300, random_state=7, chunk=128)
    assert np.array_equal(ours, counts / 300)


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown OBD policy 'greedy'"):
        load_open_bandit("greedy", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="campaign"):
        load_open_bandit("bts", "kids", data_dir=tmp_path)
    with pytest.raises(DataError, match="Open Bandit Dataset not found"):
        load_open_bandit("bts", "all", data_dir=tmp_path)
    (tmp_path / "bts" / "all").mkdir(parents=True)
    (tmp_path / "bts" / "all" / "all.csv").write_text(",timestamp,item_id\n0,t,1\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['position', 'click'"):
        load_open_bandit("bts", "all", data_dir=tmp_path)
