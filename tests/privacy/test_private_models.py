"""Private models: fit, seeded noise, spend recorded and saved, utility near the non-private
model at a large epsilon, DP-SGD's epsilon equal to Opacus's accountant."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("opacus")
pytest.importorskip("torch")

from lumenrec import persistence  # noqa: E402
from lumenrec.data import block_clusters  # noqa: E402
from lumenrec.errors import ConfigError  # noqa: E402
from lumenrec.models.ease import EASE  # noqa: E402
from lumenrec.models.itemknn import ItemKNN  # noqa: E402
from lumenrec.privacy.dp import epsilon_spent, gaussian_noise_multiplier  # noqa: E402
from lumenrec.privacy.private_models import (  # noqa: E402
    PrivateEASE,
    PrivateItemKNN,
    PrivateMF,
    PrivatePopularity,
    PrivateRatingMF,
    make_private_model,
)

PRIVATE = {
    f"{c.__module__}.{c.__name__}"
    for c in (PrivateEASE, PrivateItemKNN, PrivateMF, PrivatePopularity, PrivateRatingMF)
}


@pytest.fixture(scope="module")
def data():
    return block_clusters(n_topics=4, n_users=200, n_items=60, random_state=0)


@pytest.fixture
def allow():
    """Every private model saves under a class path the loader accepts."""
    assert persistence.ALLOWED_CLASSES >= PRIVATE


def test_artifacts_saved_before_the_module_split_still_load(data, tmp_path, allow):
    import json

    model = PrivatePopularity(epsilon=2.0, random_state=0).fit(data)
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["class"] == "lumenrec.privacy.private_counts.PrivatePopularity"
    manifest["class"] = "lumenrec.privacy.private_models.PrivatePopularity"  # the old path
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    loaded = PrivatePopularity.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score([0, 1]), model.score([0, 1]))


def _overlap(a, b, users, k=5):
    ra, rb = a.recommend(users, k).items, b.recommend(users, k).items
    return np.mean([len(set(x) & set(y)) / k for x, y in zip(ra, rb, strict=True)])


@pytest.mark.parametrize(
    "model",
    [
        PrivatePopularity(epsilon=1.0, random_state=0),
        PrivateEASE(epsilon=1.0, max_items=10, regularization=50.0, rank=8, random_state=0),
        PrivateEASE(epsilon=1.0, top_items=20, random_state=0),
        PrivateEASE(epsilon=1.0, top_items=20, shrinkage="edge", random_state=0),
        PrivateItemKNN(epsilon=1.0, n_neighbors=10, random_state=0),
        PrivateMF(
            epsilon=2.0, n_factors=8, batch_size=64, n_epochs=2, accountant="rdp", random_state=0
        ),
    ],
    ids=lambda m: type(m).__name__,
)
def test_fit_save_load_and_spend(model, data, allow, tmp_path):
    model.fit(data)
    spend = model.privacy_
    assert spend["level"] == "user" and 0 < spend["epsilon"] <= spend["target_epsilon"]
    assert spend["epsilon"] == pytest.approx(
        epsilon_spent(
            spend["noise_multiplier"],
            spend["sample_rate"],
            spend["steps"],
            spend["delta"],
            spend["accountant"],
        ),
        abs=1e-6,
    )
    users = np.arange(20)
    model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    assert loaded.privacy_ == spend
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-6)
    again = model.clone().fit(data)  # seeded: the same noise
    np.testing.assert_allclose(again.score(users), model.score(users), rtol=1e-5, atol=1e-6)
    hist = data.matrix[users]
    np.testing.assert_allclose(model.score_history(hist), model.score(users), rtol=1e-5, atol=1e-6)


def test_large_epsilon_matches_the_non_private_model(data):
    users = np.arange(200)
    big = dict(epsilon=1e4, delta=1e-6, max_items=60, accountant="rdp", random_state=0)
    ease = PrivateEASE(regularization=20.0, **big).fit(data)
    assert _overlap(ease, EASE(regularization=20.0).fit(data), users) > 0.85
    knn = PrivateItemKNN(n_neighbors=20, shrinkage=0.0, **big).fit(data)
    assert _overlap(knn, ItemKNN(n_neighbors=20).fit(data), users) > 0.85


@pytest.mark.parametrize("shrinkage", ["clip", "edge", "spiked"])
def test_ease_shrinkage_keeps_the_large_epsilon_model(data, shrinkage):
    users = np.arange(200)
    big = dict(epsilon=1e4, delta=1e-6, max_items=60, accountant="rdp", random_state=0)
    ease = PrivateEASE(regularization=20.0, shrinkage=shrinkage, **big).fit(data)
    assert _overlap(ease, EASE(regularization=20.0).fit(data), users) > 0.85


def test_ease_spiked_shrinkage_drops_the_noise_bulk(data):
    # at a small epsilon most eigenvalues sit inside the noise bulk and are set to 0: the
    # weights then have a low rank (the discarded directions only add I/λ, cut by diag(B) = 0)
    kw = dict(epsilon=0.5, max_items=20, regularization=50.0, random_state=0)
    clip = PrivateEASE(**kw).fit(data).item_weights_
    spiked = PrivateEASE(shrinkage="spiked", **kw).fit(data).item_weights_
    assert np.linalg.matrix_rank(spiked, tol=1e-5) < np.linalg.matrix_rank(clip, tol=1e-5)


def test_ease_selection_share_composes_two_releases(data, allow, tmp_path):
    model = PrivateEASE(
        epsilon=2.0, max_items=20, top_items=25, selection_share=0.2, random_state=0
    ).fit(data)
    spend = model.privacy_
    sigma = gaussian_noise_multiplier(2.0, 1e-6, 1, "prv")
    assert spend["steps"] == 2
    assert spend["noise_multiplier"] == pytest.approx(sigma / np.sqrt(0.8))
    assert spend["count_noise_multiplier"] == pytest.approx(sigma / np.sqrt(0.2))
    # Gaussian releases compose into one Gaussian of 1/σ² = Σ 1/σ_i²: the same ε
    assert spend["epsilon"] == pytest.approx(epsilon_spent(sigma, 1.0, 1, 1e-6), abs=1e-3)
    assert spend["epsilon"] <= 2.0 + 1e-6
    kept = np.flatnonzero(np.abs(model.item_weights_).sum(axis=0) > 0)
    assert 0 < len(kept) <= 25
    assert not np.abs(np.delete(model.item_weights_, kept, axis=0)).any()
    model.save(tmp_path / "m")
    assert PrivateEASE.load(tmp_path / "m").privacy_ == spend
    with pytest.raises(ConfigError, match="needs top_items"):
        PrivateEASE(epsilon=2.0, selection_share=0.2).fit(data)
    with pytest.raises(ConfigError):
        PrivateEASE(selection_share=1.0).fit(data)
    with pytest.raises(ConfigError):
        PrivateEASE(shrinkage="soft").fit(data)


def test_less_epsilon_more_noise(data):
    ref = (
        PrivatePopularity(epsilon=1e4, max_items=60, accountant="rdp", random_state=0)
        .fit(data)
        .item_counts_
    )
    err = [
        np.abs(
            PrivatePopularity(epsilon=e, max_items=60, random_state=0).fit(data).item_counts_ - ref
        ).mean()
        for e in (8.0, 1.0)
    ]
    assert err[0] < err[1]


def test_delta_must_be_below_one_over_n_users(data):
    with pytest.raises(ConfigError, match="n = 200 users"):
        PrivateEASE(epsilon=1.0, delta=0.01).fit(data)
    with pytest.raises(ConfigError, match="epsilon must be"):
        PrivateItemKNN(epsilon=float("inf")).fit(data)
    with pytest.raises(ConfigError, match="epsilon"):
        PrivateMF(epsilon=0.0).fit(data)


def test_make_private_model():
    assert isinstance(make_private_model("bpr", 2.0, 1e-6, {"n_factors": 8}), PrivateMF)
    assert make_private_model("ease", 2.0, 1e-6, {"max_items": 5}).max_items == 5
    with pytest.raises(ConfigError, match="no differentially private variant"):
        make_private_model("sasrec", 1.0, 1e-6)
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_private_model("pop", 1.0, 1e-6, {"n_neighbors": 3})


def test_dp_sgd_batch_too_small(data):
    with pytest.raises(ConfigError, match="expected batch"):
        PrivateMF(epsilon=2.0, batch_size=8, n_epochs=1).fit(data)


def test_private_rating_mf_event_level(allow, tmp_path):
    rng = np.random.default_rng(0)
    n_users, n_items, n = 60, 30, 1500
    u, i = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    quality = rng.uniform(1.5, 4.5, n_items)
    import scipy.sparse as sp

    x = sp.coo_matrix((np.clip(np.round(quality[i]), 1, 5), (u, i)), shape=(n_users, n_items))
    x = x.tocsr()
    x.sum_duplicates()
    x.data = np.minimum(x.data, 5.0)
    model = PrivateRatingMF(
        epsilon=8.0,
        delta=1e-5,
        n_factors=4,
        batch_size=256,
        n_epochs=3,
        learning_rate=0.05,
        accountant="rdp",
        random_state=0,
    ).fit(x)
    assert model.privacy_["level"] == "event"
    with pytest.raises(ConfigError, match="ratings"):
        PrivateRatingMF(epsilon=8.0, delta=1e-3).fit(x)
    pred = model.predict(np.array([0, 1]), np.array([2, 3]))
    assert pred.shape == (2,) and np.all((pred >= 1) & (pred <= 5))
    np.testing.assert_allclose(model.score([0, 1])[[0, 1], [2, 3]], pred, rtol=1e-6)
    model.save(tmp_path / "r")
    assert PrivateRatingMF.load(tmp_path / "r").privacy_ == model.privacy_
