"""Erasure that unlearns: per-model forget_users equals a retrain without the users (planted
data, one at a time and 100 in a row), persistence of the unlearning state, and forget_user
on a model registry (new version, older versions rewritten, audit without personal data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.data import block_clusters
from lumenrec.errors import ConfigError, DataError, UnknownIdError
from lumenrec.fusion.hybrid import HybridRecommender
from lumenrec.models.als import ImplicitALS
from lumenrec.models.bpr import BPR
from lumenrec.models.ease import EASE
from lumenrec.models.itemknn import ItemKNN
from lumenrec.models.popularity import MostPopular
from lumenrec.pipeline import RecommendPipeline
from lumenrec.privacy._forget_models import forget_in_model

pytest.importorskip("fastapi")

from lumenrec.privacy.forget import AUDIT_LOG, forget_user  # noqa: E402
from lumenrec.serving.registry import ModelRegistry  # noqa: E402
from lumenrec.serving.store import EventStore  # noqa: E402

TOL = 1e-5


@pytest.fixture(scope="module")
def planted() -> sp.csr_matrix:
    data = block_clusters(n_topics=4, n_users=260, n_items=70, density=0.2, random_state=3)
    return data.matrix


def _assert_like_retrain(model, make, x, forgotten):
    keep = np.ones(x.shape[0], bool)
    keep[forgotten] = False
    ref = make().fit(x[keep])
    users = np.arange(ref.n_users_)
    np.testing.assert_allclose(model.score(users), ref.score(users), atol=TOL, rtol=0)
    assert model.n_users_ == ref.n_users_
    assert (model.seen_ != ref.seen_).nnz == 0
    return ref


MAKERS = {
    "pop": MostPopular,
    "ease": lambda: EASE(regularization=20.0),
    "ease-values": lambda: EASE(regularization=5.0, binarize=False),
    "knn-gram": lambda: ItemKNN(n_neighbors=8, keep_gram=True),
    "knn-gram-norm": lambda: ItemKNN(n_neighbors=5, keep_gram=True, normalize=True, shrinkage=2.0),
    "knn-gram-values": lambda: ItemKNN(n_neighbors=8, keep_gram=True, binarize=False),
    "knn-refit": lambda: ItemKNN(n_neighbors=8),
    "knn-bm25": lambda: ItemKNN(n_neighbors=8, similarity="bm25"),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_forget_equals_retrain(planted, name):
    make = MAKERS[name]
    x = planted.copy()
    if name.endswith("-values"):
        x.data = (1 + np.arange(x.nnz) % 5).astype(np.float32)
    model = make().fit(x)
    forgotten = np.array([3, 17, 200])
    model.forget_users(forgotten)
    ref = _assert_like_retrain(model, make, x, forgotten)
    if name.startswith("knn"):
        assert abs(model.similarity_ - ref.similarity_).max() <= TOL


@pytest.mark.parametrize("name", ["ease", "knn-gram", "knn-gram-norm", "knn-gram-values", "pop"])
def test_hundred_erasures_in_a_row(planted, name):
    make = MAKERS[name]
    if name.endswith("-values"):
        planted = planted.copy()
        planted.data = (1 + np.arange(planted.nnz) % 5).astype(np.float32)
    model = make().fit(planted)
    rng = np.random.default_rng(0)
    ids = np.arange(planted.shape[0])
    forgotten = []
    for _ in range(100):
        pos = int(rng.integers(len(ids)))
        forgotten.append(ids[pos])
        ids = np.delete(ids, pos)
        model.forget_users([pos])
    _assert_like_retrain(model, make, planted, np.array(forgotten))


def test_knn_with_negative_values_rebuilds_touched_lists(planted):
    x = planted.copy()
    x.data = np.where(np.arange(x.nnz) % 7 == 0, -1.0, 1.0).astype(np.float32)

    def make():
        return ItemKNN(n_neighbors=6, keep_gram=True, binarize=False)

    model = make().fit(x)
    model.forget_users([5, 9])
    _assert_like_retrain(model, make, x, np.array([5, 9]))


def test_state_survives_save_and_load(planted, tmp_path):
    for name, make in (("ease", MAKERS["ease"]), ("knn", MAKERS["knn-gram"])):
        make().fit(planted).save(tmp_path / name)
        loaded = type(make()).load(tmp_path / name)
        assert getattr(loaded, "item_diag_", getattr(loaded, "gram_", None)) is not None
        loaded.forget_users([0, 1])
        _assert_like_retrain(loaded, make, planted, np.array([0, 1]))


def test_ease_without_diag_refits(planted):
    model = MAKERS["ease"]().fit(planted)
    del model.item_diag_  # an artifact saved before item_diag_ existed
    model.forget_users([4])
    _assert_like_retrain(model, MAKERS["ease"], planted, np.array([4]))


def test_als_is_the_exact_item_halfstep(planted):
    model = ImplicitALS(n_factors=8, n_epochs=4, random_state=0).fit(planted)
    kept = np.delete(model.user_factors_, [2, 50], axis=0)
    model.forget_users([2, 50])
    assert model.user_factors_.shape[0] == planted.shape[0] - 2
    np.testing.assert_array_equal(model.user_factors_, kept)
    ref = ImplicitALS(n_factors=8).fit(np.delete(planted.toarray(), [2, 50], axis=0))
    ref.user_factors_ = kept
    ref.item_factors_ = ref.item_halfstep()
    np.testing.assert_allclose(model.item_factors_, ref.item_factors_, atol=1e-6)


def _warm_reference(model):
    """Scores of the exact item half-step against the model's own remaining users."""
    return model.user_factors_ @ model.item_halfstep().T


def test_als_downdates_stay_exact_over_many_erasures_and_a_reload(planted, tmp_path):
    model = ImplicitALS(n_factors=8, n_epochs=4, random_state=0).fit(planted)
    model.forget_users([3])  # prepares the inverses, then downdates
    assert model.item_inverses_.shape == (planted.shape[1], 8, 8)
    np.testing.assert_allclose(
        model.score(np.arange(model.n_users_)), _warm_reference(model), atol=1e-5
    )
    for _ in range(15):
        model.forget_users([0])
    model.save(tmp_path / "als")
    loaded = ImplicitALS.load(tmp_path / "als")
    np.testing.assert_array_equal(loaded.item_inverses_, model.item_inverses_)
    for _ in range(15):
        loaded.forget_users([1, 7])
    assert loaded.n_users_ == planted.shape[0] - 46
    np.testing.assert_allclose(
        loaded.score(np.arange(loaded.n_users_)), _warm_reference(loaded), atol=1e-5
    )


def test_als_downdate_with_disliked_values(planted):
    x = planted.toarray().astype(np.float32)
    x[x > 0] = np.where(np.arange((x > 0).sum()) % 4 == 0, -2.0, 3.0)
    model = ImplicitALS(n_factors=6, n_epochs=3, binarize=False, random_state=1).fit(x)
    for _ in range(5):
        model.forget_users([2, 11])
    np.testing.assert_allclose(
        model.score(np.arange(model.n_users_)), _warm_reference(model), atol=1e-5
    )


def test_als_corrupt_unlearning_state_is_resolved_from_scratch(planted, caplog):
    model = ImplicitALS(n_factors=8, n_epochs=4, random_state=0).fit(planted)
    model.prepare_unlearning()
    model.item_inverses_[:] = 0.0
    model.item_inverses_[:, 0] = 1e6  # 1 − c·s ≤ 0 for any user with a non-zero first factor
    model.forget_users([4])
    assert "re-solving the item half-step" in caplog.text
    np.testing.assert_allclose(
        model.score(np.arange(model.n_users_)), _warm_reference(model), atol=1e-5
    )


def test_refit_drops_the_unlearning_state(planted):
    model = ImplicitALS(n_factors=8, n_epochs=2, random_state=0).fit(planted)
    model.prepare_unlearning()
    model.fit(planted)
    assert model.item_inverses_ is None and model._get_files() == {}


def test_hybrid_and_pending_models(planted):
    hybrid = HybridRecommender({"ease": MAKERS["ease"](), "pop": MostPopular()}, text=None).fit(
        planted
    )
    assert forget_in_model(hybrid, [7]) == {"ease": "exact", "pop": "exact", "fusion": "exact"}
    assert hybrid.user_counts_.shape == (planted.shape[0] - 1,)
    assert hybrid.components["ease"].n_users_ == hybrid.n_users_ == planted.shape[0] - 1
    bpr = BPR(n_factors=4, n_epochs=1, random_state=0).fit(planted)
    items = bpr.item_factors_.copy()
    assert forget_in_model(bpr, [0, 1]) == {"model": "pending_retrain"}
    assert bpr.user_factors_.shape[0] == bpr.n_users_ == planted.shape[0] - 2
    np.testing.assert_array_equal(bpr.item_factors_, items)  # still holds the users


def test_bad_users(planted):
    model = MostPopular().fit(planted)
    with pytest.raises(DataError, match="users must lie in"):
        model.forget_users([planted.shape[0]])
    with pytest.raises(DataError, match="cannot forget all"):
        model.forget_users(np.arange(planted.shape[0]))
    assert model.n_users_ == planted.shape[0]


# -- registry ---------------------------------------------------------------------------
SECRET = "person-7f3a91-secret"


@pytest.fixture
def registry(tmp_path):
    data = block_clusters(n_topics=3, n_users=60, n_items=40, random_state=1)
    ids = [f"u{i}" for i in range(60)]
    ids[5] = SECRET
    from lumenrec.data.vocab import IdIndex

    def pipeline(model):
        model.fit(data.matrix)
        return RecommendPipeline(model, IdIndex(ids, name="user"), data.items)

    root = tmp_path / "models"
    reg = ModelRegistry(root)
    reg.publish(pipeline(MostPopular()))
    reg.publish(pipeline(EASE(regularization=10.0)))
    return root, data.matrix


def _files_with(root, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_forget_user_publishes_and_rewrites(registry, tmp_path):
    root, x = registry
    assert _files_with(root, SECRET.encode())  # the control: the id is in the artifacts
    db = tmp_path / "events.sqlite"
    store = EventStore(db)
    store.add_events(
        [{"user_id": SECRET, "item_id": "i1", "type": "click", "value": 1.0, "timestamp": 1.0}]
    )
    store.close()
    record = forget_user(root, SECRET, db=db)
    reg = ModelRegistry(root)
    assert record["model_version"] == "v3" == reg.current()
    assert record["previous_version"] == "v2" and reg.versions() == ["v1", "v3"]
    assert record["model_effect"] == "exact" and record["exact"] is True
    assert record["events_deleted"] == 1 and record["pending_retrain"] is None
    actions = {c["artifact"]: c["action"] for c in record["artifacts_changed"]}
    assert actions["versions/v1"] == "rewritten without user"
    assert actions["versions/v2"].startswith("deleted")
    assert SECRET not in json.dumps(record)
    assert not _files_with(root, SECRET.encode())
    current = reg.load()
    assert SECRET not in current.users and current.model.n_users_ == 59
    ref = EASE(regularization=10.0).fit(np.delete(x.toarray(), 5, axis=0))
    users = np.arange(59)
    np.testing.assert_allclose(current.model.score(users), ref.score(users), atol=TOL)
    v1 = reg.load("v1")
    assert SECRET not in v1.users and v1.metadata["erasures"] == 1
    audit = (root / AUDIT_LOG).read_text().splitlines()
    assert len(audit) == 1 and json.loads(audit[0])["user_hash"] == record["user_hash"]


def test_unknown_user_changes_nothing(registry):
    root, _ = registry
    before = sorted(str(p) for p in root.rglob("*"))
    with pytest.raises(UnknownIdError, match="unknown user 'nobody'"):
        forget_user(root, "nobody")
    assert sorted(str(p) for p in root.rglob("*")) == before
    with pytest.raises(ConfigError, match="older must be"):
        forget_user(root, SECRET, older="keep")


def test_pending_model_reports_retrain_deadline(tmp_path):
    data = block_clusters(n_topics=3, n_users=30, n_items=20, random_state=2)
    root = tmp_path / "m"
    model = BPR(n_factors=4, n_epochs=1, random_state=0).fit(data.matrix)
    ModelRegistry(root).publish(RecommendPipeline(model, data.users, data.items))
    user = str(data.users.ids[0])
    record = forget_user(root, user, older="delete", retrain_within_s=3600.0)
    assert record["model_effect"] == "pending_retrain" and record["exact"] is False
    assert 3500 < record["pending_retrain"]["seconds_until_retrain"] <= 3600
    meta = ModelRegistry(root).load().metadata["pending_erasures"]
    assert meta["count"] == 1
