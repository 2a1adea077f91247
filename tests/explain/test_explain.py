"""Reasons: exact decompositions sum to the served score, occlusion equals them on linear
models, cited history items follow planted structure, every route gets a reason."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.explain import (
    Explainer,
    Reason,
    TemplateSentences,
    history_attribution,
    item_phrases,
    occlusion_attribution,
)
from lumenrec.models.als import ImplicitALS
from lumenrec.models.content import ContentRecommender
from lumenrec.models.ease import EASE
from lumenrec.models.itemknn import ItemKNN
from lumenrec.pipeline import RecommendPipeline


@pytest.fixture(scope="module")
def data():
    from lumenrec.data.synthetic import block_clusters

    return block_clusters(n_topics=4, n_users=80, n_items=60, random_state=1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: EASE(regularization=5.0),
        lambda: ItemKNN(),
        lambda: ContentRecommender(encoder="hashing"),
        lambda: ContentRecommender(encoder="hashing", half_life=3.0, use_ratings=True),
    ],
    ids=["ease", "itemknn", "content", "content-recency"],
)
def test_exact_contributions_sum_to_the_served_score(make, data):
    model = make().fit(data)
    users = np.arange(0, 80, 7, dtype=np.int32)
    recs = model.recommend(users, 5)
    for row, u in enumerate(users):
        served = model.score(np.array([u], np.int32), recs.items[row])[0].astype(np.float64)
        attrs = history_attribution(model, recs.items[row], user=int(u))
        assert {a.method for a in attrs} == {"exact"}
        sums = np.array([a.contributions.sum() for a in attrs])
        np.testing.assert_allclose(sums, served, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose([a.explained_score for a in attrs], sums)
        for a in attrs:  # sorted by descending contribution, only history items cited
            assert np.all(np.diff(a.contributions) <= 1e-12)
            assert set(a.items) <= set(model.seen_[int(u)].indices)


def test_als_contributions_equal_implicit_explain(data):
    implicit_als = pytest.importorskip("implicit.cpu.als")
    model = ImplicitALS(n_factors=8, n_epochs=5, random_state=0).fit(data)
    peer = implicit_als.AlternatingLeastSquares(factors=8, regularization=model.regularization)
    peer.user_factors = model.user_factors_.copy()
    peer.item_factors = model.item_factors_.copy()
    conf = model.seen_.astype(np.float32).tocsr()
    conf.data = 1.0 + model.alpha * conf.data
    u = 3
    recs = model.recommend(np.array([u], np.int32), 4)
    for item, attr in zip(
        recs.items[0], history_attribution(model, recs.items[0], user=u), strict=True
    ):
        score, contributions, _ = peer.explain(u, conf, int(item))
        theirs = dict(contributions)
        assert attr.method == "als"
        np.testing.assert_allclose(attr.contributions.sum(), score, rtol=1e-4)
        for j, c in zip(attr.items, attr.contributions, strict=True):
            np.testing.assert_allclose(c, theirs[int(j)], rtol=1e-4, atol=1e-6)


def test_occlusion_equals_exact_terms_on_a_linear_model(data):
    model = EASE(regularization=5.0).fit(data)
    row = model.seen_[4]
    items = model.recommend(np.array([4], np.int32), 3).items[0]
    exact = history_attribution(model, items, user=4)
    measured = occlusion_attribution(model, row, items, max_occlusion=1000)
    for e, m in zip(exact, measured, strict=True):
        assert m.method == "occlusion" and m.explained_score is None
        np.testing.assert_array_equal(np.sort(e.items), np.sort(m.items))
        np.testing.assert_allclose(
            dict(zip(e.items, e.contributions, strict=True))[e.items[0]],
            dict(zip(m.items, m.contributions, strict=True))[e.items[0]],
            rtol=1e-4,
        )


def test_occlusion_caps_long_histories_and_says_so(data):
    model = EASE(regularization=5.0).fit(data)
    row = model.seen_[0]
    attrs = occlusion_attribution(model, row, np.array([0, 1], np.int32), max_occlusion=2)
    assert all(len(a.items) == 2 and "2 of" in a.note for a in attrs)


def test_cited_items_follow_the_planted_topics(data):
    model = EASE(regularization=5.0).fit(data)
    topic = data.catalog["topic"].to_numpy()
    users = np.arange(0, 80, 5, dtype=np.int32)
    recs = model.recommend(users, 3)
    same = total = 0
    for row, u in enumerate(users):
        for item, attr in zip(
            recs.items[row], history_attribution(model, recs.items[row], user=u), strict=True
        ):
            same += int(topic[attr.items[0]] == topic[item])
            total += 1
    assert same / total >= 0.9


def test_pipeline_gives_every_item_a_reason_on_every_route(data):
    from lumenrec.fusion.hybrid import HybridRecommender

    hybrid = HybridRecommender(
        {"cf": EASE(regularization=5.0), "text": ContentRecommender("hashing")}
    )
    pipe = RecommendPipeline.fit(hybrid, data)
    known = pipe.recommend("u1", 5)
    assert all(x["reason"]["kind"] == "history" for x in known.items)
    first = known.items[0]["reason"]
    assert first["sentence"].startswith("Because you liked ")
    assert first["evidence"][0]["label"] in first["sentence"]
    assert 1 <= len(first["evidence"]) <= 3
    folded = pipe.recommend("new-user", 4, history=[("i1", 1.0), ("i5", 1.0)])
    assert folded.fold_in and all(x["reason"]["evidence"] for x in folded.items)
    cited = {e["item_id"] for x in folded.items for e in x["reason"]["evidence"]}
    assert cited <= {"i1", "i5"}
    by_text = pipe.recommend("stranger", 3, profile=data.catalog["description"].iloc[2])
    assert by_text.fallback == "text"
    reason = by_text.items[0]["reason"]
    assert reason["kind"] == "text" and reason["method"] == "text-match"
    item_row = pipe.catalog.loc[by_text.items[0]["item_id"]]
    words = {p.lower() for p in item_phrases(item_row)}
    assert {e["label"].lower() for e in reason["evidence"]} <= words
    popular = pipe.recommend("nobody", 3)
    assert popular.fallback == "popular"
    assert popular.items[0]["reason"]["kind"] == "popular"
    assert "Popular" in popular.items[0]["reason"]["sentence"]
    bare = pipe.recommend("u1", 3, explain=False)
    assert all("reason" not in x for x in bare.items)


def test_cold_items_get_a_text_match_reason(data):
    from lumenrec.fusion.hybrid import HybridRecommender

    hybrid = HybridRecommender(
        {"cf": EASE(regularization=5.0), "text": ContentRecommender("hashing")}
    )
    pipe = RecommendPipeline.fit(hybrid, data)
    topic_text = data.catalog["description"].iloc[0]
    import pandas as pd

    frame = pd.DataFrame(
        {"title": ["brand new thing"], "description": [topic_text]}, index=["fresh"]
    )
    frame["topic"] = data.catalog["topic"].iloc[0]
    pipe.add_items(frame)
    listing = pipe.recommend("u0", 60)
    fresh = [x for x in listing.items if x["item_id"] == "fresh"]
    assert fresh and fresh[0]["route"] == "text"
    reason = fresh[0]["reason"]
    assert reason["method"] == "text-match" and reason["evidence"]
    assert all(e["kind"] == "attribute" for e in reason["evidence"])


def test_template_sentences_are_pluggable(data):
    model = EASE(regularization=5.0).fit(data)
    ids = [str(i) for i in data.items.ids]
    explainer = Explainer(model, ids, data.catalog, sentences=TemplateSentences(verb="bought"))
    reasons = explainer.explain(
        [int(model.recommend(np.array([2], np.int32), 1).items[0, 0])], ["cf"], user=2
    )
    assert reasons[0].sentence.startswith("Because you bought ")

    def shout(reason: Reason, label: str) -> str:
        return f"{label.upper()}!"

    loud = Explainer(model, ids, data.catalog, sentences=shout)
    assert loud.explain([0], ["popular"])[0].sentence.endswith("!")


def test_empty_history_and_unknown_items_do_not_fail(data):
    model = EASE(regularization=5.0).fit(data)
    empty = sp.csr_matrix((1, model.n_items_), dtype=np.float32)
    attrs = history_attribution(model, np.array([0, 1], np.int32), history=empty)
    assert all(a.items.size == 0 for a in attrs)
    explainer = Explainer(model, [str(i) for i in data.items.ids], None)
    reason = explainer.explain([0], ["cf"], history=empty)[0]
    assert reason.kind == "popular" and reason.sentence


def test_hybrid_occlusion_uses_the_row_that_gives_the_served_score(data):
    from lumenrec.fusion.hybrid import HybridRecommender

    hybrid = HybridRecommender(
        {"cf": EASE(regularization=5.0), "text": ContentRecommender("hashing", half_life=2.0)}
    ).fit(data)
    u = 6
    items = hybrid.recommend(np.array([u], np.int32), 3).items[0]
    attrs = history_attribution(hybrid, items, user=u)
    row = hybrid.components["text"].history_weights_[u]
    served = hybrid.score(np.array([u], np.int32), items)[0]
    folded = hybrid.score_history(row, items)[0]
    np.testing.assert_allclose(folded, served, rtol=1e-5, atol=1e-6)
    assert all(a.method == "occlusion" and len(a.items) == row.nnz for a in attrs)
