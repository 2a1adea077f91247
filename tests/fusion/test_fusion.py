"""Fusion primitives: normalisation, weighted sum, reciprocal rank fusion, weight learning."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError
from lumenrec.fusion.linear import WeightedSum
from lumenrec.fusion.normalize import normalize_scores
from lumenrec.fusion.rrf import ReciprocalRankFusion
from lumenrec.fusion.stacker import fit_weights, simplex_grid

NAN = np.nan


def test_zscore_minmax_rank_are_per_row_and_nan_aware():
    s = np.array([[1.0, 2.0, 3.0, NAN], [5.0, 5.0, 5.0, 5.0]], np.float32)
    z = normalize_scores(s, "zscore")
    np.testing.assert_allclose(z[0, :3], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    assert np.isnan(z[0, 3]) and np.all(z[1] == 0)
    m = normalize_scores(s, "minmax")
    np.testing.assert_allclose(m[0, :3], [0, 0.5, 1])
    np.testing.assert_allclose(m[1], 0.5)
    r = normalize_scores(np.array([[10.0, -np.inf, 30.0, 20.0]]), "rank")
    np.testing.assert_allclose(r[0, [0, 2, 3]], [0.0, 1.0, 0.5])
    assert np.isnan(r[0, 1])
    with pytest.raises(ConfigError, match="normalize must be one of"):
        normalize_scores(s, "softmax")


def test_weighted_sum_renormalises_missing_components():
    a = np.array([[1.0, 2.0, 3.0]], np.float32)
    b = np.array([[3.0, NAN, 1.0]], np.float32)
    fused = WeightedSum({"a": 1.0, "b": 1.0}, normalize="none").fuse({"a": a, "b": b})
    # item 1 has only component a: its score is rescaled to the full weight (2 * a)
    np.testing.assert_allclose(fused, [[4.0, 4.0, 4.0]])
    with pytest.raises(DataError, match="missing"):
        WeightedSum({"a": 1, "c": 1}).fuse({"a": a})
    with pytest.raises(ConfigError, match="non-negative"):
        WeightedSum({"a": -1})


def test_rrf_hand_computed():
    a = np.array([[3.0, 2.0, 1.0]])
    b = np.array([[1.0, 2.0, 3.0]])
    fused = ReciprocalRankFusion(k=60).fuse({"a": a, "b": b})
    expected = [1 / 61 + 1 / 63, 1 / 62 + 1 / 62, 1 / 63 + 1 / 61]
    np.testing.assert_allclose(fused[0], expected, rtol=1e-6)
    with pytest.raises(ConfigError):
        ReciprocalRankFusion(k=0)


def test_simplex_grid_and_fit_weights_finds_the_informative_component(rng):
    assert len(simplex_grid(3, 0.1)) == 66
    assert all(abs(sum(w) - 1) < 1e-9 for w in simplex_grid(3, 0.25))
    n_users, n_items = 60, 40
    target = rng.integers(0, n_items, n_users)
    relevant = sp.csr_matrix(
        (np.ones(n_users), (np.arange(n_users), target)), shape=(n_users, n_items)
    )
    good = rng.standard_normal((n_users, n_items)).astype(np.float32)
    good[np.arange(n_users), target] += 4.0
    noise = rng.standard_normal((n_users, n_items)).astype(np.float32)
    weights, trials = fit_weights({"good": good, "noise": noise}, relevant, k=10)
    assert weights["good"] >= 0.8 and len(trials) == 11
