"""Provider exposure, popularity targets and FA*IR: constraints, feasibility, identities."""

from __future__ import annotations

import numpy as np
import pytest

from lumenrec.errors import ConfigError, DataError
from lumenrec.rerank import (
    FAIR,
    Candidates,
    ItemFeatures,
    PopularityExposure,
    ProviderExposure,
    popularity_buckets,
)
from lumenrec.rerank._mtable import adjusted_alpha, fail_probability, mtable
from lumenrec.rerank._util import exposure_weights


def _shares(items, groups, k):
    w = exposure_weights(k)
    g = groups[items[:k]]
    return {int(x): float(w[g == x].sum() / w.sum()) for x in np.unique(g)}


@pytest.mark.parametrize(
    "stage",
    [ProviderExposure(0.0), PopularityExposure(0.0), FAIR(0.0)],
)
def test_zero_weight_is_identity(stage, cands, features):
    out = stage.rerank(cands, 10, features)
    np.testing.assert_array_equal(out.items, cands.items)
    assert out.feasible


def test_provider_cap_met_at_lambda_one():
    # 40 candidates: the 20 best all from provider 0, then providers 1..4
    prov = np.array([0] * 20 + [1, 2, 3, 4] * 5, dtype=np.int32)
    feats = ItemFeatures(popularity=np.ones(40), providers=prov)
    cands = Candidates(np.arange(40), np.linspace(1, 0, 40))
    out = ProviderExposure(1.0, max_share=0.3).rerank(cands, 10, feats)
    assert out.feasible
    assert max(_shares(out.items, prov, 10).values()) <= 0.3 + 1e-9
    assert out.items[0] == 0  # the best item still leads
    softer = ProviderExposure(0.3, max_share=0.3).rerank(cands, 10, feats)
    s_soft = _shares(softer.items, prov, 10)[0]
    assert _shares(cands.items, prov, 10)[0] == 1.0 > s_soft >= _shares(out.items, prov, 10)[0]


def test_provider_min_share_inserts_protected_late():
    prov = np.array([0] * 30 + [1] * 10, dtype=np.int32)
    popularity = np.array([100.0] * 30 + [1.0] * 10)
    feats = ItemFeatures(popularity=popularity, providers=prov)
    cands = Candidates(np.arange(40), np.linspace(1, 0, 40))
    out = ProviderExposure(1.0, max_share=None, min_share=0.25).rerank(cands, 10, feats)
    assert out.feasible
    assert _shares(out.items, prov, 10)[1] >= 0.25 - 1e-9
    assert out.items[:6].tolist() == [0, 1, 2, 3, 4, 5]  # head of the list untouched
    explicit = ProviderExposure(1.0, None, 0.25, protected_providers=[1]).rerank(cands, 10, feats)
    np.testing.assert_array_equal(explicit.items, out.items)


def test_provider_infeasible_is_flagged_with_best_list():
    prov = np.array([0] * 98 + [1, 1], dtype=np.int32)
    popularity = np.array([100.0] * 98 + [1.0, 1.0])
    feats = ItemFeatures(popularity=popularity, providers=prov)
    cands = Candidates(np.arange(100), np.linspace(1, 0, 100))
    out = ProviderExposure(0.5, max_share=None, min_share=0.5).rerank(cands, 10, feats)
    assert not out.feasible
    assert "only 2 of 100 candidates" in out.notes[0]
    assert set(out.items[:10].tolist()) >= {98, 99}  # the best it could do
    capped = ProviderExposure(1.0, max_share=0.2).rerank(cands, 10, feats)
    assert not capped.feasible and "max share 0.2" in capped.notes[0]


def test_provider_unknown_and_missing(cands, features):
    bare = ItemFeatures(popularity=features.popularity)
    out = ProviderExposure(0.5).rerank(cands, 10, bare)
    np.testing.assert_array_equal(out.items, cands.items)
    assert out.notes
    unknown = ItemFeatures(popularity=features.popularity, providers=np.full(300, -1))
    assert ProviderExposure(1.0).rerank(cands, 10, unknown).feasible


def test_popularity_buckets_and_targets():
    pop = np.array([50, 30, 10, 5, 3, 1, 1, 0], dtype=np.float32)
    assert popularity_buckets(pop, 0.2, 0.2).tolist() == [0, 1, 2, 2, 2, 2, 2, 2]
    assert popularity_buckets(pop, 0.5, 0.05).tolist() == [0, 1, 1, 1, 2, 2, 2, 2]
    n = 40
    popularity = np.r_[np.full(20, 1000.0), np.arange(20, 0, -1, dtype=np.float64)]
    feats = ItemFeatures(popularity=popularity)
    cands = Candidates(np.arange(n), np.linspace(1, 0, n))
    out = PopularityExposure(1.0, {"long_tail": 0.4}).rerank(cands, 10, feats)
    tail = popularity_buckets(popularity) >= 1
    assert out.feasible
    assert _shares(out.items, tail.astype(int), 10).get(1, 0.0) >= 0.4 - 1e-9
    too_much = PopularityExposure(1.0, {"head": 1.0, "tail": 0.9}).rerank(cands, 10, feats)
    assert not too_much.feasible and "not reachable" in too_much.notes[0]
    with pytest.raises(ConfigError, match="unknown popularity bucket"):
        PopularityExposure(0.5, {"torso": 0.2})


def test_mtable_matches_published_example():
    # fairsearchcore README, k=20, p=0.25, alpha=0.1
    assert mtable(20, 0.25, 0.1).tolist() == [0] * 8 + [1] * 6 + [2] * 5 + [3]
    adjusted = mtable(20, 0.25, adjusted_alpha(20, 0.25, 0.1))
    assert adjusted.tolist() == [0] * 8 + [1] * 7 + [2] * 5
    assert fail_probability(adjusted, 0.25) == pytest.approx(0.10515247355215251, rel=1e-9)


def _independent_prefix_ok(items, protected, table):
    """The ranked group fairness test, written from the paper's definition."""
    counts = np.cumsum(protected[items[: table.size]])
    return bool(np.all(counts >= table[: counts.size]))


@pytest.mark.parametrize("seed", range(6))
def test_fair_every_prefix_satisfied(seed):
    rng = np.random.default_rng(seed)
    n_items = 200
    protected = rng.random(n_items) < 0.3
    feats = ItemFeatures(popularity=np.ones(n_items))
    items = rng.permutation(n_items)[:80]
    # protected items ranked low by the base model
    order = np.r_[items[~protected[items]], items[protected[items]]]
    cands = Candidates(order, np.linspace(1, 0, order.size))
    for p, k in ((0.5, 10), (0.3, 25), (0.7, 15)):
        stage = FAIR(p, 0.1, protected=protected)
        out = stage.rerank(cands, k, feats)
        assert out.feasible
        table = stage.table(k)
        assert _independent_prefix_ok(out.items, protected, table)
        # the base list violates it for these p
        assert not _independent_prefix_ok(cands.items, protected, table)
        # each group keeps its own relative order
        top = out.items[:k]
        for flag in (True, False):
            sub = [i for i in top if protected[i] == flag]
            pos = {int(x): j for j, x in enumerate(order)}
            assert [pos[int(i)] for i in sub] == sorted(pos[int(i)] for i in sub)


def test_fair_infeasible_flagged():
    protected = np.zeros(50, dtype=bool)
    protected[49] = True
    feats = ItemFeatures(popularity=np.ones(50))
    cands = Candidates(np.arange(50), np.linspace(1, 0, 50))
    out = FAIR(0.6, 0.1, protected=protected).rerank(cands, 20, feats)
    assert not out.feasible
    assert "only 1 of 50 candidates are protected" in out.notes[0]
    assert 49 in out.items[:20].tolist()  # the one protected item is moved up
    assert sorted(out.items.tolist()) == list(range(50))


def test_fair_long_tail_default_and_errors(cands, features):
    out = FAIR(0.5).rerank(cands, 10, features)
    tail = popularity_buckets(features.popularity, 0.2, 0.0) != 0
    assert _independent_prefix_ok(out.items, tail, FAIR(0.5).table(10)) or not out.feasible
    with pytest.raises(ConfigError, match="FA\\*IR needs"):
        FAIR(0.5, alpha=0.0)
    with pytest.raises(ConfigError, match="long_tail"):
        FAIR(0.5, protected="head")
    with pytest.raises(DataError, match="flags"):
        FAIR(0.5, protected=np.ones(3, bool)).rerank(cands, 10, features)
