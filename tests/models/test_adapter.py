"""TextAdapter: cold items and users get CF-space vectors from text (planted topic clusters)."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.data import block_clusters
from lumenrec.errors import ConfigError, DataError
from lumenrec.models.adapter import TextAdapter, mlp_forward

pytest.importorskip("torch")  # training needs torch; loading and serving do not (see below)

FAST = {
    "encoder": "hashing",
    "n_factors": 16,
    "n_epochs": 40,
    "batch_size": 256,
    "user_samples": 200,
}


@pytest.fixture(scope="module")
def topics():
    """Four topics; every seventh item (all topics, all title words) has no interactions."""
    data = block_clusters(n_topics=4, n_users=160, n_items=96, density=0.2, random_state=1)
    cold = np.arange(0, data.n_items, 7)  # 14 items, 3-4 per topic
    keep = ~np.isin(data.item_idx, cold)
    return data.subset(keep), cold


@pytest.fixture(scope="module")
def fitted(topics):
    data, _ = topics
    return TextAdapter(**FAST, random_state=0).fit(data)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _audience_share(model, data, items, item_topic) -> float:
    """Share of each item's top-scoring users (a topic's worth) who are of the item's topic."""
    user_topic = data.user_attributes["topic"].to_numpy()
    n = int((user_topic == user_topic[0]).sum())
    scores = model.score(np.arange(data.n_users), items)
    audience = np.argsort(-scores, axis=0)[:n]  # (n, len(items))
    return float((user_topic[audience] == np.asarray(item_topic)[None, :]).mean())


def test_cold_item_vector_lands_near_its_topic(topics, fitted):
    data, cold = topics
    item_topic = data.catalog["topic"].to_numpy()
    warm = np.setdiff1d(np.arange(data.n_items), cold)
    assert np.all(fitted.item_counts_[cold] == 0) and np.all(fitted.item_counts_[warm] > 0)
    sims = _unit(fitted.item_factors_[cold]) @ _unit(fitted.item_factors_[warm]).T
    same = item_topic[cold][:, None] == item_topic[warm][None, :]
    # each cold item is closer to the CF vectors of its own topic than to any other topic's
    own = np.array([sims[r, same[r]].mean() for r in range(len(cold))])
    other = np.array(
        [max(sims[r, item_topic[warm] == t].mean() for t in set(item_topic) - {item_topic[c]})
         for r, c in enumerate(cold)]
    )  # fmt: skip
    assert np.all(own > other + 0.1), (own, other)


def test_cold_items_reach_same_topic_users(topics, fitted):
    data, cold = topics
    item_topic = data.catalog["topic"].to_numpy()
    user_topic = data.user_attributes["topic"].to_numpy()
    recs = fitted.recommend(np.arange(data.n_users), k=3, candidates=cold)
    hits = item_topic[recs.items] == user_topic[:, None]
    assert hits[:, 0].mean() >= 0.9 and hits.mean() >= 0.7, (hits[:, 0].mean(), hits.mean())
    # against the whole catalogue they are not drowned out: some reach a top-10
    top = fitted.recommend(np.arange(data.n_users), k=10).items
    assert np.isin(top, cold).any(axis=1).mean() > 0.2


def test_add_items_reach_same_topic_users(topics, fitted):
    data, cold = topics
    model = copy.deepcopy(fitted)
    before = model.n_items_
    rows = data.catalog.iloc[cold[:4]]
    new = model.add_items(rows)
    np.testing.assert_array_equal(new, np.arange(before, before + 4))
    np.testing.assert_allclose(model.item_factors_[new], fitted.item_factors_[cold[:4]], atol=1e-5)
    assert model.seen_.shape == (data.n_users, before + 4) and model.n_items_ == before + 4
    assert model.score(np.array([0])).shape == (1, before + 4)
    assert _audience_share(model, data, new, rows["topic"].to_numpy()) >= 0.7
    texts = model.add_items(["a trail backpack for the summit"])  # ready-made text
    assert texts.tolist() == [before + 4]


def test_round_trip_keeps_adding_items(tmp_path, topics, fitted, monkeypatch):
    data, cold = topics
    fitted.save(tmp_path / "m")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    loaded = TextAdapter.load(tmp_path / "m")
    users = np.arange(20)
    np.testing.assert_allclose(loaded.score(users), fitted.score(users), rtol=1e-6)
    assert loaded.encoder_fingerprint_ == fitted.encoder_fingerprint_
    np.testing.assert_allclose(
        mlp_forward(np.eye(256, dtype=np.float32)[:2], loaded._layers("item")),
        mlp_forward(np.eye(256, dtype=np.float32)[:2], fitted._layers("item")),
    )
    (new,) = loaded.add_items(data.catalog.iloc[[cold[0]]])
    np.testing.assert_allclose(loaded.item_factors_[new], fitted.item_factors_[cold[0]], atol=1e-5)


def test_cold_users_from_profile_text_and_fold_in(topics):
    data, _ = topics
    user_topic = data.user_attributes["topic"].to_numpy()
    hidden = np.arange(0, data.n_users, 10)  # these users keep no history, only their profile
    model = TextAdapter(**FAST, random_state=0).fit(data.subset(~np.isin(data.user_idx, hidden)))
    assert model.user_w1_.size > 0
    item_topic = data.catalog["topic"].to_numpy()
    recs = model.recommend(hidden, k=5)  # profile = the topic attribute: g(profile) alone
    assert (item_topic[recs.items] == user_topic[hidden][:, None]).mean() >= 0.8
    texts = [f"topic: {t}" for t in user_topic[hidden]]
    by_text = model.score_texts(texts)
    np.testing.assert_allclose(by_text, model.score(hidden), rtol=1e-5, atol=1e-6)
    hist = data.matrix[hidden]  # fold-in of the real histories ranks the same topics first
    top = np.argsort(-model.score_history(hist), axis=1)[:, :5]
    assert (item_topic[top] == user_topic[hidden][:, None]).mean() >= 0.8
    assert np.isnan(model.score_history(sp.csr_matrix((1, data.n_items)))).all()


@pytest.mark.parametrize(
    "params",
    [{"n_factors": 0}, {"hidden": -1}, {"loss": "hinge"}, {"warm_weight": 1.5},
     {"learning_rate": 0.0}, {"user_samples": -1}, {"device": "tpu:9"}],
)  # fmt: skip
def test_bad_params_raise_config_error(params, topics):
    data, _ = topics
    with pytest.raises(ConfigError):
        TextAdapter(**{**FAST, "n_epochs": 1, "cf_epochs": 1, **params}).fit(data)


def test_needs_item_text(checker):
    with pytest.raises(DataError, match="needs item text"):
        TextAdapter(encoder="hashing").fit(checker)


def test_linear_adapter_and_mse_loss(topics):
    data, cold = topics
    model = TextAdapter(**{**FAST, "hidden": 0, "loss": "mse", "n_epochs": 200}, random_state=0)
    model.fit(data)
    assert model.item_w2_.size == 0 and model.item_w1_.shape == (256, 16)
    assert _audience_share(model, data, cold, data.catalog["topic"].to_numpy()[cold]) >= 0.8


@pytest.mark.model
def test_real_minilm_cold_item_semantics(tmp_path):
    """With the real all-MiniLM-L6-v2, unseen wording (synonyms) still lands in its topic."""
    pytest.importorskip("sentence_transformers")
    data = block_clusters(n_topics=4, n_users=120, n_items=64, random_state=2)
    model = TextAdapter(
        "minilm", n_factors=16, n_epochs=15, user_samples=0, cache=str(tmp_path / "c.sqlite"),
        random_state=0,
    ).fit(data)  # fmt: skip
    new = model.add_items(["hiking boots for a mountain trek", "a cast-iron pan for the stove"])
    user_topic = data.user_attributes["topic"].to_numpy()
    scores = model.score(np.arange(data.n_users), new)
    prefers_hike = scores[:, 0] > scores[:, 1]
    assert prefers_hike[user_topic == "hiking"].mean() >= 0.8
    assert (~prefers_hike[user_topic == "cooking"]).mean() >= 0.8
