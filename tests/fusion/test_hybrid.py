"""HybridRecommender: routing of cold users/items, new items from text, learned weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError
from lumenrec.fusion.hybrid import HybridRecommender
from lumenrec.models.content import ContentRecommender
from lumenrec.models.ease import EASE


def _hybrid(**kwargs) -> HybridRecommender:
    return HybridRecommender(
        {"cf": EASE(regularization=10.0), "text": ContentRecommender(encoder="hashing")}, **kwargs
    )


def _with_cold_user(clusters):
    """The clusters dataset with user 0's events removed (a cold user with a profile-less row)."""
    return clusters.subset(clusters.user_idx != 0)


def test_routes_cf_for_warm_and_popular_for_empty_user(clusters):
    data = _with_cold_user(clusters)
    model = _hybrid().fit(data)
    recs = model.recommend(np.array([0, 1, 2]), k=5)
    assert set(recs.routes[1:].ravel()) == {"cf"}
    assert set(recs.routes[0]) == {"popular"}
    pop_order = np.argsort(-model.item_counts_, kind="stable")[:5]
    np.testing.assert_array_equal(recs.items[0], pop_order)


def test_cold_items_are_scored_by_text_only(clusters):
    # remove every event of items 0..9: they stay in the vocabulary, cold
    data = clusters.subset(clusters.item_idx >= 10)
    model = _hybrid().fit(data)
    comp = model.component_scores(np.arange(5))
    assert np.isnan(comp["cf"][:, :10]).all() and not np.isnan(comp["text"][:, :10]).any()
    recs = model.recommend(np.arange(data.n_users), k=20)
    cold = recs.items < 10
    assert cold.any()
    assert set(recs.routes[cold]) == {"text"}


def test_new_item_reaches_users_of_its_topic(clusters):
    model = _hybrid().fit(clusters)
    new_item = pd.DataFrame(
        {
            "title": ["Classic skillet recipe"],
            "description": ["A cooking item with skillet, spices and recipe."],
        },
        index=pd.Index(["new"], name="item_id"),
    )
    (new,) = model.add_items(new_item)
    assert new == clusters.n_items and model.n_items_ == clusters.n_items + 1
    topics = clusters.user_attributes["topic"].to_numpy()
    recs = model.recommend(np.arange(clusters.n_users), k=10)
    reached = (recs.items == new).any(axis=1)
    assert reached[topics == "cooking"].mean() >= 0.3
    assert reached[topics != "cooking"].mean() <= 0.1
    assert set(recs.routes[recs.items == new]) == {"text"}


def test_learned_weights_and_round_trip(clusters, tmp_path):
    model = _hybrid(fusion="learned", learn_users=200).fit(clusters)
    assert set(model.weights_) == {"cf", "text"} and abs(sum(model.weights_.values()) - 1) < 1e-9
    assert len(model.learn_trials_) == 21  # step 0.05 over two components
    model.save(tmp_path / "h")
    assert (tmp_path / "h" / "component-cf" / "manifest.json").is_file()
    loaded = HybridRecommender.load(tmp_path / "h")
    np.testing.assert_allclose(loaded.score(np.arange(10)), model.score(np.arange(10)), rtol=1e-5)
    assert loaded.weights_ == model.weights_


def test_held_out_events_last_and_fraction(clusters):
    from lumenrec.fusion.hybrid import _held_out_events

    rng = np.random.default_rng(0)
    last = _held_out_events(clusters, "last", 0.2, rng)
    assert len(last) == clusters.n_users  # one per user
    order = np.argsort(clusters.timestamps, kind="stable")
    last_by_time = {}
    for pos in order:
        last_by_time[clusters.user_idx[pos]] = pos
    assert set(last) == set(last_by_time.values())
    frac = _held_out_events(clusters, "random", 0.25, rng)
    counts = np.bincount(clusters.user_idx, minlength=clusters.n_users)
    held = np.bincount(clusters.user_idx[frac], minlength=clusters.n_users)
    np.testing.assert_array_equal(held, np.maximum(1, np.round(0.25 * counts)))


def test_random_holdout_learns_too(clusters):
    model = _hybrid(fusion="learned", holdout="random", learn_users=100, random_state=0)
    model.fit(clusters)
    again = _hybrid(fusion="learned", holdout="random", learn_users=100, random_state=0)
    assert again.fit(clusters).weights_ == model.weights_  # seeded


def test_rrf_fusion_runs(clusters):
    recs = _hybrid(fusion="rrf").fit(clusters).recommend(np.arange(5), k=5)
    assert (recs.items >= 0).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fusion": "avg"}, "fusion must be one of"),
        ({"text": "nope"}, "text='nope' is not a component"),
        ({"weights": {"cf": 1.0}}, "weights must name exactly"),
        ({"normalize": "l2"}, "normalize must be one of"),
        ({"holdout": "first"}, "holdout must be"),
        ({"learn_step": 0.0}, "learn_step must be"),
        ({"holdout_fraction": 1.5}, "holdout_fraction must be"),
    ],
)
def test_bad_config(clusters, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        _hybrid(**kwargs).fit(clusters)


def test_learned_needs_a_dataset():
    mat = sp.random(30, 20, density=0.3, format="csr", random_state=0)
    with pytest.raises(Exception, match="needs"):
        HybridRecommender({"cf": EASE()}, text=None, fusion="learned").fit(mat)


def test_fold_in_equals_score_for_a_training_users_history(clusters):
    model = HybridRecommender(
        {
            "cf": EASE(regularization=10.0),
            "text": ContentRecommender(encoder="hashing", half_life=float("inf")),
        }
    ).fit(clusters)
    rows = clusters.matrix[:6].copy()
    rows.data[:] = 1.0
    np.testing.assert_allclose(model.score_history(rows), model.score(np.arange(6)), atol=1e-4)
    routes = model.item_routes()
    assert routes.shape == (clusters.n_items,) and set(routes) == {"cf"}
