"""EASE behaviour beyond the contract: the closed form against per-item ridge solves, fold-in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError
from lumenrec.models import ease
from lumenrec.models.ease import EASE

TINY = np.array(
    [
        [1, 1, 0, 0],
        [1, 0, 1, 0],
        [0, 1, 1, 1],
        [1, 1, 1, 0],
        [0, 0, 0, 1],
    ],
    dtype=np.float64,
)


def _ease_by_ridge(x: np.ndarray, lam: float) -> np.ndarray:
    """EASE column by column: ridge-regress item j on every other item (diag(B)=0 by design)."""
    n_items = x.shape[1]
    b = np.zeros((n_items, n_items))
    for j in range(n_items):
        others = [i for i in range(n_items) if i != j]
        xo = x[:, others]
        b[others, j] = np.linalg.solve(xo.T @ xo + lam * np.eye(n_items - 1), xo.T @ x[:, j])
    return b


def _random_matrix(rng: np.random.Generator, n_users: int = 60, n_items: int = 12) -> sp.csr_matrix:
    dense = (rng.random((n_users, n_items)) < 0.3) * rng.integers(1, 5, (n_users, n_items))
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 2  # no empty user
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("lam", [0.5, 10.0])
def test_tiny_matches_ridge_solves(lam):
    model = EASE(regularization=lam).fit(sp.csr_matrix(TINY))
    b = model.item_weights_
    assert b.dtype == np.float32 and b.shape == (4, 4) and b.flags.c_contiguous
    assert not b.diagonal().any()
    np.testing.assert_allclose(b, _ease_by_ridge(TINY, lam), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(np.arange(5)), TINY @ b, rtol=1e-5, atol=1e-6)


def test_matches_direct_inverse(rng):
    x = _random_matrix(rng)
    model = EASE(regularization=3.0).fit(x)
    xb = (x.toarray() > 0).astype(np.float64)
    p = np.linalg.solve(xb.T @ xb + 3.0 * np.eye(x.shape[1]), np.eye(x.shape[1]))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.item_weights_, expected, rtol=1e-5, atol=1e-6)


def test_weighted_when_not_binarized(rng):
    x = _random_matrix(rng)
    weighted = EASE(regularization=5.0, binarize=False).fit(x).item_weights_
    binary = EASE(regularization=5.0).fit(x).item_weights_
    np.testing.assert_allclose(weighted, _ease_by_ridge(x.toarray(), 5.0), rtol=1e-4, atol=1e-6)
    assert not np.allclose(weighted, binary)


def test_larger_regularization_shrinks_weights(rng):
    x = _random_matrix(rng)
    norms = [np.linalg.norm(EASE(regularization=lam).fit(x).item_weights_) for lam in (1, 10, 100)]
    assert norms[0] > norms[1] > norms[2]


def test_fold_in_equals_score(clusters):
    model = EASE(regularization=10.0).fit(clusters)
    users = np.array([0, 3, 17, 42])
    hist = clusters.matrix[users]
    np.testing.assert_allclose(model.score_history(hist), model.score(users), rtol=1e-6)
    items = np.array([5, 0, 9])
    np.testing.assert_allclose(
        model.score_history(hist, items), model.score(users, items), rtol=1e-6
    )
    a, b = model.recommend_history(hist, k=5), model.recommend(users, k=5)
    np.testing.assert_array_equal(a.items, b.items)
    with pytest.raises(DataError, match="columns"):
        model.score_history(sp.csr_matrix((1, clusters.n_items - 1)))


def test_contributions_sum_to_score(clusters):
    model = EASE(regularization=10.0).fit(clusters)
    for u in (0, 7, 33):
        row = clusters.matrix[u]
        scores = model.score(np.array([u]))[0]
        for item in (1, 10, int(np.argmax(scores))):
            hist_items, contrib = model.explain_contributions(row, item)
            assert sorted(hist_items.tolist()) == sorted(row.indices.tolist())
            assert contrib.sum() == pytest.approx(scores[item], abs=1e-6)
            assert np.all(np.diff(contrib) <= 0)
    with pytest.raises(DataError, match="single row"):
        model.explain_contributions(clusters.matrix[:2], 0)


def test_similar_items_are_rows_of_weights(clusters):
    model = EASE(regularization=10.0).fit(clusters)
    items = np.array([0, 5, 11])
    recs = model.similar_items(items, k=6)
    assert recs.users.tolist() == items.tolist() and recs.items.shape == (3, 6)
    one_hot = sp.csr_matrix((np.ones(3), (np.arange(3), items)), shape=(3, clusters.n_items))
    via_fold_in = model.recommend_history(one_hot, k=6)
    np.testing.assert_array_equal(recs.items, via_fold_in.items)
    for row, i in enumerate(items):
        assert i not in recs.items[row]
    everything = model.similar_items(np.array([2]), k=clusters.n_items)
    assert (everything.items[0] >= 0).sum() == clusters.n_items - 1
    assert everything.items[0, -1] == -1


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"regularization": -1.0}, "regularization"),
        ({"regularization": 0.0}, "regularization"),
        ({"regularization": "big"}, "regularization"),
        ({"binarize": None}, "binarize"),
    ],
)
def test_invalid_params(params, name):
    with pytest.raises(ConfigError, match=name):
        EASE(**params).fit(sp.csr_matrix(TINY))


@pytest.mark.parametrize("binarize", [True, False])
def test_dense_and_sparse_gram_paths_agree(rng, monkeypatch, binarize):
    x = _random_matrix(rng, 90, 20)
    monkeypatch.setattr(ease, "_DENSE_GRAM_RATIO", float("inf"))  # always sparse
    sparse = EASE(regularization=2.0, binarize=binarize).fit(x).item_weights_
    monkeypatch.setattr(ease, "_DENSE_GRAM_RATIO", 0.0)  # always dense
    monkeypatch.setattr(ease, "_DENSE_BLOCK_ENTRIES", 7 * x.shape[1])  # blocks of 7 users
    dense = EASE(regularization=2.0, binarize=binarize).fit(x).item_weights_
    np.testing.assert_allclose(dense, sparse, rtol=1e-6, atol=1e-7)
    xd = x.toarray() if not binarize else (x.toarray() > 0).astype(np.float64)
    np.testing.assert_allclose(dense, _ease_by_ridge(xd, 2.0), rtol=1e-4, atol=1e-6)
