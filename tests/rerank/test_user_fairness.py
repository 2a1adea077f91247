"""The label-free user-fairness re-ranker narrows a planted active–inactive gap."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.datasets.fairrecsys import fairrecsys_metrics
from lumenrec.errors import ConfigError, DataError
from lumenrec.rerank.user_fairness import (
    blend_order,
    offset_for_gap,
    rank_gains,
    user_fair_rerank,
)


def _planted(rng, n_users=200, n_cand=30, n_items=60):
    """Advantaged users: their top candidates are relevant with high probability."""
    advantaged = np.zeros(n_users, dtype=bool)
    advantaged[:40] = True
    items = np.stack([rng.permutation(n_items)[:n_cand] for _ in range(n_users)])
    scores = np.sort(rng.random((n_users, n_cand)), axis=1)[:, ::-1]
    p = np.where(advantaged[:, None], 0.8, 0.3) * np.exp(-np.arange(n_cand) / 8.0)

    def draw():
        hit = rng.random((n_users, n_cand)) < p
        rows = np.repeat(np.arange(n_users), n_cand)[hit.ravel()]
        return sp.csr_matrix((np.ones(rows.size), (rows, items[hit])), shape=(n_users, n_items))

    return items, scores, advantaged, draw(), draw()


def _gap(items, relevant, advantaged, k=10):
    ndcg = fairrecsys_metrics(items, relevant, k)[f"ndcg@{k}"]  # fixed IDCG, as the model
    ok = ~np.isnan(ndcg)
    return ndcg[ok & advantaged].mean() - ndcg[ok & ~advantaged].mean(), np.nanmean(ndcg)


def test_gap_narrows_without_test_labels(rng):
    items, scores, advantaged, tune, test = _planted(rng)
    base_gap, base_all = _gap(items[:, :10], test, advantaged)
    assert base_gap > 0.1
    gains = rank_gains(items, tune, advantaged)  # hold-out only
    offset = offset_for_gap(gains, 10, 0.5)
    assert 0 < offset <= 20
    out, out_scores = user_fair_rerank(items, scores, advantaged, 10, offset=offset)
    assert out.shape == (200, 10) and out_scores.shape == (200, 10)
    np.testing.assert_array_equal(out[~advantaged], items[~advantaged, :10])
    gap, overall = _gap(out, test, advantaged)
    assert 0.2 * base_gap < gap < 0.8 * base_gap  # roughly halved
    assert overall < base_all  # the price is paid by the advantaged group only
    assert offset_for_gap(gains, 10, 0.0) == 0.0


def test_fractional_offset_and_priority():
    items = np.tile(np.arange(6), (4, 1))
    scores = np.tile(np.linspace(1, 0, 6), (4, 1))
    adv = np.array([True, True, False, True])
    out, _ = user_fair_rerank(items, scores, adv, 2, offset=1.0 / 3.0, priority=[0, 5, 9, 1])
    assert out.tolist() == [[0, 1], [1, 2], [0, 1], [0, 1]]  # user 1 has the top priority
    out, _ = user_fair_rerank(items, scores, adv, 2, offset=4)
    assert out[0].tolist() == [4, 5] and out[2].tolist() == [0, 1]
    with pytest.raises(ConfigError, match="offset"):
        user_fair_rerank(items, scores, adv, 2, offset=5)
    with pytest.raises(DataError, match="bool"):
        user_fair_rerank(items, scores, adv.astype(int), 2)
    with pytest.raises(ConfigError, match="k must"):
        user_fair_rerank(items, scores, adv, 7)


def test_blend_order_and_errors():
    scores = np.array([[3.0, 2.0, 1.0, -np.inf], [1.0, 1.0, 0.5, 0.0]])
    prior = np.array([[0.0, 1.0, 5.0, 9.0], [0.0, 1.0, 0.0, np.nan]])
    assert blend_order(scores, prior, 0.0).tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    # a heavy prior wins, padding (-inf score) stays last, a missing prior counts as average
    assert blend_order(scores, prior, 100.0).tolist() == [[2, 1, 0, 3], [1, 3, 0, 2]]
    with pytest.raises(ConfigError, match="prior_weight"):
        blend_order(scores, prior, -1.0)
    with pytest.raises(DataError, match="shape"):
        blend_order(scores, prior[:, :2], 1.0)


def test_prior_blend_lifts_disadvantaged_users(rng):
    """The disadvantaged users' relevance follows a prior the base scores only half see:
    blending it in (weight picked on the tune draw) raises their NDCG and narrows the gap;
    advantaged users' lists are untouched at offset 0."""
    items, scores, advantaged, _, _ = _planted(rng)
    n_users, n_cand = items.shape
    prior = rng.normal(size=(n_users, n_cand))
    p = np.where(advantaged[:, None], 0.6, 0.25) / (1 + np.exp(-2 * prior))

    def draw():
        hit = rng.random((n_users, n_cand)) < p
        rows = np.repeat(np.arange(n_users), n_cand)[hit.ravel()]
        return sp.csr_matrix((np.ones(rows.size), (rows, items[hit])), shape=(n_users, 60))

    noisy = scores + 0.3 * (prior - prior.mean())  # the base sees the prior weakly
    order = np.argsort(-noisy, axis=1, kind="stable")
    items, noisy, prior = (np.take_along_axis(a, order, 1) for a in (items, noisy, prior))
    tune, test = draw(), draw()

    def tune_dis(weight):
        out, _ = user_fair_rerank(items, noisy, advantaged, 10, prior=prior, prior_weight=weight)
        ndcg = fairrecsys_metrics(out, tune, 10)["ndcg@10"]
        return np.nanmean(ndcg[~advantaged])

    best = max((0.0, 0.5, 1.0, 2.0, 4.0), key=tune_dis)
    assert best > 0
    out, out_scores = user_fair_rerank(items, noisy, advantaged, 10, prior=prior, prior_weight=best)
    np.testing.assert_array_equal(out[advantaged], items[advantaged, :10])
    assert np.isin(out_scores, noisy).all()  # base scores of the chosen items
    base_gap, base_all = _gap(items[:, :10], test, advantaged)
    gap, overall = _gap(out, test, advantaged)
    assert gap < base_gap and overall > base_all
    with pytest.raises(DataError, match="prior has shape"):
        user_fair_rerank(items, noisy, advantaged, 10, prior=prior[:, :5], prior_weight=1.0)
