"""LightGCN behaviour: graph normalisation, planted structure, early stopping, determinism,
torch-free artifacts, fold-in."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError

torch = pytest.importorskip("torch")

from lumenrec.models._torch_train import weights_from_bytes  # noqa: E402
from lumenrec.models.lightgcn import LightGCN, normalized_adjacency  # noqa: E402

SMALL = {"n_factors": 16, "batch_size": 128}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny graphs: one torch thread avoids oversubscription on small CI machines."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stopped(clusters) -> LightGCN:
    """Early-stopped on the internal holdout."""
    return LightGCN(
        **SMALL, n_epochs=100, patience=5, eval_every=2, refit=False, random_state=0
    ).fit(clusters)


def _topic_share(clusters, recs) -> float:
    topics = clusters.catalog["topic"].to_numpy()
    user_topic = clusters.user_attributes["topic"].to_numpy()
    return float((topics[recs.items] == user_topic[:, None]).mean())


def test_normalized_adjacency_is_symmetric_with_inverse_sqrt_degrees():
    r = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], np.float32))
    adj, degree = normalized_adjacency(r)
    np.testing.assert_array_equal(degree, [2, 1, 1, 2, 0])
    dense = adj.toarray()
    np.testing.assert_allclose(dense, dense.T)
    assert dense[0, 2] == pytest.approx(1 / np.sqrt(2 * 1))  # user 0 – item 0
    assert dense[0, 3] == pytest.approx(1 / np.sqrt(2 * 2))  # user 0 – item 1
    assert not dense[4].any() and not dense[:2, :2].any()


def test_score_is_the_dot_product_of_final_embeddings(stopped):
    users, items = np.array([1, 2]), np.array([0, 5, 9])
    expected = stopped.user_factors_[users] @ stopped.item_factors_[items].T
    np.testing.assert_allclose(stopped.score(users, items), expected, rtol=1e-6)
    assert stopped.user_factors_.dtype == stopped.item_factors_.dtype == np.float32


def test_planted_clusters_recovered(stopped, clusters):
    recs = stopped.recommend(np.arange(clusters.n_users), k=5)
    assert _topic_share(clusters, recs) >= 0.9


def test_early_stopping_keeps_the_best_epoch(stopped, clusters, tmp_path):
    h = stopped.history_
    assert h["stopped_early"] and h["epochs_run"] < 100
    assert h["valid_epochs"] == list(range(2, h["epochs_run"] + 1, 2))
    best = int(np.argmax(h["valid_scores"]))
    assert h["best_epoch"] == h["valid_epochs"][best]
    assert h["epochs_run"] - h["best_epoch"] == 5 * 2  # patience × eval_every
    model = LightGCN(
        **SMALL,
        n_epochs=100,
        patience=5,
        eval_every=2,
        refit=False,
        random_state=0,
        checkpoint_dir=str(tmp_path / "ckpt"),
    ).fit(clusters)
    meta = json.loads((tmp_path / "ckpt" / "best.json").read_text())
    assert meta["epoch"] == model.history_["best_epoch"]
    ego = weights_from_bytes((tmp_path / "ckpt" / "best.safetensors").read_bytes())["weight"]
    assert ego.shape == (clusters.n_users + clusters.n_items, 16)
    # the stored factors are those ego weights propagated over the full graph
    adj, _ = normalized_adjacency((clusters.matrix > 0).astype(np.float32))
    layer, total = ego, ego.copy()
    for _ in range(model.n_layers):
        layer = adj @ layer
        total += layer
    total /= model.n_layers + 1
    np.testing.assert_allclose(model.user_factors_, total[: clusters.n_users], rtol=1e-4, atol=1e-6)


def test_same_seed_same_model_other_seed_differs(clusters):
    params = {**SMALL, "n_epochs": 5, "valid_fraction": 0.0}
    a = LightGCN(**params, random_state=3).fit(clusters)
    b = LightGCN(**params, random_state=3).fit(clusters)
    c = LightGCN(**params, random_state=4).fit(clusters)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.allclose(a.item_factors_, c.item_factors_)
    assert a.history_["epochs_run"] == 5 and a.history_["valid_scores"] == []


def test_fold_in_of_own_history_is_close_to_known_user(stopped, clusters):
    users = np.arange(clusters.n_users)
    known = stopped.score(users)
    folded = stopped.score_history(clusters.matrix)
    assert np.corrcoef(known.ravel(), folded.ravel())[0, 1] > 0.97
    own = stopped.recommend(users, k=5).items
    fold = stopped.recommend_history(clusters.matrix, k=5).items
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(own, fold, strict=True)])
    assert overlap >= 0.85, overlap
    empty = stopped.fold_in(sp.csr_matrix((1, clusters.n_items), dtype=np.float32))
    assert not empty.any()
    with pytest.raises(DataError, match="columns"):
        stopped.fold_in(sp.csr_matrix((1, 3), dtype=np.float32))


def test_sampled_softmax_and_several_negatives_learn(clusters):
    model = LightGCN(
        **SMALL,
        loss="softmax",
        n_negatives=8,
        n_epochs=30,
        learning_rate=0.02,
        valid_fraction=0.0,
        random_state=0,
    ).fit(clusters)
    recs = model.recommend(np.arange(clusters.n_users), k=5)
    assert _topic_share(clusters, recs) >= 0.8
    assert model.history_["loss"][-1] < 0.5 * model.history_["loss"][0]


def test_save_load_scores_identically_without_torch(stopped, clusters, tmp_path, monkeypatch):
    stopped.save(tmp_path / "gcn")
    monkeypatch.setitem(sys.modules, "torch", None)
    loaded = LightGCN.load(tmp_path / "gcn")
    users = np.arange(10)
    np.testing.assert_array_equal(loaded.score(users), stopped.score(users))
    hist = clusters.matrix[:4]
    np.testing.assert_array_equal(loaded.score_history(hist), stopped.score_history(hist))
    assert loaded.history_ == stopped.history_


def test_refit_trains_on_everything_for_the_best_epoch_count(clusters):
    model = LightGCN(**SMALL, n_epochs=40, patience=3, refit=True, random_state=0).fit(clusters)
    h = model.history_
    assert h["refit_epochs"] == h["best_epoch"] < h["epochs_run"] and h["refit_seconds"] > 0
    recs = model.recommend(np.arange(clusters.n_users), k=5)
    assert _topic_share(clusters, recs) >= 0.85


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n_factors", 0),
        ("n_layers", -1),
        ("loss", "hinge"),
        ("n_negatives", 0),
        ("learning_rate", 0.0),
        ("regularization", -1.0),
        ("n_epochs", 0),
        ("batch_size", 0),
        ("valid_fraction", -0.1),
        ("patience", -1),
        ("eval_every", 0),
        ("refit", 1.5),
        ("device", "not-a-device"),
    ],
)
def test_invalid_params_raise_config_error(param, value, clusters):
    with pytest.raises(ConfigError, match=param):
        LightGCN(**{"n_epochs": 1, param: value}).fit(clusters)


def test_no_positive_interactions_is_a_data_error():
    with pytest.raises(DataError, match="positive"):
        LightGCN(n_epochs=1).fit(sp.csr_matrix(-np.eye(3, dtype=np.float32)))


@pytest.mark.gpu
def test_cuda_training_loads_on_cpu(clusters, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = LightGCN(**SMALL, n_epochs=40, valid_fraction=0.0, random_state=0, device="cuda")
    model.fit(clusters)
    recs = model.recommend(np.arange(clusters.n_users), k=5)
    assert _topic_share(clusters, recs) >= 0.85
    model.save(tmp_path / "gpu")
    loaded = LightGCN.load(tmp_path / "gpu")
    np.testing.assert_array_equal(loaded.score(np.arange(5)), model.score(np.arange(5)))
