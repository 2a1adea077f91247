"""MMR and calibrated re-ranking: identity at λ=0, determinism, planted structure."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError
from lumenrec.rerank import (
    MMR,
    Calibration,
    Candidates,
    ItemFeatures,
    calibration_kl,
    genre_distribution,
)


def _is_permutation(out, cands):
    return sorted(out.items.tolist()) == sorted(cands.items.tolist())


@pytest.mark.parametrize("stage", [MMR(0.0), Calibration(0.0)])
def test_lambda_zero_is_identity(stage, cands, features):
    out = stage.rerank(cands, 10, features)
    np.testing.assert_array_equal(out.items, cands.items)
    np.testing.assert_array_equal(out.scores, cands.scores)
    assert out.feasible and out.notes == ()


@pytest.mark.parametrize("stage", [MMR(0.5), MMR(1.0), Calibration(0.5), Calibration(1.0)])
def test_deterministic_permutation(stage, cands, features):
    a = stage.rerank(cands, 10, features)
    b = stage.rerank(cands, 10, features)
    np.testing.assert_array_equal(a.items, b.items)
    assert _is_permutation(a, cands)
    lookup = dict(zip(cands.items.tolist(), cands.scores.tolist(), strict=True))
    assert a.scores.tolist() == [lookup[i] for i in a.items.tolist()]
    # after the first k, the rest keep their input order
    rest = [i for i in cands.items.tolist() if i not in set(a.items[:10].tolist())]
    assert a.items[10:].tolist() == rest


def _clusters(n_clusters=5, per=8, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:n_clusters]
    emb = np.repeat(centres, per, axis=0) + 0.05 * rng.normal(size=(n_clusters * per, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cluster = np.repeat(np.arange(n_clusters), per)
    return emb.astype(np.float32), cluster


def test_mmr_planted_clusters_one_per_cluster():
    emb, cluster = _clusters()
    feats = ItemFeatures(popularity=np.ones(emb.shape[0]), embeddings=emb)
    # relevance ranks all of cluster 0 first, then cluster 1, ...
    order = np.argsort(cluster, kind="stable")
    cands = Candidates(order, np.linspace(1.0, 0.5, order.size))
    top = MMR(0.9).rerank(cands, 5, feats).items[:5]
    assert sorted(cluster[top].tolist()) == [0, 1, 2, 3, 4]
    assert top[0] == order[0]  # the first pick is the most relevant item
    plain = MMR(0.0).rerank(cands, 5, feats).items[:5]
    assert set(cluster[plain].tolist()) == {0}


def test_mmr_falls_back_to_categories_and_notes(cands, features):
    no_emb = ItemFeatures(popularity=features.popularity, categories=features.categories)
    out = MMR(0.7).rerank(cands, 10, no_emb)
    assert any("category" in n for n in out.notes)
    assert _is_permutation(out, cands)
    bare = ItemFeatures(popularity=features.popularity)
    out = MMR(0.7).rerank(cands, 10, bare)
    np.testing.assert_array_equal(out.items, cands.items)
    assert out.notes


def test_mmr_bad_lambda():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        MMR(1.2)
    with pytest.raises(ConfigError, match="k must be"):
        MMR(0.5).rerank(Candidates([1, 2], [1.0, 0.5]), 0, ItemFeatures(popularity=np.ones(3)))


def test_short_lists_and_k_larger_than_n(features):
    one = Candidates([3], [1.0], [1, 2])
    for stage in (MMR(0.5), Calibration(0.5)):
        assert stage.rerank(one, 10, features).items.tolist() == [3]
    two = Candidates([3, 4], [1.0, 0.5], [1, 2])
    assert sorted(MMR(1.0).rerank(two, 10, features).items.tolist()) == [3, 4]


def _genres(rows):
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


def test_calibration_kl_values():
    cats = _genres([[1, 0], [0, 1], [1, 1], [1, 0]])
    assert genre_distribution([0, 1, 2], cats).tolist() == [0.5, 0.5]
    assert calibration_kl([0, 1], [2], cats) == pytest.approx(0.0, abs=1e-12)
    # history all genre 0, list all genre 1: p=(1,0), q̃ = 0.99·(0,1) + 0.01·(1,0)
    assert calibration_kl([0, 3], [1], cats) == pytest.approx(np.log(1 / 0.01))
    # p=(.5,.5), q=(1,0): q̃=(.995,.005)
    want = 0.5 * np.log(0.5 / 0.995) + 0.5 * np.log(0.5 / 0.005)
    assert calibration_kl([0, 1], [0, 3, -1], cats) == pytest.approx(want)
    assert np.isnan(calibration_kl([], [0], cats))


def test_calibration_reduces_ckl_on_planted_case():
    # 3 genres; history 60% g0, 30% g1, 10% g2; relevance favours g0 items only
    n = 60
    genre = np.array([0] * 30 + [1] * 20 + [2] * 10)
    cats = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), genre)), shape=(n, 3))
    feats = ItemFeatures(popularity=np.ones(n), categories=cats)
    history = np.concatenate([np.arange(6), np.arange(30, 33), [50]])
    cands = Candidates(np.arange(n), np.linspace(1.0, 0.0, n), history)
    before = calibration_kl(history, cands.items[:10], cats)
    out = Calibration(0.99).rerank(cands, 10, feats)
    after = calibration_kl(history, out.items[:10], cats)
    assert after < 0.05 * before
    assert np.bincount(genre[out.items[:10]], minlength=3).tolist() == [6, 3, 1]
    # within each genre the most relevant items are taken
    assert sorted(out.items[:10].tolist()) == [0, 1, 2, 3, 4, 5, 30, 31, 32, 50]
    half = calibration_kl(history, Calibration(0.5).rerank(cands, 10, feats).items[:10], cats)
    assert after <= half < before


def test_calibration_without_categories_or_history(cands, features):
    bare = ItemFeatures(popularity=features.popularity)
    out = Calibration(0.5).rerank(cands, 10, bare)
    np.testing.assert_array_equal(out.items, cands.items)
    assert out.notes
    no_hist = Candidates(cands.items, cands.scores)
    out = Calibration(0.5).rerank(no_hist, 10, features)
    np.testing.assert_array_equal(out.items, cands.items)
    assert "history" in out.notes[0]
