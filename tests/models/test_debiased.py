"""DebiasedMF: propensity estimators by hand, a planted MNAR log where the naive model is
provably biased, the Recommender surface and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError
from lumenrec.models.debiased import (
    DebiasedMF,
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


def test_save_load_roundtrip(tmp_path):
    assert "lumenrec.models.debiased.DebiasedMF" in ALLOWED_CLASSES
    ratings, prop, _, _ = _planted(5)
    model = _fit("ips", ratings, n_epochs=2, propensities=prop)
    model.save(tmp_path / "m")
    back = DebiasedMF.load(tmp_path / "m")
    assert back.propensity_source_ == "given"
    assert np.array_equal(back.score([0, 1]), model.score([0, 1]))
