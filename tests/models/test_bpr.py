"""BPR behaviour: training loss, planted structure, sampling, fold-in, torch-free scoring."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError, MissingDependencyError

pytest.importorskip("torch")

from lumenrec.models.bpr import BPR, sample_negatives  # noqa: E402


def index_checkerboard(n: int = 40) -> tuple[sp.csr_matrix, np.ndarray]:
    """User u liked item i iff u and i (dense indices) have the same parity; one liked item withheld."""
    u, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    full = ((u % 2) == (i % 2)).astype(np.float32)
    withheld = (np.arange(n) + 2 * (np.arange(n) % 5) + 2) % n
    withheld = np.where(withheld % 2 == np.arange(n) % 2, withheld, (withheld + 1) % n)
    full[np.arange(n), withheld] = 0
    return sp.csr_matrix(full), withheld


@pytest.fixture(scope="module")
def fitted(clusters) -> BPR:
    return BPR(n_factors=16, n_epochs=40, random_state=0).fit(clusters)


def test_loss_decreases_and_is_recorded(fitted):
    hist = fitted.loss_history_
    assert hist.shape == (40,) and hist.dtype == np.float64
    assert hist[0] > 0.6 and hist[-1] < 0.75 * hist[0]
    assert hist[-5:].mean() < hist[5:10].mean() < hist[:5].mean()


def test_planted_checkerboard_withheld_item_first():
    train, withheld = index_checkerboard()
    model = BPR(n_factors=16, n_epochs=40, random_state=0).fit(train)
    assert (model.recommend(np.arange(40), k=1).items[:, 0] == withheld).all()


def test_same_seed_same_model_and_other_seed_differs(clusters, fitted):
    again = BPR(n_factors=16, n_epochs=40, random_state=0).fit(clusters)
    np.testing.assert_array_equal(again.user_factors_, fitted.user_factors_)
    np.testing.assert_array_equal(again.item_bias_, fitted.item_bias_)
    other = BPR(n_factors=16, n_epochs=2, random_state=1).fit(clusters)
    assert not np.allclose(other.item_factors_[:, :2], fitted.item_factors_[:, :2])


def test_score_is_dot_plus_bias(fitted):
    expected = fitted.user_factors_[[2, 9]] @ fitted.item_factors_.T + fitted.item_bias_
    np.testing.assert_allclose(fitted.score(np.array([2, 9])), expected, rtol=1e-6)
    assert fitted.user_factors_.dtype == fitted.item_bias_.dtype == np.float32


def test_sample_negatives_avoids_positives():
    rng = np.random.default_rng(0)
    mat = sp.random(50, 40, density=0.3, random_state=1, format="csr")
    mat.sort_indices()
    users = np.repeat(np.arange(50), np.diff(mat.indptr)).astype(np.int64)
    keys = users * 40 + mat.indices
    neg = sample_negatives(rng, users, keys, 40, 3)
    assert neg.shape == (len(users), 3) and neg.min() >= 0 and neg.max() < 40
    hits = np.isin(users[:, None] * 40 + neg, keys).mean()
    assert hits < 0.15  # one redraw: about density**2 = 0.09 instead of 0.3


def test_fold_in_recovers_user_preferences(clusters, fitted):
    hist = clusters.matrix
    folded = fitted.recommend_history(hist, k=5)
    topics = clusters.catalog["topic"].to_numpy()
    user_topic = clusters.user_attributes["topic"].to_numpy()
    assert (topics[folded.items] == user_topic[:, None]).mean() >= 0.8
    own = fitted.recommend(np.arange(clusters.n_users), k=5)
    overlap = np.mean(
        [len(set(a) & set(b)) / 5 for a, b in zip(folded.items, own.items, strict=True)]
    )
    assert overlap >= 0.5, overlap


def test_fold_in_rows_are_independent_and_empty_rows_zero(clusters, fitted):
    batch = fitted.fold_in(clusters.matrix[[3, 8, 0]])
    alone = fitted.fold_in(clusters.matrix[[8]])
    np.testing.assert_allclose(batch[1], alone[0], rtol=1e-4, atol=1e-5)
    empty = fitted.score_history(
        sp.csr_matrix((1, clusters.n_items), dtype=np.float32), np.array([1, 2])
    )
    np.testing.assert_allclose(empty[0], fitted.item_bias_[[1, 2]])
    with pytest.raises(DataError, match="columns"):
        fitted.fold_in(sp.csr_matrix((1, 3), dtype=np.float32))


def test_scoring_and_loading_need_no_torch(fitted, tmp_path, monkeypatch):
    fitted.save(tmp_path / "bpr")
    monkeypatch.setitem(sys.modules, "torch", None)
    loaded = BPR.load(tmp_path / "bpr")
    np.testing.assert_allclose(loaded.score(np.arange(4)), fitted.score(np.arange(4)), rtol=1e-6)
    with pytest.raises(MissingDependencyError, match=r"lumenrec\[torch\]"):
        BPR(n_epochs=1).fit(sp.eye(4, format="csr"))


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n_factors", 0),
        ("learning_rate", 0.0),
        ("regularization", -1.0),
        ("n_epochs", 0),
        ("batch_size", 0),
        ("n_negatives", 0),
        ("progress", "yes"),
        ("device", "not-a-device"),
    ],
)
def test_invalid_params_raise_config_error(param, value, clusters):
    with pytest.raises(ConfigError, match=param):
        BPR(**{"n_epochs": 1, param: value}).fit(clusters)


def test_non_positive_values_are_not_positives():
    mat = sp.csr_matrix(np.array([[1.0, -1.0, 0.0], [0.0, 2.0, 0.0]], np.float32))
    model = BPR(n_factors=2, n_epochs=2, random_state=0, device="cpu").fit(mat)
    assert model.user_factors_.shape == (2, 2)
    with pytest.raises(DataError, match="positive"):
        BPR(n_epochs=1).fit(sp.csr_matrix(-np.eye(3, dtype=np.float32)))


def test_cuda_without_cuda_is_a_config_error(clusters, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="device"):
        BPR(n_epochs=1, device="cuda").fit(clusters)
    assert BPR(n_epochs=1, device="auto", random_state=0).fit(clusters).n_items_ == clusters.n_items


@pytest.mark.gpu
def test_cuda_device_trains():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    train, withheld = index_checkerboard()
    model = BPR(n_factors=16, n_epochs=40, random_state=0, device="cuda").fit(train)
    assert model.item_factors_.dtype == np.float32
    assert (model.recommend(np.arange(40), k=1).items[:, 0] == withheld).mean() >= 0.95
