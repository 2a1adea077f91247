"""ItemKNN behaviour beyond the contract: hand-computed similarities, pruning, shrinkage, fold-in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError
from lumenrec.models import itemknn
from lumenrec.models.itemknn import ItemKNN, bm25_weight

TINY = np.array(
    [
        [1, 1, 0, 0],
        [1, 0, 1, 0],
        [0, 1, 1, 1],
        [1, 1, 1, 0],
        [0, 0, 0, 1],
    ],
    dtype=np.float32,
)


def _cosine_loops(x: np.ndarray, shrinkage: float = 0.0) -> np.ndarray:
    """Item-item cosine with explicit loops (zero diagonal)."""
    n_items = x.shape[1]
    out = np.zeros((n_items, n_items))
    for i in range(n_items):
        for j in range(n_items):
            if i == j:
                continue
            dot = sum(x[u, i] * x[u, j] for u in range(x.shape[0]))
            ni = np.sqrt(sum(x[u, i] ** 2 for u in range(x.shape[0])))
            nj = np.sqrt(sum(x[u, j] ** 2 for u in range(x.shape[0])))
            out[i, j] = dot / (ni * nj + shrinkage) if dot else 0.0
    return out


def _random_matrix(
    rng: np.random.Generator, n_users: int = 150, n_items: int = 60
) -> sp.csr_matrix:
    dense = (rng.random((n_users, n_items)) < 0.15) * rng.integers(1, 5, (n_users, n_items))
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1  # no empty user
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("shrinkage", [0.0, 2.0])
def test_tiny_cosine_matches_loops(shrinkage):
    model = ItemKNN(n_neighbors=10, shrinkage=shrinkage).fit(sp.csr_matrix(TINY))
    sim = model.similarity_
    assert sp.isspmatrix_csr(sim) and sim.dtype == np.float32 and sim.shape == (4, 4)
    np.testing.assert_allclose(sim.toarray(), _cosine_loops(TINY, shrinkage), rtol=1e-6)
    assert not sim.diagonal().any()
    # item 0 and item 1 share users 0 and 3; each was seen by 3 users: 2 / 3
    assert sim[0, 1] == pytest.approx(2 / (3 + shrinkage))


def test_weighted_when_not_binarized(rng):
    x = _random_matrix(rng, 30, 8)
    binary = ItemKNN(n_neighbors=10).fit(x).similarity_.toarray()
    weighted = ItemKNN(n_neighbors=10, binarize=False).fit(x).similarity_.toarray()
    np.testing.assert_allclose(binary, _cosine_loops((x.toarray() > 0).astype(float)), rtol=1e-5)
    np.testing.assert_allclose(weighted, _cosine_loops(x.toarray()), rtol=1e-5)
    assert not np.allclose(binary, weighted)


def test_score_is_history_times_similarity():
    model = ItemKNN(n_neighbors=10).fit(sp.csr_matrix(TINY))
    expected = TINY @ _cosine_loops(TINY)
    np.testing.assert_allclose(model.score(np.arange(5)), expected, rtol=1e-6)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_topk_pruning_keeps_exactly_k_largest(rng, k):
    x = _random_matrix(rng)
    full = ItemKNN(n_neighbors=1000).fit(x).similarity_.toarray()
    sim = ItemKNN(n_neighbors=k).fit(x).similarity_
    counts = np.diff(sim.tocsc().indptr)
    assert np.all(counts == np.minimum(k, (full != 0).sum(axis=0)))
    assert np.all(counts == k)  # this matrix is dense enough for every item
    pruned = sim.toarray()
    for i in range(x.shape[1]):
        kept = np.sort(pruned[:, i][pruned[:, i] != 0])[::-1]
        np.testing.assert_allclose(kept, np.sort(full[:, i])[::-1][:k], rtol=1e-6)
        # kept entries are unchanged values of the full similarity
        nz = np.flatnonzero(pruned[:, i])
        np.testing.assert_allclose(pruned[nz, i], full[nz, i], rtol=1e-6)


def test_blocking_does_not_change_the_result(rng, monkeypatch):
    x = _random_matrix(rng)
    one_block = ItemKNN(n_neighbors=5, similarity="bm25").fit(x).similarity_
    monkeypatch.setattr(itemknn, "_MAX_BLOCK_ENTRIES", 7 * x.shape[1])  # blocks of 7 items
    many = ItemKNN(n_neighbors=5, similarity="bm25").fit(x).similarity_
    assert (one_block != many).nnz == 0


def test_pruning_breaks_ties_by_lowest_index():
    # items 1..4 are all identical to item 0's single user, so they tie
    x = sp.csr_matrix(np.ones((1, 5), np.float32))
    sim = ItemKNN(n_neighbors=2).fit(x).similarity_.toarray()
    assert list(np.flatnonzero(sim[:, 0])) == [1, 2]
    assert list(np.flatnonzero(sim[:, 3])) == [0, 1]


def test_shrinkage_lowers_rare_pairs():
    # items 0,1: one user each, co-occurring once (cosine 1).
    # items 2,3: 10 users each, co-occurring on 8 (cosine 0.8).
    rows = [[0, 1]] + [[2, 3]] * 8 + [[2], [2], [3], [3]]
    x = sp.lil_matrix((len(rows), 4), dtype=np.float32)
    for u, items in enumerate(rows):
        x[u, items] = 1
    plain = ItemKNN(n_neighbors=3).fit(x.tocsr()).similarity_.toarray()
    shrunk = ItemKNN(n_neighbors=3, shrinkage=5.0).fit(x.tocsr()).similarity_.toarray()
    assert plain[0, 1] == pytest.approx(1.0) and plain[2, 3] == pytest.approx(0.8)
    assert plain[0, 1] > plain[2, 3]
    assert shrunk[0, 1] < shrunk[2, 3]  # the rare pair falls below the frequent one
    assert shrunk[0, 1] == pytest.approx(1 / 6) and shrunk[2, 3] == pytest.approx(8 / 15)
    assert np.all(shrunk <= plain + 1e-7)


def _bm25_loops(x: np.ndarray, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """implicit's bm25_weight(user_items.T).T written out: items are documents, users terms."""
    n_users, n_items = x.shape
    out = np.zeros_like(x, dtype=float)
    item_len = x.sum(axis=0)
    avg = item_len.mean()
    for u in range(n_users):
        idf = np.log(n_items) - np.log1p((x[u] != 0).sum())
        for i in range(n_items):
            if x[u, i]:
                norm = (1 - b) + b * item_len[i] / avg
                out[u, i] = x[u, i] * (k1 + 1) / (k1 * norm + x[u, i]) * idf
    return out


def test_bm25_weight_matches_loops_and_implicit(rng):
    x = _random_matrix(rng, 40, 12)
    ours = bm25_weight(x).toarray()
    np.testing.assert_allclose(ours, _bm25_loops(x.toarray()), rtol=1e-5)
    nn = pytest.importorskip("implicit.nearest_neighbours")
    theirs = nn.bm25_weight(x.T, K1=1.2, B=0.75).T.toarray()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_bm25_is_cosine_of_weighted_matrix_and_differs(rng):
    x = _random_matrix(rng, 80, 15)
    bm25 = ItemKNN(n_neighbors=100, similarity="bm25").fit(x).similarity_.toarray()
    cosine = ItemKNN(n_neighbors=100).fit(x).similarity_.toarray()
    weighted = _bm25_loops((x.toarray() > 0).astype(float))
    np.testing.assert_allclose(bm25, _cosine_loops(weighted), rtol=1e-4, atol=1e-7)
    assert np.abs(bm25 - cosine).max() > 1e-3


def test_normalize_columns_sum_to_one(rng):
    x = _random_matrix(rng)
    model = ItemKNN(n_neighbors=4, normalize=True).fit(x)
    sums = np.asarray(model.similarity_.sum(axis=0)).ravel()
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
    raw = ItemKNN(n_neighbors=4).fit(x).similarity_
    assert (raw != 0).toarray().tolist() == (model.similarity_ != 0).toarray().tolist()


@pytest.mark.parametrize("params", [{}, {"similarity": "bm25", "n_neighbors": 5}])
def test_fold_in_equals_score(clusters, params):
    model = ItemKNN(**params).fit(clusters)
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
        model.score_history(sp.csr_matrix((1, clusters.n_items + 1)))


def test_contributions_sum_to_score(clusters):
    model = ItemKNN(n_neighbors=20).fit(clusters)
    for u in (0, 7, 33):
        row = clusters.matrix[u]
        scores = model.score(np.array([u]))[0]
        for item in (1, 10, int(np.argmax(scores))):
            hist_items, contrib = model.explain_contributions(row, item)
            assert sorted(hist_items.tolist()) == sorted(row.indices.tolist())
            assert contrib.sum() == pytest.approx(scores[item], abs=1e-6)
            assert np.all(np.diff(contrib) <= 0)
        # a dense 1-D history works too
        dense_items, dense_contrib = model.explain_contributions(row.toarray()[0], 10)
        np.testing.assert_allclose(dense_contrib.sum(), scores[10], atol=1e-6)


def test_similar_items_are_the_kept_neighbours():
    model = ItemKNN(n_neighbors=2).fit(sp.csr_matrix(TINY))
    full = _cosine_loops(TINY)
    recs = model.similar_items(np.arange(4), k=3)
    assert recs.items.shape == (4, 3) and recs.users.tolist() == [0, 1, 2, 3]
    for i in range(4):
        assert i not in recs.items[i]
        assert recs.items[i, 2] == -1 and np.isneginf(recs.scores[i, 2])  # only 2 kept
        expected = sorted(range(4), key=lambda j: (-full[j, i], j))[:2]
        assert recs.items[i, :2].tolist() == expected
        np.testing.assert_allclose(recs.scores[i, :2], full[expected, i], rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"n_neighbors": 2.5}, "n_neighbors"),
        ({"similarity": "foo"}, "similarity"),
        ({"shrinkage": -1.0}, "shrinkage"),
        ({"binarize": "yes"}, "binarize"),
    ],
)
def test_invalid_params(params, name):
    with pytest.raises(ConfigError, match=name):
        ItemKNN(**params).fit(sp.csr_matrix(TINY))
