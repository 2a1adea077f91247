"""MultVAE behaviour: planted structure, early stopping, determinism, torch-free artifacts, fold-in."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError

torch = pytest.importorskip("torch")

from lumenrec.models._torch_train import holdout_split, weights_from_bytes  # noqa: E402
from lumenrec.models.multvae import MultVAE  # noqa: E402

SMALL = {"hidden_dim": 64, "latent_dim": 16, "batch_size": 32, "learning_rate": 1e-2}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: one torch thread avoids oversubscription on small CI machines."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stopped(clusters) -> MultVAE:
    """Early-stopped on the internal holdout."""
    return MultVAE(**SMALL, n_epochs=60, patience=8, anneal_steps=100, random_state=0).fit(clusters)


def _topic_share(model, clusters, recs=None) -> float:
    topics = clusters.catalog["topic"].to_numpy()
    user_topic = clusters.user_attributes["topic"].to_numpy()
    recs = recs if recs is not None else model.recommend(np.arange(clusters.n_users), k=5)
    return float((topics[recs.items] == user_topic[:, None]).mean())


def test_planted_clusters_recovered(stopped, clusters):
    assert _topic_share(stopped, clusters) >= 0.9


def test_early_stopping_keeps_the_best_epoch(stopped, clusters, tmp_path):
    h = stopped.history_
    assert h["stopped_early"] and h["epochs_run"] < 60
    assert h["epochs_run"] == len(h["loss"]) == len(h["valid_scores"])
    best = int(np.argmax(h["valid_scores"]))
    assert h["best_epoch"] == h["valid_epochs"][best]
    assert h["best_valid_ndcg@10"] == pytest.approx(max(h["valid_scores"]))
    assert h["epochs_run"] - h["best_epoch"] == 8  # patience
    # the kept weights are the best epoch's: a checkpointed run stores the same tensors
    model = MultVAE(
        **SMALL,
        n_epochs=60,
        patience=8,
        anneal_steps=100,
        refit=False,
        random_state=0,
        checkpoint_dir=str(tmp_path / "ckpt"),
    ).fit(clusters)
    best = weights_from_bytes((tmp_path / "ckpt" / "best.safetensors").read_bytes())
    assert set(best) == set(model.weights_)
    for name, value in best.items():
        np.testing.assert_array_equal(value, model.weights_[name])
    meta = json.loads((tmp_path / "ckpt" / "best.json").read_text())
    assert meta["epoch"] == model.history_["best_epoch"]


def test_same_seed_same_model_other_seed_differs(clusters):
    params = {**SMALL, "n_epochs": 5, "valid_fraction": 0.0}
    a = MultVAE(**params, random_state=3).fit(clusters)
    b = MultVAE(**params, random_state=3).fit(clusters)
    c = MultVAE(**params, random_state=4).fit(clusters)
    np.testing.assert_array_equal(a.user_latent_, b.user_latent_)
    np.testing.assert_array_equal(a.score(np.arange(5)), b.score(np.arange(5)))
    assert not np.allclose(a.user_latent_, c.user_latent_)
    assert a.history_["epochs_run"] == 5 and a.history_["valid_scores"] == []
    assert a.history_["refit_epochs"] == 0  # nothing held out, nothing to refit


def test_fold_in_of_own_history_equals_known_user(stopped, clusters):
    users = np.array([0, 7, 33])
    np.testing.assert_allclose(
        stopped.score_history(clusters.matrix[users]), stopped.score(users), rtol=1e-5, atol=1e-5
    )
    # a new user with five items of one topic is recommended that topic
    topics = clusters.catalog["topic"].to_numpy()
    for topic in np.unique(topics):
        items = np.flatnonzero(topics == topic)[:5]
        hist = sp.csr_matrix((np.ones(5), (np.zeros(5), items)), shape=(1, clusters.n_items))
        recs = stopped.recommend_history(hist, k=5)
        assert (topics[recs.items[0]] == topic).mean() >= 0.8, topic
    with pytest.raises(DataError, match="columns"):
        stopped.score_history(sp.csr_matrix((1, 3), dtype=np.float32))


def test_save_load_scores_identically_without_torch(stopped, tmp_path, monkeypatch):
    stopped.save(tmp_path / "vae")
    assert (tmp_path / "vae" / "weights.safetensors").is_file()
    monkeypatch.setitem(sys.modules, "torch", None)
    loaded = MultVAE.load(tmp_path / "vae")
    users = np.arange(10)
    np.testing.assert_array_equal(loaded.score(users), stopped.score(users))
    hist = sp.csr_matrix(np.eye(3, loaded.n_items_, dtype=np.float32))
    np.testing.assert_array_equal(loaded.score_history(hist), stopped.score_history(hist))
    assert loaded.history_ == stopped.history_


def test_refit_trains_on_everything_for_the_best_epoch_count(clusters):
    model = MultVAE(
        **SMALL, n_epochs=30, patience=4, anneal_steps=100, refit=True, random_state=0
    ).fit(clusters)
    h = model.history_
    assert h["refit_epochs"] == h["best_epoch"] < h["epochs_run"] and h["refit_seconds"] > 0
    assert _topic_share(model, clusters) >= 0.85


def test_holdout_split_is_disjoint_and_keeps_one_item_per_user(rng):
    mat = sp.random(200, 50, density=0.2, random_state=1, format="csr", dtype=np.float32)
    mat.data[:] = 1.0
    train, valid = holdout_split(mat, 0.3, rng)
    assert (train + valid != mat).nnz == 0 and train.multiply(valid).nnz == 0
    counts = np.diff(mat.indptr)
    assert (np.diff(train.indptr)[counts > 0] >= 1).all()
    assert valid.nnz / mat.nnz == pytest.approx(0.3, abs=0.05)
    assert (np.diff(valid.indptr)[counts >= 2] >= 1).all()


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("hidden_dim", 0),
        ("latent_dim", 0),
        ("dropout", 1.0),
        ("beta_max", -0.1),
        ("anneal_steps", -1),
        ("learning_rate", 0.0),
        ("n_epochs", 0),
        ("batch_size", 0),
        ("valid_fraction", 1.0),
        ("patience", -1),
        ("refit", "yes"),
        ("mixed_precision", None),
        ("device", "not-a-device"),
    ],
)
def test_invalid_params_raise_config_error(param, value, clusters):
    with pytest.raises(ConfigError, match=param):
        MultVAE(**{"n_epochs": 1, param: value}).fit(clusters)


def test_no_positive_interactions_is_a_data_error():
    with pytest.raises(DataError, match="positive"):
        MultVAE(n_epochs=1).fit(sp.csr_matrix(-np.eye(3, dtype=np.float32)))


@pytest.mark.gpu
def test_cuda_training_loads_on_cpu(clusters, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = MultVAE(**SMALL, n_epochs=40, anneal_steps=100, random_state=0, device="cuda")
    model.fit(clusters)
    assert _topic_share(model, clusters) >= 0.85
    model.save(tmp_path / "gpu")
    loaded = MultVAE.load(tmp_path / "gpu")
    np.testing.assert_array_equal(loaded.score(np.arange(5)), model.score(np.arange(5)))
