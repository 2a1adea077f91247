"""The Recommender contract, run over every model (ARCHITECTURE.md §Tests)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.data import Dataset
from lumenrec.errors import ArtifactError, ConfigError, DataError, NotFittedError
from lumenrec.models.base import BaseRecommender, Recommender


def _factory(module: str, cls: str, **params: object) -> Callable[[], BaseRecommender]:
    def make() -> BaseRecommender:
        try:
            mod = importlib.import_module(f"lumenrec.models.{module}")
        except ImportError as err:  # an optional backend (torch) is absent
            pytest.skip(f"{module}: {err}")
        return getattr(mod, cls)(**params)

    return make


FACTORIES: dict[str, Callable[[], BaseRecommender]] = {
    "pop": _factory("popularity", "MostPopular"),
    "itemknn": _factory("itemknn", "ItemKNN", n_neighbors=50),
    "itemknn-bm25": _factory("itemknn", "ItemKNN", n_neighbors=50, similarity="bm25"),
    "ease": _factory("ease", "EASE", regularization=10.0),
    "als": _factory("als", "ImplicitALS", n_factors=16, n_epochs=15, random_state=0),
    "bpr": _factory("bpr", "BPR", n_factors=16, n_epochs=40, random_state=0),
    "multvae": _factory(
        "multvae",
        "MultVAE",
        hidden_dim=64,
        latent_dim=16,
        batch_size=32,
        learning_rate=1e-2,
        n_epochs=30,
        valid_fraction=0.0,
        random_state=0,
    ),
    "lightgcn": _factory(
        "lightgcn",
        "LightGCN",
        n_factors=16,
        batch_size=128,
        learning_rate=0.02,
        n_epochs=30,
        valid_fraction=0.0,
        random_state=0,
    ),
    "sasrec": _factory(
        "sasrec",
        "SASRec",
        n_factors=16,
        n_layers=1,
        dropout=0.4,
        batch_size=32,
        learning_rate=0.01,
        n_epochs=40,
        validate=False,
        random_state=0,
    ),
    "sasrec-text": _factory(
        "sasrec",
        "SASRec",
        n_factors=16,
        n_layers=1,
        dropout=0.1,
        batch_size=32,
        learning_rate=0.01,
        n_epochs=30,
        refit=False,
        text_encoder="hashing",
        random_state=0,
    ),
    "content": _factory("content", "ContentRecommender", encoder="hashing"),
    "adapter": _factory(
        "adapter",
        "TextAdapter",
        encoder="hashing",
        n_factors=16,
        cf_regularization=10.0,
        user_samples=50,
        random_state=0,
    ),
}


def _hybrid() -> BaseRecommender:
    from lumenrec.fusion.hybrid import HybridRecommender
    from lumenrec.models.content import ContentRecommender
    from lumenrec.models.ease import EASE

    return HybridRecommender(
        {"cf": EASE(regularization=10.0), "text": ContentRecommender(encoder="hashing")}
    )


FACTORIES["hybrid"] = _hybrid
PERSONALISED = [name for name in FACTORIES if name != "pop"]
#: Models that learn from interactions alone (the checkerboard has no item text).
COLLABORATIVE = [
    name for name in PERSONALISED if name not in ("content", "hybrid", "adapter", "sasrec-text")
]
#: The checkerboard withholds an item from the middle of a user's (column-ordered) sequence;
#: a next-item model is not asked that question. SASRec's planted test is the item cycle in
#: tests/models/test_sasrec.py.
ORDERLESS = [name for name in COLLABORATIVE if name != "sasrec"]


@pytest.fixture(params=list(FACTORIES))
def make_model(request) -> Callable[[], BaseRecommender]:
    return FACTORIES[request.param]


@pytest.fixture(scope="module")
def fitted(clusters) -> dict[str, BaseRecommender]:
    cache: dict[str, BaseRecommender] = {}
    return cache


def _fit(name: str, data: Dataset, cache: dict) -> BaseRecommender:
    if name not in cache:
        cache[name] = FACTORIES[name]().fit(data)
    return cache[name]


@pytest.mark.parametrize("name", list(FACTORIES))
class TestContract:
    def test_protocol_and_fit_returns_self(self, name, clusters):
        model = FACTORIES[name]()
        assert isinstance(model, Recommender)
        assert model.fit(clusters) is model

    def test_not_fitted(self, name):
        model = FACTORIES[name]()
        with pytest.raises(NotFittedError):
            model.score(np.array([0]))
        with pytest.raises(NotFittedError):
            model.recommend(np.array([0]))

    def test_score_shape_dtype(self, name, clusters, fitted):
        model = _fit(name, clusters, fitted)
        s = model.score(np.array([0, 5, 7]))
        assert s.shape == (3, clusters.n_items) and s.dtype == np.float32
        sub = model.score(np.array([1]), np.array([3, 0, 9]))
        assert sub.shape == (1, 3)
        np.testing.assert_allclose(sub[0], model.score(np.array([1]))[0, [3, 0, 9]], rtol=1e-5)

    def test_recommend_shape_sorted_and_padded(self, name, clusters, fitted):
        model = _fit(name, clusters, fitted)
        recs = model.recommend(np.arange(10), k=5)
        assert recs.items.shape == (10, 5) and recs.items.dtype == np.int32
        assert recs.scores.dtype == np.float32
        assert np.all(np.diff(recs.scores, axis=1) <= 0)
        big = model.recommend(np.array([0]), k=clusters.n_items + 5)
        n_seen = clusters.matrix[0].nnz
        assert (big.items[0] >= 0).sum() == clusters.n_items - n_seen
        assert np.all(big.items[0, clusters.n_items - n_seen :] == -1)
        assert np.all(np.isneginf(big.scores[0, clusters.n_items - n_seen :]))

    def test_filter_seen_candidates_exclude(self, name, clusters, fitted):
        model = _fit(name, clusters, fitted)
        users = np.arange(20)
        recs = model.recommend(users, k=10)
        seen = clusters.matrix
        for row, u in enumerate(users):
            assert not set(recs.items[row]) & set(seen[u].indices)
        unfiltered = model.recommend(users, k=clusters.n_items, filter_seen=False)
        assert (unfiltered.items >= 0).all()
        cand = np.array([1, 3, 5, 7, 11, 13, 17, 19])
        rc = model.recommend(users, k=3, candidates=cand, filter_seen=False)
        assert set(rc.items.ravel()) <= set(cand)
        excl = recs.items[:, 0]
        re = model.recommend(users, k=10, exclude=excl)
        assert not set(re.items.ravel()) & set(excl)

    def test_batch_equals_single(self, name, clusters, fitted):
        model = _fit(name, clusters, fitted)
        batch = model.recommend(np.array([3, 8, 2]), k=7)
        for row, u in enumerate([3, 8, 2]):
            one = model.recommend(np.array([u]), k=7)
            np.testing.assert_array_equal(one.items[0], batch.items[row])
            np.testing.assert_allclose(one.scores[0], batch.scores[row], rtol=1e-5)

    def test_bad_input(self, name, clusters, fitted):
        model = _fit(name, clusters, fitted)
        for k in (0, -3, 2.5, True):
            with pytest.raises(DataError, match="k must be a positive int"):
                model.recommend(np.array([0]), k=k)
        with pytest.raises(DataError, match="users must lie in"):
            model.recommend(np.array([clusters.n_users]))
        with pytest.raises(DataError):
            model.score(np.array([0.5]))
        with pytest.raises(DataError):
            FACTORIES[name]().fit(sp.csr_matrix((3, 4), dtype=np.float32))

    def test_save_load_round_trip(self, name, clusters, fitted, tmp_path: Path):
        model = _fit(name, clusters, fitted)
        model.save(tmp_path / "m")
        files = sorted(p.name for p in (tmp_path / "m").iterdir())
        assert "manifest.json" in files and not any(f.endswith((".pkl", ".pickle")) for f in files)
        loaded = type(model).load(tmp_path / "m")
        users = np.arange(15)
        np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(loaded.recommend(users).items, model.recommend(users).items)
        assert repr(loaded) == repr(model)
        with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as npz:
            assert all(npz[k].dtype != object for k in npz.files)

    def test_corrupt_artifact_rejected(self, name, clusters, fitted, tmp_path: Path):
        model = _fit(name, clusters, fitted)
        model.save(tmp_path / "m")
        arr = tmp_path / "m" / "arrays.npz"
        arr.write_bytes(arr.read_bytes()[:-20])
        with pytest.raises(ArtifactError, match="sha256 mismatch for arrays.npz"):
            type(model).load(tmp_path / "m")
        man = tmp_path / "m" / "manifest.json"
        meta = json.loads(man.read_text())
        meta["format_version"] = 99
        man.write_text(json.dumps(meta))
        with pytest.raises(ArtifactError, match="newer version"):
            type(model).load(tmp_path / "m")

    def test_params_clone_and_seed(self, name, clusters):
        model = FACTORIES[name]()
        params = model.get_params()
        json.dumps({k: v for k, v in params.items() if k != "components"})  # hybrids: sub-models
        twin = model.clone()
        assert twin is not model and repr(twin) == repr(model)
        assert {k: v for k, v in twin.get_params().items() if k != "components"} == {
            k: v for k, v in params.items() if k != "components"
        }
        with pytest.raises(ConfigError, match="unknown parameter"):
            model.set_params(not_a_param=1)
        a = model.fit(clusters).score(np.arange(5))
        b = twin.fit(clusters).score(np.arange(5))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert repr(model).startswith(type(model).__name__ + "(")


@pytest.mark.parametrize("name", ORDERLESS)
def test_planted_checkerboard(name, checker):
    """Withhold one same-parity item per user: it must rank first (implicit's test)."""
    mat = checker.matrix.tolil()
    n = mat.shape[0]
    withheld = np.array([(u + 2 * (u % 5) + 2) % n for u in range(n)])
    withheld = np.where(withheld % 2 == np.arange(n) % 2, withheld, (withheld + 1) % n)
    for u, i in enumerate(withheld):
        mat[u, i] = 0
    train = sp.csr_matrix(mat)
    train.eliminate_zeros()
    model = FACTORIES[name]().fit(train)
    top = model.recommend(np.arange(n), k=1).items[:, 0]
    assert (top == withheld).mean() == 1.0


@pytest.mark.parametrize("name", PERSONALISED)
def test_planted_clusters_same_topic(name, clusters):
    """On topic clusters, most recommendations fall in the user's own topic."""
    model = FACTORIES[name]().fit(clusters)
    topics = clusters.catalog["topic"].to_numpy()
    user_topic = clusters.user_attributes["topic"].to_numpy()
    recs = model.recommend(np.arange(clusters.n_users), k=5)
    share = (topics[recs.items] == user_topic[:, None]).mean()
    assert share >= 0.8, share
