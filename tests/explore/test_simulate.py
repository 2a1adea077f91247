"""Replay evaluator, Bernoulli bandit and the semi-synthetic new-items environment."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError
from lumenrec.explore import PolicyContext, make_policy
from lumenrec.explore.simulate import (
    loglog_slope,
    make_new_items_environment,
    replay,
    run_bernoulli_bandit,
    run_environment,
)


def _uniform_log(n_events: int, means: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    actions = rng.integers(means.size, size=n_events)
    rewards = (rng.random(n_events) < means[actions]).astype(float)
    return actions, rewards


def test_replay_of_a_fixed_policy_is_unbiased():
    means = np.array([0.1, 0.6, 0.3, 0.2])
    actions, rewards = _uniform_log(20_000, means, 0)
    cand = np.arange(4, dtype=np.int32)
    scores = np.array([0.0, 0.0, 1.0, 0.0], np.float32)  # greedy always shows arm 2
    res = replay(
        make_policy("greedy"), actions, rewards, candidates=cand, scores=scores,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    assert res.n_events == 20_000 and abs(res.n_matched - 5000) < 300
    assert abs(res.value - 0.3) < 3 * res.standard_error + 1e-3
    assert res.curve.shape == (res.n_matched,)


def test_replay_learning_policy_finds_the_best_arm():
    means = np.array([0.1, 0.6, 0.3, 0.2])
    actions, rewards = _uniform_log(8000, means, 1)
    res = replay(
        make_policy("thompson(prior_strength=0)"), actions, rewards,
        candidates=np.arange(4, dtype=np.int32), rng=np.random.default_rng(0),
    )  # fmt: skip
    assert res.value > 0.5  # near the best arm's 0.6 (random would give 0.3)


def test_replay_per_event_candidates_positions_and_contexts():
    rng = np.random.default_rng(2)
    n = 300
    cands = [rng.choice(20, size=5, replace=False).astype(np.int32) for _ in range(n)]
    actions = np.array([c[rng.integers(5)] for c in cands])
    ctx = [PolicyContext(item_vectors=np.eye(20, dtype=np.float32)[c]) for c in cands]
    res = replay(
        make_policy("linucb(features=item)"), actions, rng.random(n), candidates=cands,
        positions=rng.integers(0, 2, size=n), contexts=ctx, rng=np.random.default_rng(0),
    )  # fmt: skip
    assert 0 < res.n_matched < n


def test_replay_rejects_non_uniform_logs_and_foreign_actions():
    cand = np.arange(4, dtype=np.int32)
    with pytest.raises(DataError, match="uniformly random"):
        replay(
            make_policy("greedy"), np.array([0, 1]), np.array([1.0, 0.0]), candidates=cand,
            propensities=np.array([0.25, 0.5]), rng=np.random.default_rng(0),
        )  # fmt: skip
    with pytest.raises(DataError, match="not among"):
        replay(
            make_policy("greedy"), np.array([7]), np.array([1.0]), candidates=cand,
            rng=np.random.default_rng(0),
        )  # fmt: skip


@pytest.mark.parametrize("spec", ["thompson(prior_strength=0)", "linucb(features=item)"])
def test_bernoulli_bandit_concentrates_on_the_best_arm(spec):
    means = np.array([0.2, 0.3, 0.7, 0.4])
    res = run_bernoulli_bandit(make_policy(spec), means, 3000, rng=np.random.default_rng(0))
    assert res["best_arm"] == 2 and res["best_arm_share"] >= 0.9
    assert res["loglog_slope"] < 1.0
    assert res["regret"].shape == (3000,)


def test_loglog_slope():
    t = np.arange(1, 1001, dtype=float)
    assert loglog_slope(t, 3 * t) == pytest.approx(1.0)
    assert loglog_slope(t, np.sqrt(t)) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def env():
    rng = np.random.default_rng(0)
    n_users, n_items, d = 60, 80, 6
    taste = rng.normal(size=(n_users, d))
    style = rng.normal(size=(n_items, d))
    logits = taste @ style.T
    x = sp.csr_matrix((logits > np.quantile(logits, 0.8)).astype(np.float32))
    return make_new_items_environment(
        x, style, n_new=8, min_ratings=5, arrival_rounds=(0, 50), n_candidates=10,
        regularization=10.0, rng=np.random.default_rng(1),
    )  # fmt: skip


def test_environment_shapes_and_truth(env):
    n_users, n_items = env.click_prob.shape
    assert env.new_items.size == 8 and set(env.arrival[env.new_items]) == {0, 50}
    assert env.known_top.shape == (n_users, 10)
    assert not np.isin(env.known_top, env.new_items).any()
    p = env.click_prob[~np.isnan(env.click_prob)]
    assert p.min() >= 0.005 and p.max() <= 0.95
    np.testing.assert_allclose(np.linalg.norm(env.user_vectors, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("mode", ["mixed", "new-only"])
def test_run_environment_is_seeded_and_consistent(env, mode):
    def run(spec: str) -> dict:
        return run_environment(
            env, make_policy(spec), 200, k=3, candidates=mode,
            env_rng=np.random.default_rng(5), policy_rng=np.random.default_rng(6), n_points=20,
        )  # fmt: skip

    a, b = run("lin-ts"), run("lin-ts")
    assert a == b
    assert a["regret"] >= -1e-9 and a["oracle_reward"] >= a["expected_reward"]
    assert len(a["curve"]["round"]) == 20 and a["curve"]["round"][-1] == 200
    assert a["new_item_reward"] <= a["reward"]
    greedy = run("greedy")
    if mode == "mixed":  # greedy never shows a new item (they have the median score)
        assert greedy["new_item_impressions"] == 0
    else:
        assert greedy["new_item_impressions"] == greedy["curve"]["new_item_impressions"][-1] > 0


def test_run_environment_bad_mode(env):
    with pytest.raises(ConfigError, match="candidates"):
        run_environment(
            env, make_policy("greedy"), 5, candidates="all",
            env_rng=np.random.default_rng(0), policy_rng=np.random.default_rng(0),
        )  # fmt: skip


def test_known_item_feedback(env):
    from lumenrec.explore.simulate import known_item_feedback

    for pool in ("candidates", "catalogue"):
        fb = known_item_feedback(env, 500, k=3, pool=pool, rng=np.random.default_rng(4))
        again = known_item_feedback(env, 500, k=3, pool=pool, rng=np.random.default_rng(4))
        np.testing.assert_array_equal(fb.rewards, again.rewards)
        assert fb.items.shape == fb.users.shape == fb.positions.shape == fb.rewards.shape == (500,)
        assert (env.arrival[fb.items] == -1).all()  # known items only
        assert not np.isnan(env.click_prob[fb.users, fb.items]).any()  # never a rated pair
        assert fb.positions.max() < 3 and set(np.unique(fb.rewards)) <= {0.0, 1.0}
        if pool == "candidates":
            assert all(i in env.known_top[u] for u, i in zip(fb.users, fb.items, strict=True))
    with pytest.raises(ConfigError, match="pool"):
        known_item_feedback(env, 5, pool="all", rng=np.random.default_rng(0))


def test_run_environment_warm_start(env):
    from lumenrec.explore.simulate import known_item_feedback, warm_start_policy

    fb = known_item_feedback(env, 2000, pool="catalogue", rng=np.random.default_rng(7))

    def run(spec: str, warm=None, weight: float = 1.0) -> dict:
        return run_environment(
            env, make_policy(spec), 150, k=3, candidates="new-only", env_rng=np.random.default_rng(5),
            policy_rng=np.random.default_rng(6), n_points=10, warm_start=warm,
            warm_start_weight=weight,
        )  # fmt: skip

    # the linear model learns from known items; per-item Thompson cannot use them on new items
    assert run("linucb", fb) != run("linucb")
    assert run("linucb", fb, 0.5) != run("linucb", fb)
    assert run("thompson(prior_strength=0)", fb) == run("thompson(prior_strength=0)")
    pol = make_policy("lin-ts")
    warm_start_policy(pol, env, fb, weight=0.5)
    assert pol.get_state()["A"].shape[0] == 2 * env.item_vectors.shape[1] + 1
    with pytest.raises(ConfigError, match="weight"):
        warm_start_policy(make_policy("thompson"), env, fb, weight=0.5)
