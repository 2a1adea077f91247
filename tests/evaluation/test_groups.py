"""Per-group metrics, gaps and tests against hand computations and scipy directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from lumenrec.data.dataset import Dataset
from lumenrec.data.vocab import IdIndex
from lumenrec.errors import ConfigError, DataError
from lumenrec.evaluation.groups import (
    activity_groups,
    age_band,
    attribute_groups,
    group_metrics,
    item_exposure,
    popularity_buckets,
    significance_test,
    user_groups,
)

NDCG = np.array([1.0, 0.5, 0.0, 0.25, np.nan, 0.75])
LABELS = np.array(["a", "a", "b", "b", "b", None], dtype=object)


def test_group_means_gap_and_difference_by_hand():
    out = group_metrics({"ndcg@10": NDCG, "hr@10": [1, 1, 0, 1, 0, 1]}, LABELS)
    assert out["groups"] == ["a", "b"] and out["n_users"] == {"a": 2, "b": 3}
    ndcg = out["metrics"]["ndcg@10"]
    assert ndcg["mean"] == {"a": 0.75, "b": 0.125}  # NaN skipped in b: (0 + 0.25) / 2
    assert ndcg["n"] == {"a": 2, "b": 2}
    assert ndcg["gap"] == pytest.approx(0.625) and ndcg["difference"] == pytest.approx(0.625)
    assert (ndcg["max_group"], ndcg["min_group"]) == ("a", "b")
    hr = out["metrics"]["hr@10"]
    assert hr["mean"]["b"] == pytest.approx(1 / 3)
    flipped = group_metrics({"ndcg@10": NDCG}, LABELS, order=["b", "a"])
    assert flipped["metrics"]["ndcg@10"]["difference"] == pytest.approx(-0.625)


def test_welch_and_kruskal_match_scipy(rng):
    a, b, c = rng.normal(0, 1, 30), rng.normal(0.5, 2, 40), rng.normal(1, 1, 25)
    two = significance_test([a, b])
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert two["test"] == "welch"
    assert two["statistic"] == pytest.approx(ref.statistic) and two["p_value"] == pytest.approx(
        ref.pvalue
    )
    three = significance_test([a, b, c])
    ref3 = stats.kruskal(a, b, c)
    assert three["test"] == "kruskal" and three["p_value"] == pytest.approx(ref3.pvalue)
    anova = significance_test([a, b, c], method="anova")
    assert anova["statistic"] == pytest.approx(stats.f_oneway(a, b, c).statistic)
    frame = pd.DataFrame({"m": np.concatenate([a, b, c]), "name": "x"})
    labels = np.array(["a"] * 30 + ["b"] * 40 + ["c"] * 25, dtype=object)
    out = group_metrics(frame, labels)  # the str column is ignored
    assert list(out["metrics"]) == ["m"]
    assert out["metrics"]["m"]["test"]["statistic"] == pytest.approx(ref3.statistic)


def test_degenerate_tests_are_none_not_warnings():
    assert significance_test([[1.0, 1.0], [1.0, 1.0, 1.0]])["p_value"] is None
    assert significance_test([[1.0, 2.0], [3.0]])["statistic"] is None  # one group too small
    with pytest.raises(ConfigError, match="method"):
        significance_test([[1.0, 2.0]], method="z")
    with pytest.raises(DataError, match="rows"):
        group_metrics({"m": [1.0, 2.0]}, ["a"])


def test_activity_quartiles_and_top_fraction():
    counts = np.array([1, 2, 3, 4, 5, 6, 7, 8, 8, 100])
    q = activity_groups(counts)
    edges = np.quantile(counts, [0.25, 0.5, 0.75])  # 3.25, 5.5, 7.75
    assert edges.tolist() == [3.25, 5.5, 7.75]
    assert q.tolist() == ["q1"] * 3 + ["q2"] * 2 + ["q3"] * 2 + ["q4"] * 3
    top = activity_groups(counts, top_fraction=0.2)
    assert np.flatnonzero(top == "active").tolist() == [7, 9]  # the tied 8s: lower index
    tie = activity_groups(np.array([5, 9, 9, 1]), top_fraction=0.25)
    assert tie.tolist() == ["inactive", "active", "inactive", "inactive"]  # stable: lower index
    matrix = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0]]))
    assert activity_groups(matrix, top_fraction=0.5).tolist() == [
        "active", "inactive", "active", "inactive",
    ]  # fmt: skip
    with pytest.raises(ConfigError):
        activity_groups(counts, quantiles=1)
    with pytest.raises(ConfigError):
        activity_groups(counts, top_fraction=1.5)


def _tiny_dataset(attributes: pd.DataFrame | None) -> Dataset:
    users = IdIndex(["1", "2", "3"], name="user")
    items = IdIndex(["a", "b"], name="item")
    return Dataset(
        users, items, np.array([0, 0, 1, 2]), np.array([0, 1, 0, 1]),
        user_attributes=attributes, name="tiny",
    )  # fmt: skip


def test_attribute_groups_bands_numeric_ages_and_errors():
    attrs = pd.DataFrame(
        {"age": pd.array([17, 30, None], dtype="Int64"), "gender": ["F", "M", "M"]},
        index=pd.Index(["1", "2", "3"], name="user_id"),
    )
    data = _tiny_dataset(attrs)
    assert attribute_groups(data, "age").tolist() == ["Under 18", "25-34", None]
    assert user_groups("gender", data).tolist() == ["F", "M", "M"]
    assert user_groups("active", data, top_fraction=0.34).tolist() == [
        "active", "inactive", "inactive",
    ]  # fmt: skip
    assert age_band(56) == "56+" and age_band(18) == "18-24" and age_band(None) is None
    with pytest.raises(ConfigError, match="no user attribute 'occupation'"):
        user_groups("occupation", data)
    with pytest.raises(ConfigError, match="has no user attribute 'gender'.*none"):
        attribute_groups(_tiny_dataset(None), "gender")
    with pytest.raises(ConfigError, match="unknown group 'zodiac'"):
        user_groups("zodiac", data)


def test_popularity_buckets_and_item_exposure():
    pop = np.array([10, 0, 5, 7, 1, 3, 2, 9, 4, 6])
    labels = popularity_buckets(pop, 0.2)
    assert np.flatnonzero(labels == "short_head").tolist() == [0, 7]
    ranked = np.array([[0, 7, 1], [0, 2, -1]])
    out = item_exposure(ranked, labels, k=3)
    assert out["share"] == {"long_tail": pytest.approx(0.4), "short_head": pytest.approx(0.6)}
    assert out["catalogue_share"]["short_head"] == pytest.approx(0.2)
    weighted = item_exposure(ranked, labels, k=3, position_weighted=True)
    d = 1 / np.log2([2, 3, 4])
    head = d[0] + d[1] + d[0]
    assert weighted["share"]["short_head"] == pytest.approx(head / (head + d[2] + d[1]))
