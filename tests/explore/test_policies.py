"""Exploration policies: exact vs simulated propensities, validity, determinism, state, specs."""

from __future__ import annotations

import numpy as np
import pytest

from lumenrec.errors import ConfigError, DataError
from lumenrec.explore import POLICY_NAMES, Policy, PolicyContext, Slate, make_policy
from lumenrec.explore._propensity import epsilon_greedy_marginals, plackett_luce_first_two

N, K, D = 8, 3, 5


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    cand = rng.choice(50, size=N, replace=False).astype(np.int32)
    scores = rng.normal(size=N).astype(np.float32)
    ctx = PolicyContext(
        user_vector=rng.normal(size=D).astype(np.float32),
        item_vectors=rng.normal(size=(N, D)).astype(np.float32),
    )
    return cand, scores, ctx


def _trained(spec: str):
    """A policy with some feedback in its state (so stateful propensities are non-trivial)."""
    pol = make_policy(spec)
    cand, scores, ctx = _problem(1)
    rng = np.random.default_rng(5)
    for t in range(30):
        i = t % N
        pol.update(
            int(cand[i]),
            float(rng.random() < 0.5),
            position=t % K,
            context=ctx,
            item_vector=ctx.item_vectors[i],
        )
    return pol


def _mc(pol, cand, scores, ctx, n=20_000, seed=3):
    rng = np.random.default_rng(seed)
    pos = {int(c): i for i, c in enumerate(cand)}
    counts = np.zeros((N, K))
    for _ in range(n):
        items = pol.rank(cand, scores, K, rng=rng, context=ctx)
        counts[[pos[int(i)] for i in items], np.arange(K)] += 1
    return counts / n


@pytest.mark.parametrize("spec", POLICY_NAMES)
def test_slate_and_propensity_matrix_are_valid(spec):
    pol = _trained(spec)
    assert isinstance(pol, Policy)
    cand, scores, ctx = _problem()
    slate = pol.select(cand, scores, K, rng=np.random.default_rng(0), context=ctx)
    assert isinstance(slate, Slate)
    assert slate.items.dtype == np.int32 and slate.items.shape == (K,)
    assert len(set(slate.items.tolist())) == K and set(slate.items) <= set(cand)
    assert ((slate.propensities > 0) & (slate.propensities <= 1)).all()
    assert slate.exploratory.dtype == np.bool_ and slate.method in ("exact", "simulated")
    probs, method, se = pol.position_propensities(
        cand, scores, K, context=ctx, rng=np.random.default_rng(1), n_samples=2000
    )
    assert probs.shape == (N, K) and method == slate.method
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-9)
    assert (probs.sum(axis=1) <= 1 + 1e-9).all()
    assert (se == 0.0) == (method == "exact")


@pytest.mark.parametrize("spec", POLICY_NAMES)
def test_fixed_rng_is_deterministic(spec):
    pol = _trained(spec)
    cand, scores, ctx = _problem()
    a = pol.select(cand, scores, K, rng=np.random.default_rng(9), context=ctx)
    b = pol.select(cand, scores, K, rng=np.random.default_rng(9), context=ctx)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.propensities, b.propensities)
    r = pol.rank(cand, scores, K, rng=np.random.default_rng(9), context=ctx)
    np.testing.assert_array_equal(r, a.items)


@pytest.mark.parametrize("spec", POLICY_NAMES)
def test_state_round_trip(spec):
    pol = _trained(spec)
    state = pol.get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    fresh = make_policy({"name": spec, "params": pol.params()})
    fresh.set_state({k: v.copy() for k, v in state.items()})
    cand, scores, ctx = _problem()
    p1 = pol.position_propensities(cand, scores, K, context=ctx, n_samples=500)[0]
    p2 = fresh.position_propensities(cand, scores, K, context=ctx, n_samples=500)[0]
    np.testing.assert_allclose(p1, p2, atol=1e-12)


@pytest.mark.parametrize(("n", "k", "eps"), [(6, 4, 0.3), (9, 5, 0.7), (4, 4, 1.0), (7, 2, 0.0)])
def test_epsilon_greedy_exact_matches_monte_carlo(n, k, eps):
    exact = epsilon_greedy_marginals(n, k, eps)
    np.testing.assert_allclose(exact.sum(axis=0), 1.0, atol=1e-12)
    rng = np.random.default_rng(0)
    draws = 40_000
    counts = np.zeros((n, k))
    for _ in range(draws):  # the policy's own sampler, vectorised over positions by hand
        left = list(range(n))
        for j in range(k):
            counts[left.pop(int(rng.integers(len(left))) if rng.random() < eps else 0), j] += 1
    se = np.sqrt(exact * (1 - exact) / draws) + 1e-12
    assert (np.abs(counts / draws - exact) <= 4.5 * se).all()


def test_epsilon_greedy_policy_matches_its_exact_propensities():
    pol = make_policy("epsilon-greedy(epsilon=0.4)")
    cand, scores, _ = _problem()
    exact, method, se = pol.position_propensities(cand, scores, K)
    assert method == "exact" and se == 0.0
    mc = _mc(pol, cand, scores, None)
    assert np.abs(mc - exact).max() < 0.015


def test_epsilon_decay_counts_updates():
    pol = make_policy("epsilon-greedy(epsilon=0.5,decay=0.1)")
    for _ in range(10):
        pol.update(1, 0.0)
    assert pol.current_epsilon == pytest.approx(0.25)


def test_softmax_exact_positions_and_simulated_rest():
    pol = make_policy("softmax(temperature=0.7)")
    cand, scores, _ = _problem()
    two, method, _ = pol.position_propensities(cand, scores, 2)
    assert method == "exact"
    mc = _mc(pol, cand, scores, None)
    assert np.abs(mc[:, :2] - two).max() < 0.015
    sim, method, se = pol.position_propensities(cand, scores, K, n_samples=20_000)
    assert method == "simulated" and 0 < se < 0.01
    np.testing.assert_allclose(sim[:, :2], two, atol=1e-12)
    assert np.abs(sim[:, 2] - mc[:, 2]).max() < 0.02


def test_plackett_luce_second_position_closed_form():
    w = np.array([3.0, 1.0, 0.5, 2.0])
    got = plackett_luce_first_two(w, 2)[:, 1]
    want = [
        sum(w[a] / w.sum() * w[c] / (w.sum() - w[a]) for a in range(4) if a != c) for c in range(4)
    ]
    np.testing.assert_allclose(got, want, atol=1e-14)


@pytest.mark.parametrize("spec", ["thompson(prior_strength=4)", "lin-ts(v=1.0)"])
def test_simulated_propensities_match_monte_carlo(spec):
    pol = _trained(spec)
    cand, scores, ctx = _problem()
    sim, method, se = pol.position_propensities(cand, scores, K, context=ctx, n_samples=20_000)
    assert method == "simulated"
    mc = _mc(pol, cand, scores, ctx, n=8000)
    assert np.abs(sim - mc).max() < 6 * max(se, np.sqrt(0.25 / 8000))


def test_greedy_and_linucb_are_deterministic_with_propensity_one():
    cand, scores, ctx = _problem()
    for spec in ("greedy", "linucb", "ucb"):
        slate = make_policy(spec).select(cand, scores, K, rng=np.random.default_rng(0), context=ctx)
        assert (slate.propensities == 1.0).all() and slate.method == "exact"
    greedy = make_policy("greedy").select(cand, scores, K, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(greedy.items, cand[np.argsort(-scores)[:K]])
    assert not greedy.exploratory.any()


def test_thompson_prior_follows_scores_and_state_grows():
    pol = make_policy("thompson(prior_strength=1000)")
    cand = np.array([3, 7, 11], dtype=np.int32)
    slate = pol.select(
        cand, np.array([5.0, -5.0, 0.0], np.float32), 3, rng=np.random.default_rng(0)
    )
    np.testing.assert_array_equal(slate.items, [3, 11, 7])
    pol.update(40, 1.0, position=2)
    assert pol.get_state()["successes"].shape == (41,)
    # a non-click low in the slate counts as less than one failure
    pol.update(3, 0.0, position=3)
    assert 0 < pol.get_state()["failures"][3] < 1


def test_linear_policy_needs_context():
    cand, scores, _ = _problem()
    with pytest.raises(DataError, match="context"):
        make_policy("lin-ts").select(cand, scores, K, rng=np.random.default_rng(0))
    with pytest.raises(DataError, match="item_vector"):
        make_policy("linucb").update(1, 1.0)


def test_bad_candidates():
    pol = make_policy("greedy")
    with pytest.raises(DataError, match="duplicate"):
        pol.select(
            np.array([1, 1], np.int32), np.zeros(2, np.float32), 1, rng=np.random.default_rng()
        )
    with pytest.raises(DataError, match="finite"):
        pol.select(
            np.array([1, 2], np.int32),
            np.array([0, np.nan], np.float32),
            1,
            rng=np.random.default_rng(),
        )


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("bandit", "valid names"),
        ("softmax(temp=1)", r"valid: \['temperature'\]"),
        ("epsilon-greedy(epsilon=2)", "epsilon must lie in"),
        ("softmax(temperature=hot)", "temperature must be a number"),
        ("thompson(prior=beta)", "prior must be"),
        ("lin-ts(v=1", "closing"),
        ("ucb(c)", "name=value"),
        (42, "string or a mapping"),
    ],
)
def test_bad_specs(spec, match):
    with pytest.raises(ConfigError, match=match):
        make_policy(spec)


def test_spec_forms_and_params():
    pol = make_policy("Epsilon_Greedy( epsilon = 0.2 , decay=0.5 )")
    assert pol.params() == {"epsilon": 0.2, "decay": 0.5}
    assert make_policy({"name": "softmax", "temperature": 2}).params() == {"temperature": 2.0}
    assert make_policy("lin-ts(features=item)").params()["features"] == "item"


# -- warm start of the linear policies -------------------------------------------------------


def test_warm_start_recovers_planted_weights_and_matches_updates():
    rng = np.random.default_rng(0)
    n, d = 20_000, 4
    items = rng.normal(size=(n, d))
    theta = np.array([0.5, -0.3, 0.2, 0.1, 0.05])  # last = bias
    rewards = np.hstack([items, np.ones((n, 1))]) @ theta + rng.normal(0, 0.1, n)
    pol = make_policy("linucb(features=item,position_model=none)")
    pol.warm_start(items, None, rewards)
    np.testing.assert_allclose(pol.theta, theta, atol=0.01)
    # one batch == one update() per row; weight w == each row w times
    users = rng.normal(size=(50, d))
    pos = rng.integers(0, 4, 50)
    batch, seq = make_policy("lin-ts"), make_policy("lin-ts")
    batch.warm_start(items[:50], users, rewards[:50], positions=pos, weight=2.0)
    for _ in range(2):
        for i in range(50):
            ctx = PolicyContext(user_vector=users[i])
            seq.update(0, rewards[i], position=int(pos[i]), context=ctx, item_vector=items[i])
    for key in ("A", "b"):
        np.testing.assert_allclose(batch.get_state()[key], seq.get_state()[key], rtol=1e-10)
    np.testing.assert_allclose(batch.theta, seq.theta, rtol=1e-6, atol=1e-9)


def test_warm_start_state_round_trip():
    rng = np.random.default_rng(1)
    pol = make_policy("lin-ts(v=0.3)")
    pol.warm_start(rng.normal(size=(300, D)), rng.normal(size=(300, D)), rng.random(300) < 0.3)
    fresh = make_policy({"name": "lin-ts", "params": pol.params()})
    fresh.set_state({k: v.copy() for k, v in pol.get_state().items()})
    np.testing.assert_allclose(fresh.theta, pol.theta, rtol=1e-9)
    cand, scores, ctx = _problem()
    p1 = pol.position_propensities(cand, scores, K, context=ctx, n_samples=500)[0]
    p2 = fresh.position_propensities(cand, scores, K, context=ctx, n_samples=500)[0]
    np.testing.assert_allclose(p1, p2, atol=1e-12)


@pytest.mark.parametrize("spec", ["linucb(alpha=0.1)", "lin-ts(v=0.05)"])
def test_warm_started_policy_ranks_a_planted_good_new_item_first(spec):
    """Clicks depend on the item text's first direction and its match with the user; after
    known-item feedback alone the policy puts the best *new* item first on round 1."""
    rng = np.random.default_rng(2)
    d, n = 6, 4000

    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def click_p(item, user):
        return np.clip(0.25 + 0.2 * item[..., 0] + 0.3 * (item * user).sum(-1), 0.01, 0.99)

    known, users = unit(rng.normal(size=(n, d))), unit(rng.normal(size=(n, d)))
    pos = rng.integers(0, 5, n)
    exam = 1.0 / np.log2(pos + 2)
    clicks = (rng.random(n) < exam * click_p(known, users)).astype(float)
    user = unit(rng.normal(size=d))
    new = unit(rng.normal(size=(8, d)))
    new[3] = unit(np.eye(d)[0] + user)  # the planted good new item
    truth = click_p(new, user)
    assert truth.argmax() == 3
    cand = np.arange(100, 108, dtype=np.int32)
    scores = -np.arange(8, dtype=np.float32)  # the recommender's order would put it 4th
    ctx = PolicyContext(user_vector=user, item_vectors=new)

    def first(pol, seed):
        return pol.rank(cand, scores, 3, rng=np.random.default_rng(seed), context=ctx)[0]

    cold = make_policy(spec)
    pol = make_policy(spec)
    pol.warm_start(known, users, clicks, positions=pos)
    assert all(first(pol, s) == cand[3] for s in range(10))  # round 1, no feedback on it
    assert sum(first(cold, s) == cand[3] for s in range(10)) < 5  # cold: ties / wide draws


def test_warm_start_bad_inputs():
    pol = make_policy("linucb")
    with pytest.raises(DataError, match="rewards"):
        pol.warm_start(np.ones((3, D)), None, np.ones(2))
    with pytest.raises(DataError, match="positions"):
        pol.warm_start(np.ones((3, D)), None, np.ones(3), positions=np.array([0, -1, 0]))
    with pytest.raises(DataError, match="user vectors"):
        pol.warm_start(np.ones((3, D)), np.ones((2, D)), np.ones(3))
    with pytest.raises(ConfigError, match="weight"):
        pol.warm_start(np.ones((3, D)), None, np.ones(3), weight=-1.0)
