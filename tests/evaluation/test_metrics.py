"""Tests for lumenrec.evaluation.metrics: hand-computed cases, ir_measures oracle, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lumenrec.errors import ConfigError, DataError
from lumenrec.evaluation.metrics import (
    RANKING_METRICS,
    evaluate_rankings,
    f1_at_k,
    hit_matrix,
    hit_rate_at_k,
    mae,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
    summarize,
)

ir_measures = pytest.importorskip("ir_measures")

NAN = float("nan")
L2 = math.log2


def _relevant(rows: list[set[int]], n_items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for u, items in enumerate(rows):
        dense[u, sorted(items)] = 1.0
    return sp.csr_matrix(dense)


# ----------------------------------------------------------------------------- hand-computed

# user 0: hits at ranks 2 and 5, 3 relevant items
# user 1: a single item (then padding), which is the only relevant one
# user 2: no relevant items -> NaN everywhere
# user 3: item 3 twice (the duplicate at rank 2 is a miss), padding at rank 3, hit at rank 4
RANKED = np.array(
    [
        [2, 5, 1, 7, 0],
        [4, -1, -1, -1, -1],
        [6, 6, 1, -1, -1],
        [3, 3, -1, 6, 2],
    ],
    dtype=np.int32,
)
RELEVANT = _relevant([{5, 0, 3}, {4}, set(), {3, 6}], n_items=8)

HAND = {
    ("precision", 3): [1 / 3, 1 / 3, NAN, 1 / 3],
    ("precision", 5): [2 / 5, 1 / 5, NAN, 2 / 5],
    ("precision", 10): [2 / 10, 1 / 10, NAN, 2 / 10],  # k > k_max: missing ranks are misses
    ("recall", 3): [1 / 3, 1.0, NAN, 1 / 2],
    ("recall", 5): [2 / 3, 1.0, NAN, 1.0],
    ("hr", 1): [0.0, 1.0, NAN, 1.0],
    ("hr", 2): [1.0, 1.0, NAN, 1.0],
    # F1 = 2PR/(P+R): u0 2*.4*(2/3)/(.4+2/3) = .5; u1 2*.2*1/1.2 = 1/3; u3 2*.4*1/1.4 = 4/7
    ("f1", 5): [0.5, 1 / 3, NAN, 4 / 7],
    ("f1", 1): [0.0, 1.0, NAN, 2 / 3],  # u0: P = R = 0 -> 0 (not NaN); u3: 2*1*.5/1.5
    # DCG = sum 1/log2(rank+1); IDCG over min(|rel|, k) ideal ranks
    ("ndcg", 5): [
        (1 / L2(3) + 1 / L2(6)) / (1 + 1 / L2(3) + 1 / L2(4)),
        1.0,
        NAN,
        (1 + 1 / L2(5)) / (1 + 1 / L2(3)),
    ],
    ("ndcg", 2): [(1 / L2(3)) / (1 + 1 / L2(3)), 1.0, NAN, 1 / (1 + 1 / L2(3))],
    # AP@k: precisions at hit ranks / min(|rel|, k)
    ("map", 5): [(1 / 2 + 2 / 5) / 3, 1.0, NAN, (1 / 1 + 2 / 4) / 2],
    ("map", 2): [(1 / 2) / 2, 1.0, NAN, 1 / 2],
    ("mrr", 1): [0.0, 1.0, NAN, 1.0],
    ("mrr", 5): [1 / 2, 1.0, NAN, 1.0],
}
FUNCS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "f1": f1_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "mrr": mrr_at_k,
    "hr": hit_rate_at_k,
}


@pytest.mark.parametrize(("name", "k"), list(HAND))
def test_hand_computed(name: str, k: int) -> None:
    got = FUNCS[name](RANKED, RELEVANT, k)
    assert got.shape == (4,)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, HAND[name, k], rtol=0, atol=1e-12)


def test_hit_matrix_padding_and_duplicates() -> None:
    expected = np.array(
        [
            [False, True, False, False, True],
            [True, False, False, False, False],
            [False, False, False, False, False],
            [True, False, False, True, False],  # later duplicate of item 3 is a miss
        ]
    )
    np.testing.assert_array_equal(hit_matrix(RANKED, RELEVANT), expected)


def test_padding_in_the_middle_keeps_its_rank() -> None:
    # a -1 hole at rank 1 is a miss at rank 1; the hit stays at rank 2
    rel = _relevant([{0}], 3)
    assert mrr_at_k(np.array([[-1, 0]]), rel, 2)[0] == 0.5


def test_map_is_normalised_by_min_relevant_k() -> None:
    # 4 relevant items, k = 2, both top items relevant: AP@2 = (1/1 + 2/2) / min(4, 2) = 1.
    # trec_eval / ir_measures' AP@2 would divide by 4 and give 0.5.
    rel = _relevant([{0, 1, 2, 3}], 6)
    ranked = np.array([[0, 1, 4, 5]])
    assert map_at_k(ranked, rel, 2)[0] == 1.0
    oracle = _oracle(ranked, rel, 2)
    assert oracle["AP@2"][0] == 0.5
    # one hit at rank 2 of 3 with 4 relevant: (1/2) / min(4, 3)
    assert map_at_k(np.array([[5, 0, 4]]), rel, 3)[0] == pytest.approx(1 / 6, abs=1e-15)


def test_relevant_as_csr_array_and_non_canonical_matrix() -> None:
    # unsorted indices, a duplicate entry and an explicit zero (not relevant)
    coo = sp.coo_matrix(([1.0, 1.0, 1.0, 0.0], ([0, 0, 0, 0], [5, 0, 5, 2])), shape=(1, 8))
    rel = sp.csr_matrix(coo)
    rel.has_sorted_indices = False
    ranked = np.array([[2, 5, 0]])
    np.testing.assert_allclose(recall_at_k(ranked, rel, 3), [1.0])
    np.testing.assert_allclose(precision_at_k(ranked, sp.csr_array(coo), 3), [2 / 3])


def test_bool_relevant_and_unsigned_ranked() -> None:
    rel = sp.csr_array(np.array([[True, False, True]]))
    ranked = np.array([[2, 1, 0]], dtype=np.uint16)
    np.testing.assert_allclose(map_at_k(ranked, rel, 3), [(1 / 1 + 2 / 3) / 2])


def test_zero_width_ranking() -> None:
    got = ndcg_at_k(np.zeros((2, 0), dtype=np.int32), _relevant([{1}, set()], 3), 5)
    np.testing.assert_array_equal(got, [0.0, NAN])


def test_evaluate_rankings_matches_single_functions() -> None:
    out = evaluate_rankings(RANKED, RELEVANT, ks=(1, 5, 10))
    assert list(out) == [f"{m}@{k}" for m in RANKING_METRICS for k in (1, 5, 10)]
    for key, values in out.items():
        name, k = key.split("@")
        np.testing.assert_array_equal(values, FUNCS[name](RANKED, RELEVANT, int(k)))
    only = evaluate_rankings(RANKED, RELEVANT, ks=[3], metrics=["ndcg"])
    assert list(only) == ["ndcg@3"]


def test_summarize_skips_nan_users() -> None:
    out = summarize(evaluate_rankings(RANKED, RELEVANT, ks=(5,), metrics=("precision", "mrr")))
    assert out["n_users"] == 3
    assert out["precision@5"] == pytest.approx((2 / 5 + 1 / 5 + 2 / 5) / 3)
    assert out["mrr@5"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    empty = summarize({"x": np.array([NAN, NAN])})
    assert math.isnan(empty["x"]) and empty["n_users"] == 0
    assert summarize({}) == {"n_users": 0}
    with pytest.raises(DataError, match="equal length"):
        summarize({"a": np.zeros(2), "b": np.zeros(3)})


@pytest.mark.parametrize("bad", [-3, 0, 2.5, True, "5", None])
def test_bad_k_raises_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"k must be a positive int \(got"):
        precision_at_k(RANKED, RELEVANT, bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        evaluate_rankings(RANKED, RELEVANT, ks=(5, bad))  # type: ignore[arg-type]


def test_k_message_and_numpy_int() -> None:
    with pytest.raises(ConfigError, match=r"k must be a positive int \(got -3\)"):
        ndcg_at_k(RANKED, RELEVANT, -3)
    assert ndcg_at_k(RANKED, RELEVANT, np.int64(5))[1] == 1.0


def test_config_errors_for_metric_names() -> None:
    with pytest.raises(ConfigError, match="unknown metric"):
        evaluate_rankings(RANKED, RELEVANT, metrics=("ndcg", "auc"))
    with pytest.raises(ConfigError):
        evaluate_rankings(RANKED, RELEVANT, ks=())


def test_data_errors() -> None:
    with pytest.raises(DataError, match=r"\(3, 5\).*\(4, 8\)"):
        hit_matrix(RANKED[:3], RELEVANT)
    with pytest.raises(DataError, match="item index 8"):
        hit_matrix(np.array([[8]]), _relevant([{1}], 8))
    with pytest.raises(DataError, match="-2"):
        hit_matrix(np.array([[-2]]), _relevant([{1}], 8))
    with pytest.raises(DataError, match="integer"):
        hit_matrix(np.array([[1.0]]), _relevant([{1}], 8))
    with pytest.raises(DataError, match="2-D"):
        hit_matrix(np.array([1, 2]), _relevant([{1}], 8))
    with pytest.raises(DataError, match="scipy.sparse"):
        hit_matrix(RANKED, RELEVANT.toarray())


def test_rmse_mae_hand_computed() -> None:
    y_true, y_pred = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 5.0, 4.0]  # errors -1, 0, -2, 0
    assert rmse(y_true, y_pred) == pytest.approx(math.sqrt((1 + 0 + 4 + 0) / 4))
    assert mae(y_true, y_pred) == pytest.approx((1 + 0 + 2 + 0) / 4)
    assert rmse([3.0], [3.0]) == 0.0


@pytest.mark.parametrize("func", [rmse, mae])
def test_rating_metric_errors(func) -> None:  # noqa: ANN001
    with pytest.raises(DataError, match=r"\(2,\).*\(3,\)"):
        func([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="NaN"):
        func([1.0, NAN], [1.0, 2.0])
    with pytest.raises(DataError, match="y_pred"):
        func([1.0, 2.0], [1.0, math.inf])
    with pytest.raises(DataError, match="empty"):
        func([], [])


# ----------------------------------------------------------------------------- ir_measures oracle

ORACLE_MEASURES = ("P", "R", "nDCG", "AP", "RR", "Success")


def _to_trec(ranked: np.ndarray, relevant: sp.csr_matrix) -> tuple[dict, dict]:
    """qrels for users with >= 1 relevant item; run scores k_max - rank (strictly distinct)."""
    k_max = ranked.shape[1]
    qrels, run = {}, {}
    for u in range(ranked.shape[0]):
        rel = relevant.indices[relevant.indptr[u] : relevant.indptr[u + 1]]
        if rel.size:
            qrels[str(u)] = {str(i): 1 for i in rel}
        docs = {str(i): float(k_max - r) for r, i in enumerate(ranked[u]) if i >= 0}
        if docs:
            run[str(u)] = docs
    return qrels, run


def _oracle(ranked: np.ndarray, relevant: sp.csr_matrix, k: int) -> dict[str, np.ndarray]:
    qrels, run = _to_trec(ranked, relevant)
    measures = [ir_measures.parse_measure(f"{m}@{k}") for m in ORACLE_MEASURES]
    out = {str(m): np.full(ranked.shape[0], NAN) for m in measures}
    for metric in ir_measures.iter_calc(measures, qrels, run):
        out[str(metric.measure)][int(metric.query_id)] = metric.value
    return out


def _check_against_oracle(ranked: np.ndarray, relevant: sp.csr_matrix, k: int) -> None:
    ours = evaluate_rankings(ranked, relevant, ks=(k,))
    oracle = _oracle(ranked, relevant, k)
    n_rel = np.diff(relevant.indptr)
    has_rel = n_rel > 0
    # users without relevant items: NaN for us, absent (skipped) for trec_eval
    for values in [*ours.values(), *oracle.values()]:
        assert np.isnan(values[~has_rel]).all()
        assert not np.isnan(values[has_rel]).any()
    pairs = {"precision": "P", "recall": "R", "ndcg": "nDCG", "mrr": "RR", "hr": "Success"}
    for name, measure in pairs.items():
        np.testing.assert_allclose(
            ours[f"{name}@{k}"][has_rel], oracle[f"{measure}@{k}"][has_rel], rtol=0, atol=1e-9
        )
    # AP: trec_eval's map_cut divides by |rel|, ours by min(|rel|, k) -> rescale the oracle
    ap_ours = ours[f"map@{k}"][has_rel]
    ap_trec = oracle[f"AP@{k}"][has_rel]
    scale = n_rel[has_rel] / np.minimum(n_rel[has_rel], k)
    np.testing.assert_allclose(ap_ours, ap_trec * scale, rtol=0, atol=1e-9)
    small = n_rel[has_rel] <= k  # where the definitions coincide: direct equality
    np.testing.assert_allclose(ap_ours[small], ap_trec[small], rtol=0, atol=1e-9)
    # F1 derived from the oracle's P and R
    p, r = oracle[f"P@{k}"][has_rel], oracle[f"R@{k}"][has_rel]
    f1 = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1.0), 0.0)
    np.testing.assert_allclose(ours[f"f1@{k}"][has_rel], f1, rtol=0, atol=1e-9)


@st.composite
def ranking_cases(draw: st.DrawFn) -> tuple[np.ndarray, sp.csr_matrix, int]:
    """Random rankings without duplicates, tail-padded with -1, and random relevant sets."""
    n_items = draw(st.integers(1, 25))
    n_users = draw(st.integers(1, 6))
    k_max = draw(st.integers(0, 12))
    ranked = np.full((n_users, k_max), -1, dtype=np.int32)
    rel_sets = []
    for u in range(n_users):
        length = draw(st.integers(0, min(k_max, n_items)))
        perm = draw(st.permutations(range(n_items)))
        ranked[u, :length] = perm[:length]
        rel_sets.append(draw(st.sets(st.integers(0, n_items - 1), max_size=n_items)))
    k = draw(st.integers(1, 15))
    return ranked, _relevant(rel_sets, n_items), k


@settings(max_examples=60, deadline=None)
@given(ranking_cases())
def test_oracle_hypothesis(case: tuple[np.ndarray, sp.csr_matrix, int]) -> None:
    ranked, relevant, k = case
    _check_against_oracle(ranked, relevant, k)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oracle_seeded_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items, k_max = 150, 60, 20
    ranked = np.full((n_users, k_max), -1, dtype=np.int32)
    lengths = rng.integers(0, k_max + 1, size=n_users)
    for u in range(n_users):
        ranked[u, : lengths[u]] = rng.permutation(n_items)[: lengths[u]]
    dense = rng.random((n_users, n_items)) < rng.uniform(0.0, 0.3, size=(n_users, 1))
    relevant = sp.csr_matrix(dense.astype(np.float64))
    assert (np.diff(relevant.indptr) == 0).any()  # some users are excluded
    for k in (1, 3, 10, 20, 25):
        _check_against_oracle(ranked, relevant, k)


def test_tied_scores_follow_our_rank_order_not_trec_eval_docid_order() -> None:
    # Our metrics only see rank order: item 1 at rank 1, item 2 (relevant) at rank 2.
    ranked = np.array([[1, 2]])
    relevant = _relevant([{2}], 3)
    assert precision_at_k(ranked, relevant, 1)[0] == 0.0
    assert mrr_at_k(ranked, relevant, 2)[0] == 0.5
    # With rank-encoded (strictly distinct) scores trec_eval agrees with us ...
    qrels = {"0": {"2": 1}}
    distinct = {"0": {"1": 2.0, "2": 1.0}}
    tied = {"0": {"1": 1.0, "2": 1.0}}
    p1 = ir_measures.parse_measure("P@1")
    rr = ir_measures.parse_measure("RR@2")
    calc = ir_measures.pytrec_eval.calc_aggregate
    assert calc([p1, rr], qrels, distinct) == {p1: 0.0, rr: 0.5}
    # ... but with equal scores trec_eval breaks the tie by docid (descending), putting "2"
    # first, which is why the oracle tests never feed it tied scores.
    assert calc([p1, rr], qrels, tied) == {p1: 1.0, rr: 1.0}


# ----------------------------------------------------------------------------- properties


@settings(max_examples=80, deadline=None)
@given(ranking_cases())
def test_ndcg_bounded_and_recall_monotone(case: tuple[np.ndarray, sp.csr_matrix, int]) -> None:
    ranked, relevant, _ = case
    recalls = [recall_at_k(ranked, relevant, k) for k in range(1, ranked.shape[1] + 3)]
    for k in range(1, ranked.shape[1] + 3):
        nd = ndcg_at_k(ranked, relevant, k)
        ok = ~np.isnan(nd)
        assert ((nd[ok] >= 0) & (nd[ok] <= 1 + 1e-12)).all()
    for lo, hi in zip(recalls, recalls[1:], strict=False):
        ok = ~np.isnan(lo)
        assert (hi[ok] >= lo[ok]).all()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_perfect_ranking_scores_one(data: st.DataObject) -> None:
    n_items = data.draw(st.integers(1, 20))
    rel = data.draw(st.sets(st.integers(0, n_items - 1), min_size=1, max_size=n_items))
    rel_order = data.draw(st.permutations(sorted(rel)))
    others = data.draw(st.permutations(sorted(set(range(n_items)) - rel)))
    ranked = np.array([list(rel_order) + list(others)], dtype=np.int32)
    relevant = _relevant([rel], n_items)
    for k in range(1, n_items + 3):
        for func in (ndcg_at_k, map_at_k, mrr_at_k, hit_rate_at_k):
            assert func(ranked, relevant, k)[0] == pytest.approx(1.0, abs=1e-12)
        assert recall_at_k(ranked, relevant, k)[0] == pytest.approx(min(k, len(rel)) / len(rel))


@settings(max_examples=60, deadline=None)
@given(ranking_cases(), st.randoms(use_true_random=False))
def test_invariant_to_relevant_entry_order(case, rnd) -> None:  # noqa: ANN001
    ranked, relevant, k = case
    coo = relevant.tocoo()
    perm = list(range(coo.nnz))
    rnd.shuffle(perm)
    shuffled = sp.csr_matrix((coo.data[perm], (coo.row[perm], coo.col[perm])), shape=relevant.shape)
    a = evaluate_rankings(ranked, relevant, ks=(k,))
    b = evaluate_rankings(ranked, shuffled, ks=(k,))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_hit_matrix_matches_naive_loop(data: st.DataObject) -> None:
    n_items = data.draw(st.integers(1, 10))
    n_users = data.draw(st.integers(1, 5))
    k_max = data.draw(st.integers(0, 8))
    ranked = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(-1, n_items - 1), min_size=k_max, max_size=k_max),
                min_size=n_users,
                max_size=n_users,
            )
        ),
        dtype=np.int32,
    ).reshape(n_users, k_max)
    rel_sets = [data.draw(st.sets(st.integers(0, n_items - 1))) for _ in range(n_users)]
    expected = np.zeros((n_users, k_max), dtype=bool)
    for u in range(n_users):
        seen: set[int] = set()
        for r, item in enumerate(ranked[u]):
            expected[u, r] = item in rel_sets[u] and item not in seen
            seen.add(int(item))
    np.testing.assert_array_equal(hit_matrix(ranked, _relevant(rel_sets, n_items)), expected)
