"""DebiasedMF: propensity estimators by hand, a planted MNAR log where the naive model is
provably biased, the Recommender surface and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError
from lumenrec.models.debiased import (
    DebiasedMF,
    feature_propensities,
    naive_bayes_propensities,
    popularity_propensities,
)
from lumenrec.persistence import ALLOWED_CLASSES

pytest.importorskip("torch")

N_USERS, N_ITEMS = 150, 60


def test_naive_bayes_matches_hand_computation():
    train = np.array([1, 1, 1, 0])  # P(y=1|o) = 3/4, P(y=0|o) = 1/4
    mar = np.array([1, 0, 0, 0, 0])  # P(y=1) = 1/5, P(y=0) = 4/5
    p, table = naive_bayes_propensities(train, mar, n_pairs=40)  # P(o) = 4/40 = 0.1
    assert table[1.0] == pytest.approx(0.75 * 0.1 / 0.2)
    assert table[0.0] == pytest.approx(0.25 * 0.1 / 0.8)
    assert p.tolist() == pytest.approx([0.375, 0.375, 0.375, 0.03125])
    # with these propensities sum(1/p) over the observed pairs is exactly |D|
    assert (1 / p).sum() == pytest.approx(40)


def test_naive_bayes_ratings_and_missing_values():
    p, table = naive_bayes_propensities([5, 3, 3], [3, 5, 1, 1], n_pairs=30)
    assert table[3.0] == pytest.approx((2 / 3) * 0.1 / 0.25)
    assert table[1.0] == 0.0 and p[0] == pytest.approx((1 / 3) * 0.1 / 0.25)
    with pytest.raises(DataError, match="not in the MAR sample"):
        naive_bayes_propensities([5, 2], [5, 5], n_pairs=10)
    _, smoothed = naive_bayes_propensities([5, 2], [5, 5], n_pairs=10, smoothing=1.0)
    assert smoothed[2.0] == pytest.approx((2 / 4) * 0.2 / (1 / 4))


def test_popularity_propensities_by_hand():
    p = popularity_propensities(np.array([0, 0, 1, 0]), n_users=4, n_items=3)
    assert p.tolist() == pytest.approx([0.75, 0.75, 0.25, 0.75])
    assert popularity_propensities(np.array([1]), 4, 3, power=0.5)[0] == pytest.approx(0.5)


def _planted(seed: int):
    """True P(y=1) from a low-rank logit; positives are observed ~6x more often than
    negatives, and popular (exposed) items more often: p_ui = expo_i * (0.5 if y else 0.08)."""
    rng = np.random.default_rng(seed)
    logit = (
        rng.normal(0, 1, N_ITEMS)[None, :]
        + rng.normal(0, 0.5, N_USERS)[:, None]
        + 0.75 * rng.normal(size=(N_USERS, 2)) @ rng.normal(size=(2, N_ITEMS))
    )
    truth = 1 / (1 + np.exp(-(logit - 0.5)))
    y = rng.random(truth.shape) < truth
    expo = np.linspace(0.2, 1.0, N_ITEMS)[rng.permutation(N_ITEMS)]
    prop = expo[None, :] * np.where(y, 0.5, 0.08)
    observed = rng.random(truth.shape) < prop
    ratings = sp.csr_matrix(np.where(observed, np.where(y, 2.0, 1.0), 0.0))
    mar_mask = rng.random(truth.shape) < 0.05
    mar = sp.csr_matrix(np.where(mar_mask, np.where(y, 2.0, 1.0), 0.0))
    return ratings, prop, truth, mar


def _fit(method: str, ratings, **kw) -> DebiasedMF:
    params = {
        "method": method, "threshold": 2.0, "n_factors": 1, "learning_rate": 0.05,
        "weight_decay": 1e-2, "n_epochs": 60, "batch_size": 256, "propensity_clip": 0.01,
        "random_state": 0,
    }  # fmt: skip
    fit_kw = {k: kw.pop(k) for k in ("propensities", "mar_sample", "valid") if k in kw}
    return DebiasedMF(**{**params, **kw}).fit(ratings, **fit_kw)


def _all_pairs(model: DebiasedMF) -> np.ndarray:
    u = np.repeat(np.arange(N_USERS), N_ITEMS)
    i = np.tile(np.arange(N_ITEMS), N_USERS)
    return model.predict(u, i).reshape(N_USERS, N_ITEMS)


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_mnar_debiased_models_recover_the_truth(seed):
    ratings, prop, truth, mar = _planted(seed)
    naive = _all_pairs(_fit("naive", ratings))
    # the naive model learns P(y | observed) ~ 0.8 instead of P(y) ~ 0.4
    assert naive.mean() - truth.mean() > 0.3
    naive_mae = np.abs(naive - truth).mean()
    for method in ("ips", "snips", "dr"):
        model = _fit(method, ratings, propensity="given", propensities=prop)
        assert model.propensity_source_ == "given"
        pred = _all_pairs(model)
        assert abs(pred.mean() - truth.mean()) < 0.07, method
        assert np.abs(pred - truth).mean() < naive_mae - 0.12, method
    nb = _fit("ips", ratings, mar_sample=mar)  # auto: Naive Bayes from the MAR sample
    assert nb.propensity_source_ == "naive-bayes"
    assert abs(_all_pairs(nb).mean() - truth.mean()) < 0.1


def test_surface_scores_topk_rating_task_and_validation():
    ratings, _, _, mar = _planted(3)
    model = _fit("dr", ratings, n_epochs=5, valid=mar, patience=2)
    assert model.propensity_source_ == "popularity"  # no propensities, no MAR sample
    assert 1 <= model.best_epoch_ <= len(model.loss_history_) <= 5
    assert len(model.valid_history_) == len(model.loss_history_)
    scores = model.score([0, 1], [3, 4, 5])
    assert scores.shape == (2, 3) and scores.dtype == np.float32
    probs = model.predict([0, 1], [3, 4])
    assert np.allclose(probs, 1 / (1 + np.exp(-model.score([0, 1], [3, 4]).diagonal())), atol=1e-6)
    recs = model.recommend([0, 1], k=5)
    assert recs.items.shape == (2, 5)
    seen = set(ratings[0].indices)
    assert not seen & set(recs.items[0].tolist())
    rated = _fit("naive", ratings, task="rating", n_epochs=20, bias=True)
    assert 0.5 < rated.predict([0], [0])[0] < 2.5  # regresses the stored 1/2 ratings
    again = _fit("dr", ratings, n_epochs=5, valid=mar, patience=2)
    assert np.array_equal(again.user_factors_, model.user_factors_)  # seeded


def test_input_errors():
    ratings, prop, _, _ = _planted(4)
    with pytest.raises(DataError, match="propensities=matrix"):
        _fit("ips", ratings, propensity="given")
    with pytest.raises(DataError, match="mar_sample"):
        _fit("ips", ratings, propensity="naive-bayes")
    with pytest.raises(DataError, match="shape"):
        _fit("ips", ratings, propensities=prop[:, :3])
    with pytest.raises(DataError, match=r"\(0, 1\]"):
        _fit("ips", ratings, propensities=prop * 0)
    with pytest.raises(ConfigError, match="method"):
        _fit("mrdr", ratings)
    model = _fit("naive", ratings, n_epochs=1)
    assert model.propensity_source_ == "none"
    with pytest.raises(DataError, match="same length"):
        model.predict([0, 1], [0])


def test_naive_bayes_on_the_rating_value():
    ratings = sp.csr_matrix(np.array([[1.0, 3.0, 5.0, 0.0], [3.0, 0.0, 5.0, 5.0]]))
    mar = sp.csr_matrix(np.array([[0.0, 1.0, 0.0, 3.0], [5.0, 1.0, 3.0, 0.0]]))
    common = {"threshold": 3.0, "n_epochs": 1, "random_state": 0, "propensity_clip": 1e-3}
    by_rating = DebiasedMF(method="ips", naive_bayes_on="rating", **common).fit(
        ratings, mar_sample=mar
    )
    _, table = naive_bayes_propensities([1, 3, 5, 3, 5, 5], [1, 3, 5, 1, 3], n_pairs=8)
    assert by_rating.propensities_.tolist() == pytest.approx(
        [table[1.0], table[3.0], table[5.0], table[3.0], table[5.0], table[5.0]], rel=1e-6
    )
    by_label = DebiasedMF(method="ips", **common).fit(ratings, mar_sample=mar)
    assert len(set(by_label.propensities_.tolist())) == 2  # only the two labels
    assert len(set(by_rating.propensities_.tolist())) == 3


def test_save_load_roundtrip(tmp_path):
    assert "lumenrec.models.debiased.DebiasedMF" in ALLOWED_CLASSES
    ratings, prop, _, _ = _planted(5)
    model = _fit("ips", ratings, n_epochs=2, propensities=prop)
    model.save(tmp_path / "m")
    back = DebiasedMF.load(tmp_path / "m")
    assert back.propensity_source_ == "given"
    assert np.array_equal(back.score([0, 1]), model.score([0, 1]))


def _planted_with_features(seed: int):
    """Like :func:`_planted`, but item exposure comes in 4 levels named by a one-hot item
    feature, and a user feature (2 kinds) shifts the rate: p_ui = expo_i * kind_u * f(y)."""
    rng = np.random.default_rng(seed)
    logit = (
        rng.normal(0, 1, N_ITEMS)[None, :]
        + rng.normal(0, 0.5, N_USERS)[:, None]
        + 0.75 * rng.normal(size=(N_USERS, 2)) @ rng.normal(size=(2, N_ITEMS))
    )
    truth = 1 / (1 + np.exp(-(logit - 0.5)))
    y = rng.random(truth.shape) < truth
    level = rng.integers(0, 4, N_ITEMS)
    kind = rng.integers(0, 2, N_USERS)
    prop = (
        np.array([0.2, 0.45, 0.7, 1.0])[level][None, :]
        * np.array([0.6, 1.0])[kind][:, None]
        * np.where(y, 0.5, 0.08)
    )
    observed = rng.random(truth.shape) < prop
    ratings = sp.csr_matrix(np.where(observed, np.where(y, 2.0, 1.0), 0.0))
    mar = sp.csr_matrix(np.where(rng.random(truth.shape) < 0.05, np.where(y, 2.0, 1.0), 0.0))
    return ratings, truth, mar, np.eye(2)[kind], np.eye(4)[level], prop


def test_feature_propensities_recover_the_observation_rate():
    ratings, _, _, uf, itf, prop = _planted_with_features(7)
    g = feature_propensities(ratings, uf, itf)
    assert g.shape == (N_USERS, N_ITEMS) and ((g > 0) & (g < 1)).all()
    assert g.mean() == pytest.approx(ratings.nnz / g.size, rel=0.02)
    # one-hot user x item features make the model saturated over the 8 (kind, level) groups:
    # g equals each group's observed rate (label-free: E[o | u, i], not prop itself)
    observed = ratings.toarray() > 0
    kind, level = uf.argmax(1), itf.argmax(1)
    rates, fitted, planted = [], [], []
    for a in range(2):
        for b in range(4):
            cell = (kind == a)[:, None] & (level == b)[None, :]
            rates.append(observed[cell].mean())
            fitted.append(g[cell].mean())
            planted.append(prop[cell].mean())
            assert np.ptp(g[cell]) < 1e-9  # one value per group
    np.testing.assert_allclose(fitted, rates, atol=0.01)
    assert np.corrcoef(fitted, planted)[0, 1] > 0.95
    with pytest.raises(DataError, match="do not match"):
        feature_propensities(ratings, uf[:5], itf)


def test_given_naive_bayes_propensities_debias_the_planted_log():
    """Per-pair (feature) x per-label (Naive Bayes on the rating value) propensities."""
    ratings, truth, mar, uf, itf, prop = _planted_with_features(8)
    naive = _all_pairs(_fit("naive", ratings))
    naive_mae = np.abs(naive - truth).mean()
    g = feature_propensities(ratings, uf, itf)
    for method in ("ips", "dr"):
        model = _fit(
            method, ratings, propensity="given-naive-bayes", propensities=g, mar_sample=mar,
            naive_bayes_on="rating", imputation_weight_decay=1e-3,
        )  # fmt: skip
        assert model.propensity_source_ == "given-naive-bayes"
        p = model.propensities_.astype(np.float64)
        cells = ratings.tocoo()
        # close to the planted propensities (which the label-only Naive Bayes cannot see)
        assert np.corrcoef(p, prop[cells.row, cells.col])[0, 1] > 0.8
        pred = _all_pairs(model)
        # the product double-counts the label where it is correlated with (u, i), so the
        # mean is recovered a little less tightly than with the true propensities ...
        assert abs(pred.mean() - truth.mean()) < 0.12, method
        mae = np.abs(pred - truth).mean()
        assert mae < naive_mae - 0.15, method
        # ... but the per-pair error is as good as with them
        oracle = _all_pairs(_fit(method, ratings, propensities=prop))
        assert mae < np.abs(oracle - truth).mean() + 0.02, method
    with pytest.raises(DataError, match="mar_sample"):
        _fit("ips", ratings, propensity="given-naive-bayes", propensities=g)
    with pytest.raises(DataError, match="propensities=matrix"):
        _fit("ips", ratings, propensity="given-naive-bayes", mar_sample=mar)
