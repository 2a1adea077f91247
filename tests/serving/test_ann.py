"""HNSW retrieval (issue 5, SERVICE.md L6/P4): recall vs exact, tombstones, save/rebuild, service."""

from __future__ import annotations

import types

import numpy as np
import pytest

pytest.importorskip("faiss")

from lumenrec.errors import ArtifactError, ConfigError  # noqa: E402
from lumenrec.retrieval import HNSWIndex, exact_search, factor_vectors, user_query  # noqa: E402


def _planted(n_items=4000, dim=32, n_topics=16, seed=0):
    """Items around topic centres; queries near a centre (like trained factors)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_topics, dim)).astype(np.float32)
    topic = rng.integers(0, n_topics, n_items)
    items = centres[topic] + 0.5 * rng.standard_normal((n_items, dim)).astype(np.float32)
    queries = centres[rng.integers(0, n_topics, 200)]
    queries += 0.3 * rng.standard_normal(queries.shape).astype(np.float32)
    return items.astype(np.float32), queries.astype(np.float32)


def _recall(index, items, queries, exclude=()):
    hits = []
    for q in queries:
        truth, _ = exact_search(items, q, 10, exclude)
        found, _ = index.search(q, 10, exclude)
        hits.append(len(set(truth) & set(found)) / 10)
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def planted():
    items, queries = _planted()
    return items, queries, HNSWIndex(items, m=16, ef_construction=100, ef_search=64)


def test_recall_at_10_on_planted_data(planted):
    items, queries, index = planted
    assert _recall(index, items, queries) >= 0.95
    found, scores = index.search(queries[0], 10)
    np.testing.assert_allclose(scores, items[found] @ queries[0], rtol=1e-5)
    assert list(scores) == sorted(scores, reverse=True)


def _skewed(n_items=3000, dim=64, seed=0):
    """Popularity-skewed norms, unstructured directions (ALS factors of sparse, noisy data)."""
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_items, dim)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    norms = (1 / np.arange(1, n_items + 1) ** 0.8)[rng.permutation(n_items)]
    items = (dirs * norms[:, None]).astype(np.float32)
    queries = rng.standard_normal((100, dim)).astype(np.float32)
    popular = np.argsort(-norms)[:300]
    seen = [rng.choice(popular, 80, replace=False) for _ in queries]  # heavy users
    return items, queries, seen


def test_recall_with_skewed_norms_and_seen_items():
    """The graph alone misses large-norm items; the exact head closes the gap."""
    items, queries, seen = _skewed()

    def recall(index):
        return np.mean(
            [
                len(set(exact_search(items, q, 10, s)[0]) & set(index.search(q, 10, s)[0])) / 10
                for q, s in zip(queries, seen, strict=True)
            ]
        )

    graph_only = HNSWIndex(items, m=16, ef_construction=64, ef_search=16, n_exact=0)
    assert recall(graph_only) < 0.95  # what the index did before the head
    graph_only.n_exact = 1024  # same graph, 1024-vector head (the default)
    graph_only._grow_head(items, 0)
    assert recall(graph_only) >= 0.99
    small_head = HNSWIndex(items, m=16, ef_construction=64, ef_search=16, n_exact=256)
    assert recall(small_head) >= 0.95  # head and graph lists merged
    for q, s in zip(queries[:20], seen[:20], strict=True):
        found, scores = small_head.search(q, 10, s)
        assert len(found) == 10 and not set(found) & set(s)
        np.testing.assert_allclose(scores, items[found] @ q, rtol=1e-5, atol=1e-7)
        assert list(scores) == sorted(scores, reverse=True)


def test_excluded_items_never_returned(planted):
    items, queries, index = planted
    truth, _ = exact_search(items, queries[0], 10)
    found, _ = index.search(queries[0], 10, exclude=truth[:5])
    assert not set(found) & set(truth[:5]) and len(found) == 10
    assert _recall(index, items, queries[:50], exclude=truth[:5]) >= 0.9


@pytest.mark.parametrize("n_exact", [0, 64, 1024])
def test_tombstones_are_respected_and_compacted(n_exact):
    items, queries = _planted(n_items=600, seed=1)
    index = HNSWIndex(
        items, m=16, ef_construction=64, ef_search=64, rebuild_share=0.25, n_exact=n_exact
    )
    dead = set()
    for q in queries[:20]:  # delete each query's best items: the hardest case for a graph
        found, _ = index.search(q, 10)
        dead |= {int(i) for i in found[:3]}
        assert index.delete(found[:3]) <= 3
        assert not {int(i) for i in index.search(q, 10)[0]} & dead
    assert index.tombstones == dead and index.n_vectors == 600
    assert index.delete(list(dead)) == 0  # idempotent
    # beyond the share: the rebuilt graph no longer holds them, and indices keep their meaning
    extra = [i for i in range(600) if i not in dead][:150]
    index.delete(extra)
    assert index.needs_rebuild
    small = index.compacted()
    assert small.n_exact == n_exact
    assert small.n_vectors == 600 - len(dead) - len(extra) and not small.tombstones
    gone = dead | set(extra)
    for q in queries[:30]:
        found, scores = small.search(q, 10)
        assert not {int(i) for i in found} & gone
        np.testing.assert_allclose(scores, items[found] @ q, rtol=1e-5)
    # lifting a tombstone whose vector was compacted away is reported (caller rebuilds)
    assert small.undelete([extra[0]]) == [extra[0]]
    assert index.undelete([extra[0]]) == [] and extra[0] not in index.tombstones


def test_add_appends_items_with_the_next_indices(planted):
    items, queries, _ = planted
    index = HNSWIndex(items[:100], m=8, ef_construction=32)
    new = index.add(items[100:110])
    assert list(new) == list(range(100, 110))
    found, _ = index.search(items[105], 1)
    assert found[0] == 105


@pytest.mark.parametrize("n_exact", [0, 16])
def test_nearly_everything_excluded_still_fills_the_list(n_exact):
    items, queries = _planted(n_items=600, seed=4)
    index = HNSWIndex(items, m=8, ef_construction=32, ef_search=8, n_exact=n_exact)
    allowed = np.arange(0, 600, 40)  # 15 items left
    index.delete(range(0, 600, 7))  # tombstones among the rest too
    exclude = np.setdiff1d(np.arange(600), allowed)
    found, scores = index.search(queries[0], 10, exclude)
    live = allowed[allowed % 7 != 0]
    truth, _ = exact_search(items, queries[0], 10, np.setdiff1d(np.arange(600), live))
    assert list(found) == list(truth)
    np.testing.assert_allclose(scores, items[found] @ queries[0], rtol=1e-5, atol=1e-6)


def test_everything_deleted_or_excluded_gives_an_empty_list():
    items, queries = _planted(n_items=30, seed=2)
    index = HNSWIndex(items, m=8)
    index.delete(range(30))
    assert index.search(queries[0], 10)[0].size == 0
    assert index.compacted().search(queries[0], 10)[0].size == 0


def test_save_and_load_round_trip(planted):
    items, queries, index = planted
    index.delete([1, 2, 3])
    try:
        blob, labels = index.to_bytes()
        again = HNSWIndex.from_bytes(blob, labels, **index.params())
        assert again.n_vectors == index.n_vectors - 3 and again.dim == index.dim
        assert again.params() == index.params()
        assert len(again._head_rows) == 1024 and 0 < again._tail_bound <= index._tail_bound
        for q in queries[:20]:
            a = index.search(q, 10)[0]
            assert not {1, 2, 3} & set(a)
            np.testing.assert_array_equal(a, again.search(q, 10)[0])
        with pytest.raises(ArtifactError, match="unreadable"):
            HNSWIndex.from_bytes(blob[: len(blob) // 2], labels)
    finally:
        index.undelete([1, 2, 3])


def test_bad_settings_and_non_factor_models_are_config_errors(planted):
    with pytest.raises(ConfigError, match="m >= 4"):
        HNSWIndex(planted[0], m=2)
    with pytest.raises(ConfigError, match="n_exact >= 0"):
        HNSWIndex(planted[0], n_exact=-1)
    with pytest.raises(ConfigError, match="no user/item factor matrices"):
        factor_vectors(types.SimpleNamespace(n_items_=3))


def test_item_bias_becomes_an_extra_coordinate():
    rng = np.random.default_rng(3)
    model = types.SimpleNamespace(
        user_factors_=rng.standard_normal((5, 4)).astype(np.float32),
        item_factors_=rng.standard_normal((50, 4)).astype(np.float32),
        item_bias_=rng.standard_normal(50).astype(np.float32),
        n_items_=50,
    )
    vectors = factor_vectors(model)
    expected = model.user_factors_[2] @ model.item_factors_.T + model.item_bias_
    np.testing.assert_allclose((user_query(model, 2) @ vectors.T)[0], expected, rtol=1e-5)


# -- through the pipeline and the service -------------------------------------------------
@pytest.fixture(scope="module")
def als_pipeline():
    from lumenrec.data.synthetic import block_clusters
    from lumenrec.models.als import ImplicitALS
    from lumenrec.pipeline import RecommendPipeline

    data = block_clusters(
        n_topics=8, n_users=300, n_items=1500, density=0.05, noise=0.005, random_state=0
    )
    return RecommendPipeline.fit(ImplicitALS(n_factors=24, n_epochs=6, random_state=0), data)


def test_pipeline_ann_matches_exact_and_survives_save(als_pipeline, tmp_path):
    from lumenrec.pipeline import RecommendPipeline

    p = als_pipeline
    users = [f"u{i}" for i in range(60)]
    exact = [[x["item_id"] for x in p.recommend(u, 10).items] for u in users]
    history = [(x, 1.0) for x in exact[0][:4]]
    fold_exact = [x["item_id"] for x in p.recommend("new", 10, history=history).items]
    p.use_ann(m=16, ef_construction=100, ef_search=64)
    try:
        assert p.retrieval == "ann"
        approx = [[x["item_id"] for x in p.recommend(u, 10).items] for u in users]
        hits = [len(set(a) & set(b)) / 10 for a, b in zip(exact, approx, strict=True)]
        assert np.mean(hits) >= 0.95
        fold = p.recommend("new", 10, history=history)
        assert fold.fold_in and len(set(fold_exact) & {x["item_id"] for x in fold.items}) >= 9
        assert not {x for x, _ in history} & {x["item_id"] for x in fold.items}
        p.save(tmp_path / "v1")
        again = RecommendPipeline.load(tmp_path / "v1")
        assert again.retrieval == "ann"
        assert [x["item_id"] for x in again.recommend("u0", 10).items] == approx[0]
    finally:
        p.use_exact()
    assert p.retrieval == "exact"


def test_pipeline_deleted_items_never_returned_and_rebuild(als_pipeline):
    from lumenrec.pipeline import RecommendPipeline

    p = RecommendPipeline(als_pipeline.model, als_pipeline.users, als_pipeline.items)
    index = p.use_ann(m=16, ef_construction=64, rebuild_share=0.05)
    top = [x["item_id"] for x in p.recommend("u0", 10).items]
    p.delete_items(top[:3])
    after = [x["item_id"] for x in p.recommend("u0", 10).items]
    assert not set(top[:3]) & set(after) and len(after) == 10
    assert p.ann is index and index.tombstones  # below the share: tombstones only
    many = [str(i) for i in p.items.ids[:100]]
    p.delete_items(many)  # 103 of 1500 > 5 %: the graph is rebuilt without them
    assert p.ann is not index and not p.ann.tombstones
    assert p.ann.n_vectors == p.n_items - len(set(many) | set(top[:3]))
    gone = set(many) | set(top[:3])
    for u in ("u0", "u1", "u7"):
        assert not gone & {x["item_id"] for x in p.recommend(u, 20).items}
    # an update of a deleted item brings it back (its vector is rebuilt into the graph)
    import pandas as pd

    p.add_items(pd.DataFrame({"title": ["back"]}, index=pd.Index([many[0]], name="item_id")))
    assert p.live_item(many[0])
    back = int(p.items.index([many[0]])[0])
    assert back not in p.ann.tombstones and p.ann._row_of[back] >= 0  # in the graph, live
    for u in ("u0", "u1"):
        assert not (gone - {many[0]}) & {x["item_id"] for x in p.recommend(u, 20).items}


@pytest.fixture
def als_registry(tmp_path, als_pipeline):
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry

    root = tmp_path / "als-models"
    fresh = RecommendPipeline(als_pipeline.model, als_pipeline.users, als_pipeline.items)
    ModelRegistry(root).publish(fresh)
    return root


def test_service_serves_ann_with_tombstones(client_for, als_registry, auth):
    with client_for(model_dir=als_registry, retrieval="ann", ann_m=16) as c:
        ready = c.get("/health/ready").json()
        assert ready["retrieval"] == "ann"
        top = [x["item_id"] for x in c.get("/recommend/u0?k=10").json()["items"]]
        assert c.delete(f"/items/{top[0]}", headers=auth).status_code == 204
        after = c.get("/recommend/u0?k=10").json()
        assert top[0] not in {x["item_id"] for x in after["items"]} and len(after["items"]) == 10
        r = c.post("/feedback", json={"user_id": "fresh", "item_id": top[1]}, headers=auth)
        assert r.status_code == 200
        folded = c.get("/recommend/fresh?k=5").json()
        assert folded["fold_in"] and top[0] not in {x["item_id"] for x in folded["items"]}
    # a restart replays the stored deletion onto the new index
    with client_for(model_dir=als_registry, retrieval="ann", ann_m=16) as c:
        assert top[0] not in {x["item_id"] for x in c.get("/recommend/u0").json()["items"]}


def test_service_auto_and_non_factor_models_rank_exactly(client_for, als_registry):
    with client_for(model_dir=als_registry, retrieval="auto", ann_min_items=10**6) as c:
        assert c.get("/health/ready").json()["retrieval"] == "exact"
    with client_for(model_dir=als_registry, retrieval="auto", ann_min_items=1000) as c:
        assert c.get("/health/ready").json()["retrieval"] == "ann"
    with client_for(retrieval="ann") as c:  # the hybrid fixture has no factor matrices
        assert c.get("/health/ready").json()["retrieval"] == "exact"
        assert c.get("/recommend/u1").status_code == 200


def test_pipeline_ann_serves_items_added_from_text():
    """A factor model that places new items from text (TextAdapter): the index grows too."""
    from lumenrec.data.synthetic import block_clusters
    from lumenrec.models.adapter import TextAdapter
    from lumenrec.pipeline import RecommendPipeline

    data = block_clusters(n_topics=4, n_users=120, n_items=200, random_state=0)
    model = TextAdapter(encoder="hashing", n_factors=16, cf_regularization=10.0, random_state=0)
    p = RecommendPipeline.fit(model, data)
    p.use_ann(m=16, ef_construction=100, ef_search=64, n_exact=0)
    new = data.catalog.iloc[:3].copy()
    new.index = ["fresh-0", "fresh-1", "fresh-2"]
    p.add_items(new)
    assert p.ann.n_items == p.model.n_items_ == 203
    user = "u" + str(int(np.flatnonzero(data.user_attributes["topic"] == new["topic"].iloc[0])[0]))
    ann = [x["item_id"] for x in p.recommend(user, 200).items]
    p.use_exact()
    exact = [x["item_id"] for x in p.recommend(user, 200).items]
    assert "fresh-0" in exact and "fresh-0" in ann
