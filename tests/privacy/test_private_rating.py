"""PrivateRatingALS: planted biases recovered at a large epsilon, noise growing as epsilon
shrinks, the spent epsilon equal to Opacus's accountant, bad budgets rejected, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("opacus")

from lumenrec import persistence  # noqa: E402
from lumenrec.errors import ConfigError  # noqa: E402
from lumenrec.privacy.dp import epsilon_spent, import_opacus, quiet_accountant  # noqa: E402
from lumenrec.privacy.private_rating import PrivateRatingALS, composed_epsilon  # noqa: E402

N_USERS, N_ITEMS, PER_USER = 400, 120, 60


@pytest.fixture(scope="module")
def planted():
    """Ratings 3.5 + b_u + b_i + p_u·q_i + noise (rank 2), rounded and clipped to 1..5."""
    rng = np.random.default_rng(0)
    bu, bi = rng.normal(0, 0.4, N_USERS), rng.normal(0, 0.5, N_ITEMS)
    p, q = rng.normal(0, 0.6, (N_USERS, 2)), rng.normal(0, 0.6, (N_ITEMS, 2))
    users = np.repeat(np.arange(N_USERS), PER_USER)
    items = np.concatenate([rng.choice(N_ITEMS, PER_USER, replace=False) for _ in range(N_USERS)])
    r = 3.5 + bu[users] + bi[items] + np.einsum("nf,nf->n", p[users], q[items])
    r = np.clip(np.round(r + rng.normal(0, 0.3, r.shape)), 1, 5)
    return sp.csr_matrix((r, (users, items)), shape=(N_USERS, N_ITEMS), dtype=np.float32)


def _fit(x, epsilon, seed=0, **kw):
    return PrivateRatingALS(
        epsilon=epsilon, reg_item=2.0, reg_user=2.0, random_state=seed, **kw
    ).fit(x)


def _rmse(model, x):
    coo = x.tocoo()
    pred = model.predict(coo.row, coo.col)
    return float(np.sqrt(np.mean((pred - coo.data) ** 2)))


def test_large_epsilon_matches_non_private(planted):
    exact = _fit(planted, None)
    assert exact.privacy_ == {}
    private = _fit(planted, 5000.0, accountant="rdp")
    assert np.abs(private.item_bias_ - exact.item_bias_).max() < 0.02
    assert np.abs(private.user_bias_ - exact.user_bias_).max() < 0.02
    assert abs(private.global_mean_[0] - exact.global_mean_[0]) < 1e-3


def test_biases_recover_planted_structure(planted):
    coo = planted.tocoo()
    exact = _fit(planted, None)
    # the non-private biases are close to each item's mean rating minus the global mean
    means = np.bincount(coo.col, coo.data, N_ITEMS) / np.bincount(coo.col, None, N_ITEMS)
    centred = means - coo.data.mean()
    assert np.corrcoef(exact.item_bias_, centred)[0, 1] > 0.99


def test_factors_lower_error_on_low_rank_data(planted):
    biases = _fit(planted, None)
    factors = _fit(planted, None, n_factors=2, n_iterations=3, reg_factors=1.0, factor_clip=2.0)
    assert _rmse(factors, planted) < _rmse(biases, planted) - 0.05
    assert np.linalg.norm(factors.user_factors_, axis=1).max() <= 1.0 + 1e-5


def test_noise_grows_as_epsilon_shrinks(planted):
    exact = _fit(planted, None).item_bias_
    errors = {}
    for eps in (0.5, 4.0, 32.0):
        diffs = [_fit(planted, eps, seed=s).item_bias_ - exact for s in range(3)]
        errors[eps] = float(np.std(np.concatenate(diffs)))
    assert errors[0.5] > 2 * errors[4.0] > 4 * errors[32.0]
    # the sum's noise divided by about (n_i + reg): σ_b · sqrt(B² + 1) / (n_i + reg)
    model = _fit(planted, 4.0)
    sigma_b = model.privacy_["releases"][0]["noise_multiplier"]
    n_i = np.bincount(planted.tocoo().col, None, N_ITEMS).mean()
    predicted = sigma_b * np.hypot(2.0, 1.0) / (n_i + 2.0)
    assert 0.5 * predicted < errors[4.0] < 2.0 * predicted


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
@pytest.mark.parametrize("n_factors", [0, 4])
def test_spent_epsilon_is_opacus_accountant(planted, accountant, n_factors):
    model = _fit(planted, 2.0, n_factors=n_factors, n_iterations=2, accountant=accountant)
    spend = model.privacy_
    assert spend["level"] == "event"
    assert spend["epsilon"] <= 2.0
    assert spend["epsilon"] > 1.99
    history = [(r["noise_multiplier"], 1.0, r["count"]) for r in spend["releases"]]
    assert [r["count"] for r in spend["releases"]] == [1, 1] + ([4] if n_factors else [])
    acc = import_opacus().accountants.create_accountant(mechanism=accountant)
    acc.history = history
    with quiet_accountant():  # numpy's log(1 - q) at q = 1, a masked branch
        direct = acc.get_epsilon(delta=spend["delta"])
    assert abs(direct - spend["epsilon"]) < 1e-6
    assert abs(composed_epsilon(history, spend["delta"], accountant) - spend["epsilon"]) < 1e-6
    # the composition is one Gaussian mechanism of the recorded (equivalent) multiplier
    single = epsilon_spent(
        spend["noise_multiplier"], 1.0, spend["steps"], spend["delta"], accountant
    )
    assert abs(single - spend["epsilon"]) < (1e-6 if accountant == "rdp" else 5e-3)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"epsilon": float("inf")}, "epsilon"),
        ({"delta": 1.0 / (N_USERS * PER_USER)}, "delta must lie in"),
        ({"delta": 0.5}, "delta must lie in"),
        ({"accountant": "gdp"}, "accountant"),
    ],
)
def test_bad_budget_raises(planted, params, match):
    with pytest.raises(ConfigError, match=match):
        PrivateRatingALS(**{"epsilon": 1.0, **params}).fit(planted)


def test_seeded_and_reproducible(planted):
    a = _fit(planted, 1.0, seed=3, n_factors=2)
    b = _fit(planted, 1.0, seed=3, n_factors=2)
    c = _fit(planted, 1.0, seed=4, n_factors=2)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)
    assert not np.array_equal(a.item_bias_, c.item_bias_)


def test_save_load_round_trip(planted, tmp_path):
    name = f"{PrivateRatingALS.__module__}.{PrivateRatingALS.__name__}"
    assert name in persistence.ALLOWED_CLASSES
    model = _fit(planted, 4.0, n_factors=2)
    model.save(tmp_path / "m")
    loaded = PrivateRatingALS.load(tmp_path / "m")
    users, items = np.array([0, 5, 399, 12]), np.array([3, 119, 0, 7])
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    np.testing.assert_array_equal(loaded.score([1, 2]), model.score([1, 2]))
    assert loaded.privacy_ == model.privacy_
    assert model.score([0]).shape == (1, N_ITEMS)
    assert np.allclose(model.score([0], [3])[0, 0], model.predict([0], [3])[0], atol=1e-5)
