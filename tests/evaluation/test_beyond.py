"""Tests for lumenrec.evaluation.beyond: hand-computed values and brute-force references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lumenrec.errors import ConfigError, DataError
from lumenrec.evaluation.beyond import (
    catalog_coverage,
    exposure_by_group,
    gini_exposure,
    intra_list_diversity,
    novelty,
    popularity_bias,
)

NAN = float("nan")


# ----------------------------------------------------------------------------- coverage / gini

RANKED = np.array([[0, 1, 2], [0, 1, -1], [0, 3, 4]], dtype=np.int32)


def test_catalog_coverage_hand() -> None:
    assert catalog_coverage(RANKED, 5, 1) == 1 / 5  # {0}
    assert catalog_coverage(RANKED, 5, 2) == 3 / 5  # {0, 1, 3}
    assert catalog_coverage(RANKED, 5, 3) == 5 / 5
    assert catalog_coverage(RANKED, 10, 50) == 5 / 10  # k > k_max
    assert catalog_coverage(np.full((2, 3), -1), 4, 3) == 0.0


def test_gini_hand() -> None:
    # top-2 exposure counts: item0 3, item1 2, item3 1, items 2 and 4: 0 -> sorted [0,0,1,2,3]
    # G = sum (2i - n - 1) x_i / (n sum x) = (0*-4 + 0*-2 + 1*0 + 2*2 + 3*4) / (5 * 6) = 16/30
    assert gini_exposure(RANKED, 5, 2) == pytest.approx(16 / 30, abs=1e-15)
    # every item exactly once -> perfectly equal
    assert gini_exposure(np.array([[0, 1], [2, 3]]), 4, 2) == pytest.approx(0.0, abs=1e-15)
    # all exposure on one item of 4 -> (n - 1) / n
    assert gini_exposure(np.array([[2], [2], [2]]), 4, 1) == pytest.approx(3 / 4, abs=1e-15)
    assert gini_exposure(np.array([[0]]), 1, 1) == 0.0
    assert math.isnan(gini_exposure(np.full((2, 2), -1), 3, 2))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_gini_matches_mean_absolute_difference(data: st.DataObject) -> None:
    n_items = data.draw(st.integers(1, 12))
    ranked = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(-1, n_items - 1), min_size=4, max_size=4),
                min_size=1,
                max_size=6,
            )
        ),
        dtype=np.int32,
    )
    k = data.draw(st.integers(1, 5))
    x = np.bincount(ranked[:, :k][ranked[:, :k] >= 0], minlength=n_items).astype(float)
    got = gini_exposure(ranked, n_items, k)
    if x.sum() == 0:
        assert math.isnan(got)
        return
    # G = sum_ij |x_i - x_j| / (2 n^2 mean(x))
    ref = np.abs(x[:, None] - x[None, :]).sum() / (2 * n_items**2 * x.mean())
    assert got == pytest.approx(ref, abs=1e-12)
    assert 0.0 <= got <= (n_items - 1) / n_items + 1e-12


# ----------------------------------------------------------------------------- novelty / popularity

POP_RANKED = np.array([[0, 1], [2, 3], [4, -1], [-1, -1]], dtype=np.int32)


def test_novelty_hand() -> None:
    counts = np.array([10, 5, 0, 1, 2])  # n_users = 10; item 2 (count 0) is clipped to 1
    got = novelty(POP_RANKED, counts, 2, n_users=10)
    expected = [
        (-math.log2(10 / 10) - math.log2(5 / 10)) / 2,  # (0 + 1) / 2
        (-math.log2(1 / 10) - math.log2(1 / 10)) / 2,  # log2(10)
        -math.log2(2 / 10),  # log2(5)
        NAN,
    ]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(novelty(POP_RANKED, counts, 1, n_users=10)[0], 0.0)


def test_popularity_bias_hand() -> None:
    # ascending popularity ranks (ties averaged): item2 1, item4 2, items 1 and 3 3.5, item0 5
    # percentile (rank - 1) / (n - 1): item2 0, item4 .25, items 1, 3 .625, item0 1
    pop = np.array([10, 5, 0, 5, 2])
    got = popularity_bias(POP_RANKED, pop, 2)
    np.testing.assert_allclose(got, [(1 + 0.625) / 2, (0 + 0.625) / 2, 0.25, NAN], atol=1e-15)
    np.testing.assert_allclose(popularity_bias(np.array([[0]]), [7], 1), [0.5])


def test_novelty_and_popularity_errors() -> None:
    with pytest.raises(DataError, match="larger than n_users"):
        novelty(POP_RANKED, [11, 1, 1, 1, 1], 2, n_users=10)
    with pytest.raises(DataError, match="non-negative"):
        novelty(POP_RANKED, [1, -1, 1, 1, 1], 2, n_users=10)
    with pytest.raises(ConfigError, match="n_users"):
        novelty(POP_RANKED, [1, 1, 1, 1, 1], 2, n_users=0)
    with pytest.raises(DataError, match="item index 4"):
        popularity_bias(POP_RANKED, [1, 2, 3], 2)
    with pytest.raises(ConfigError, match=r"k must be a positive int \(got 0\)"):
        popularity_bias(POP_RANKED, [1, 2, 3, 4, 5], 0)


# ----------------------------------------------------------------------------- diversity

EMB = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-3.0, 0.0], [0.0, 0.0]])


def test_intra_list_diversity_dense_hand() -> None:
    ranked = np.array([[0, 1, 2], [0, 3, -1], [0, -1, -1], [0, 4, 1], [2, 2, -1]])
    got = intra_list_diversity(ranked, EMB, 3)
    expected = [
        1 - (0 + 1 / math.sqrt(2) + 1 / math.sqrt(2)) / 3,  # cos(0,1)=0, cos(0,2)=cos(1,2)=1/sqrt2
        1 - (-1.0),  # opposite vectors
        NAN,  # fewer than 2 items
        1 - 0.0,  # zero vector (item 4) has similarity 0 to everything
        1 - 1.0,  # a repeated item is identical to itself
    ]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(intra_list_diversity(ranked, EMB, 2)[0], 1.0)  # items 0, 1


def test_intra_list_diversity_sparse_features_hand() -> None:
    # co-occurrence style columns: cos(0,1) = 1/2, cos(0,2) = 1/sqrt2, cos(1,2) = 0
    feats = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    got = intra_list_diversity(np.array([[0, 1, 2]]), feats, 3)
    np.testing.assert_allclose(got, [1 - (0.5 + 1 / math.sqrt(2) + 0.0) / 3], atol=1e-12)


def test_intra_list_diversity_matches_pairwise_loop() -> None:
    rng = np.random.default_rng(0)
    n_items, k = 30, 6
    dense = rng.random((n_items, 8)) * (rng.random((n_items, 8)) < 0.4)
    ranked = rng.integers(-1, n_items, size=(40, 8)).astype(np.int32)
    got_dense = intra_list_diversity(ranked, dense, k)
    got_sparse = intra_list_diversity(ranked, sp.csr_matrix(dense), k)
    norms = np.linalg.norm(dense, axis=1)
    unit = dense / np.where(norms > 0, norms, 1.0)[:, None]
    for u in range(ranked.shape[0]):
        items = [i for i in ranked[u, :k] if i >= 0]
        sims = [unit[a] @ unit[b] for a, b in itertools.combinations(items, 2)]
        ref = 1 - np.mean(sims) if sims else NAN
        np.testing.assert_allclose([got_dense[u], got_sparse[u]], [ref, ref], atol=1e-12)


def test_intra_list_diversity_errors() -> None:
    with pytest.raises(DataError, match="finite"):
        intra_list_diversity(np.array([[0, 1]]), np.array([[1.0, NAN], [1.0, 0.0]]), 2)
    with pytest.raises(DataError, match="item index 2"):
        intra_list_diversity(np.array([[0, 2]]), np.eye(2), 2)
    with pytest.raises(DataError, match="2-D"):
        intra_list_diversity(np.array([[0, 1]]), np.ones(3), 2)


# ----------------------------------------------------------------------------- exposure by group

GROUPS = np.array([0, 0, 1, 1, 2])
GROUP_RANKED = np.array([[0, 2, 4], [1, -1, 3]])


def test_exposure_by_group_hand() -> None:
    np.testing.assert_allclose(exposure_by_group(GROUP_RANKED, GROUPS, 3), [0.4, 0.4, 0.2])
    np.testing.assert_allclose(exposure_by_group(GROUP_RANKED, GROUPS, 2), [2 / 3, 1 / 3, 0.0])
    # position weights 1/log2(rank+1): g0 1 + 1, g1 1/log2(3) + 1/2, g2 1/2
    total = 3 + 1 / math.log2(3)
    expected = np.array([2.0, 1 / math.log2(3) + 0.5, 0.5]) / total
    got = exposure_by_group(GROUP_RANKED, GROUPS, 3, position_weighted=True)
    np.testing.assert_allclose(got, expected, atol=1e-15)
    wide = exposure_by_group(GROUP_RANKED, GROUPS, 3, n_groups=4)
    np.testing.assert_allclose(wide, [0.4, 0.4, 0.2, 0.0])
    assert np.isnan(exposure_by_group(np.full((1, 2), -1), GROUPS, 2)).all()


def test_exposure_by_group_errors() -> None:
    with pytest.raises(DataError, match="non-negative"):
        exposure_by_group(GROUP_RANKED, np.array([0, -1, 1, 1, 2]), 3)
    with pytest.raises(DataError, match="integer"):
        exposure_by_group(GROUP_RANKED, GROUPS.astype(float), 3)
    with pytest.raises(ConfigError, match="n_groups"):
        exposure_by_group(GROUP_RANKED, GROUPS, 3, n_groups=2)
    with pytest.raises(DataError, match="item index 4"):
        exposure_by_group(GROUP_RANKED, GROUPS[:3], 3)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_bad_n_items(bad: object) -> None:
    with pytest.raises(ConfigError, match="n_items must be a positive int"):
        catalog_coverage(RANKED, bad, 2)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_items"):
        gini_exposure(RANKED, bad, 2)  # type: ignore[arg-type]


def test_longtail_share_and_provider_gini_by_hand():
    from lumenrec.evaluation.beyond import longtail_share, provider_gini

    popularity = np.array([50, 40, 3, 2, 1, 0, 0, 0, 0, 0])  # head (20%) = items 0, 1
    ranked = np.array([[0, 2, 3, -1], [1, 0, 5, 6]])
    # top-3 slots: user 0 -> 0, 2, 3; user 1 -> 1, 0, 5: 3 tail of 6
    assert longtail_share(ranked, popularity, 3) == pytest.approx(0.5)
    providers = np.array([0, 0, 1, 1, -1, 1, 1, 2, 2, 2])
    # position weights 1, 1/log2(3), 1/2 per rank
    w = np.array([1.0, 1 / np.log2(3), 0.5])
    exposure = np.array([w[0] + w[0] + w[1], w[1] + w[2] + w[2], 0.0])
    share = np.sort(exposure / exposure.sum())
    n = 3
    expected = ((2 * np.arange(1, n + 1) - n - 1) @ share) / (n * share.sum())
    assert provider_gini(ranked, providers, 3) == pytest.approx(expected)
    assert np.isnan(provider_gini(ranked, -np.ones(10, int), 3))
