"""Protocols P1–P4, temporal split and overlap checks, against independent reference code."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lumenrec import datasets
from lumenrec.data import Dataset, from_pandas
from lumenrec.data.split import (
    PROTOCOLS,
    Split,
    check_no_overlap,
    compact,
    filter_kcore,
    protocol_split,
    recbole_split_counts,
    split_p1,
    split_p1_validation,
    split_p2,
    split_p3,
    split_p3_users,
    split_p4,
    temporal_split,
)
from lumenrec.errors import ConfigError, DataError

_CACHE: dict[tuple[str, str], Dataset] = {}


def _load(root: Path, name: str) -> Dataset:
    """Load a shared dataset once per module (ml-1m-processed has 1M rows)."""
    key = (str(root), name)
    if key not in _CACHE:
        _CACHE[key] = datasets.load(name, root)
    return _CACHE[key]


# -- reference implementations (transcribed from the published code, pandas-based) ----------
def ms_stratified_reference(df: pd.DataFrame, by: str, ratio: float, seed: int) -> pd.DataFrame:
    """microsoft/recommenders python_splitters._do_stratification(is_random=True), 2 splits."""
    data = df.copy()
    np.random.seed(seed)
    data["random"] = np.random.rand(data.shape[0])
    data = data.sort_values([by, "random"])
    groups = data.groupby(by)
    data["count"] = groups[by].transform("count")
    data["rank"] = groups.cumcount() + 1
    data["rank"] = data["rank"] / data["count"]
    thresholds = np.cumsum([ratio, 1 - ratio])
    return data[data["rank"] <= thresholds[0]]


def recbole_calcu_split_ids(tot: int, ratios: list[float]) -> list[int]:
    """RecBole Dataset._calcu_split_ids → part sizes (transcribed)."""
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def kcore_reference(df: pd.DataFrame, k_user: int, k_item: int) -> pd.DataFrame:
    """Sequential user/item k-core until stable (MS Recommenders filter_k_core style)."""
    while True:
        df = df[df.groupby("item_id")["user_id"].transform("size") >= k_item]
        df = df[df.groupby("user_id")["item_id"].transform("size") >= k_user]
        if (df.groupby("item_id").size() >= k_item).all() and (
            df.groupby("user_id").size() >= k_user
        ).all():
            return df


def _pairs(d: Dataset) -> set[tuple[str, str]]:
    return set(zip(d.users.ids[d.user_idx], d.items.ids[d.item_idx], strict=True))


def _random_log(seed: int, n_users: int = 40, n_items: int = 30) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = int(rng.integers(1, 21))
        items = rng.choice(n_items, size=min(n, n_items), replace=False)
        rows += [(f"u{u}", f"i{i}", float(rng.integers(1, 6))) for i in items]
    order = rng.permutation(len(rows))
    df = pd.DataFrame([rows[k] for k in order], columns=["user_id", "item_id", "rating"])
    return from_pandas(df, name="random")


def _sequences(lengths: list[int]) -> Dataset:
    rows = [(f"u{u}", f"i{u}_{k}") for u, n in enumerate(lengths) for k in range(n)]
    return from_pandas(pd.DataFrame(rows, columns=["user_id", "item_id"]), name="seq")


# -- P1 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("stratify", ["user", "item"])
@pytest.mark.parametrize("seed", [0, 42, 7])
def test_p1_equals_ms_reference_on_random_data(stratify: str, seed: int) -> None:
    data = _random_log(seed)
    split = split_p1(data, seed, stratify=stratify)
    df = data.to_frame()
    ref = ms_stratified_reference(df, f"{stratify}_id", 0.75, seed)
    assert _pairs(split.train) == set(zip(ref["user_id"], ref["item_id"], strict=True))
    assert split.train.n_events + split.test.n_events == data.n_events
    split.check_no_overlap()


def test_p1_group_sizes_follow_ms_rounding() -> None:
    data = _sequences(list(range(1, 13)))
    split = split_p1(data, 3)
    n_train = np.bincount(split.train.user_idx, minlength=data.n_users)
    n_all = np.bincount(data.user_idx, minlength=data.n_users)
    # rank k/n <= 0.75 in float64: floor(0.75 n); a user with one rating goes to test
    assert n_train.tolist() == [math.floor(0.75 * n) for n in n_all]


def test_p1_ml100k_exact(shared_datasets: Path) -> None:
    ml = _load(shared_datasets, "ml-100k")
    split = split_p1(ml, 42)
    ref = ms_stratified_reference(ml.to_frame(), "user_id", 0.75, 42)
    assert _pairs(split.train) == set(zip(ref["user_id"], ref["item_id"], strict=True))
    assert (split.train.n_events, split.test.n_events) == (74_646, 25_354)
    assert split.train.ratings is None and split.test.ratings is None
    assert split.train.users == ml.users and split.test.items == ml.items
    assert np.unique(split.test.user_idx).size == 943
    split.check_no_overlap()
    # MS benchmark notebook variant (filter_by="item")
    by_item = split_p1(ml, 42, stratify="item")
    ref_i = ms_stratified_reference(ml.to_frame(), "item_id", 0.75, 42)
    assert _pairs(by_item.train) == set(zip(ref_i["user_id"], ref_i["item_id"], strict=True))


def test_p1_validation_nests_inside_train(shared_datasets: Path) -> None:
    ml = _load(shared_datasets, "ml-100k")
    outer = split_p1(ml, 1)
    nested = split_p1(ml, 1, validation=True)
    assert _pairs(nested.train_full) == _pairs(outer.train)
    assert _pairs(nested.test) == _pairs(outer.test)
    inner = split_p1_validation(outer.train, 1)
    assert inner.protocol == "p1-validation"
    assert _pairs(inner.train) == _pairs(nested.train)
    assert _pairs(inner.test) == _pairs(nested.valid)
    nested.check_no_overlap()
    # train_full keeps source event order
    assert np.all(np.diff(np.sort(nested.positions["train"])) > 0)


def test_p1_is_seeded() -> None:
    data = _random_log(3)
    a, b, c = split_p1(data, 5), split_p1(data, 5), split_p1(data, 6)
    assert _pairs(a.test) == _pairs(b.test)
    assert _pairs(a.test) != _pairs(c.test)


def test_p1_drops_repeated_pairs_first() -> None:
    df = pd.DataFrame({"user_id": ["a"] * 6, "item_id": ["x", "x", "y", "z", "w", "v"]})
    split = split_p1(from_pandas(df), 0)
    assert split.train.n_events + split.test.n_events == 5
    split.check_no_overlap()


def test_p1_bad_arguments() -> None:
    data = _random_log(0)
    with pytest.raises(ConfigError, match="ratio"):
        split_p1(data, 0, ratio=1.5)
    with pytest.raises(ConfigError, match="stratify"):
        split_p1(data, 0, stratify="session")  # type: ignore[arg-type]


# -- P2 --------------------------------------------------------------------------------------
def test_p2_short_histories_follow_recbole() -> None:
    data = _sequences([1, 2, 3, 5])
    split = split_p2(data)
    per = {
        part: np.bincount(getattr(split, part).user_idx, minlength=4).tolist()
        for part in ("train", "valid", "test")
    }
    assert per == {"train": [1, 1, 1, 3], "valid": [0, 0, 1, 1], "test": [0, 1, 1, 1]}
    assert list(split.test.items.ids[split.test.item_idx]) == ["i1_1", "i2_2", "i3_4"]
    assert list(split.valid.items.ids[split.valid.item_idx]) == ["i2_1", "i3_3"]


def test_p2_orders_by_time_with_stable_ties() -> None:
    df = pd.DataFrame(
        {"user_id": ["a"] * 4, "item_id": ["w", "x", "y", "z"], "timestamp": [5, 9, 9, 1]}
    )
    data = from_pandas(df)
    by_time = split_p2(data)
    assert by_time.test.items.ids[by_time.test.item_idx].tolist() == ["y"]  # tie: file order
    assert by_time.valid.items.ids[by_time.valid.item_idx].tolist() == ["x"]
    by_event = split_p2(data, by_time=False)
    assert by_event.test.items.ids[by_event.test.item_idx].tolist() == ["z"]
    with pytest.raises(DataError, match="timestamps"):
        split_p2(_sequences([3]), by_time=True)


def test_p2_beauty(shared_datasets: Path) -> None:
    beauty = _load(shared_datasets, "amazon-beauty")
    split = split_p2(beauty)
    assert split.sizes() == {
        "train": 153_776,
        "valid": 22_363,
        "test": 22_363,
        "test_users": 22_363,
    }
    assert np.bincount(split.test.user_idx, minlength=beauty.n_users).max() == 1
    assert split.extras["history_repeats"] == 0
    split.check_no_overlap()
    with (shared_datasets / "amazon-beauty" / "Beauty.txt").open() as fh:
        for _, line in zip(range(50), fh, strict=False):
            uid, *items = line.split()
            u = beauty.users.index(uid)[0]
            assert split.test.items.ids[split.test.item_idx[split.test.user_idx == u]] == [
                items[-1]
            ]
            assert split.valid.items.ids[split.valid.item_idx[split.valid.user_idx == u]] == [
                items[-2]
            ]
            hist = split.train_full.items.ids[
                split.train_full.item_idx[split.train_full.user_idx == u]
            ]
            assert hist.tolist() == items[:-1]  # sequence order preserved


def test_p2_yelp_repeat_targets_are_reported(shared_datasets: Path) -> None:
    split = split_p2(_load(shared_datasets, "yelp"))
    assert split.extras["history_repeats"] == 2_027
    with pytest.raises(DataError, match="repeat consumption"):
        split.check_no_overlap()


# -- P3 --------------------------------------------------------------------------------------
def test_p3_cold_items(shared_datasets: Path) -> None:
    beauty = _load(shared_datasets, "amazon-beauty")
    split = split_p3(beauty, seed=0)
    cold = split.extras["cold_items"]
    assert cold.dtype == np.int32 and cold.size == 1_210 == round(0.1 * 12_101)
    assert not np.isin(split.train.item_idx, cold).any()
    assert not np.isin(split.valid.item_idx, cold).any()
    assert np.isin(split.test.item_idx, cold).all()
    p2 = split_p2(beauty)
    assert _pairs(split.test) <= _pairs(p2.test)
    assert split.test.n_events == int(np.isin(p2.test.item_idx, cold).sum())
    split.check_no_overlap()
    again, other = split_p3(beauty, seed=0), split_p3(beauty, seed=1)
    assert np.array_equal(again.extras["cold_items"], cold)
    assert not np.array_equal(other.extras["cold_items"], cold)


def test_p3_cold_users() -> None:
    data = _sequences([6] * 20)
    split = split_p3_users(data, seed=0, fraction=0.25, keep_first=2)
    cold = split.extras["cold_users"]
    assert cold.size == 5
    assert sorted(np.unique(split.test.user_idx)) == sorted(cold)
    per_user = np.bincount(split.train_full.user_idx, minlength=20)
    assert (per_user[cold] == 2).all()
    warm = np.setdiff1d(np.arange(20), cold)
    assert (per_user[warm] == 5).all()
    kept = split.train_full.items.ids[
        split.train_full.item_idx[split.train_full.user_idx == cold[0]]
    ]
    assert kept.tolist() == [f"i{cold[0]}_0", f"i{cold[0]}_1"]  # the first interactions
    split.check_no_overlap()
    with pytest.raises(ConfigError, match="fraction"):
        split_p3_users(data, fraction=0.0)
    with pytest.raises(ConfigError, match="keep_first"):
        split_p3_users(data, keep_first=-1)


# -- P4 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratios", [[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [1, 1]])
def test_recbole_counts_match_transcription(ratios: list[float]) -> None:
    tot = np.arange(1, 300)
    norm = [r / sum(ratios) for r in ratios]
    expected = [recbole_calcu_split_ids(int(t), norm) for t in tot]
    assert recbole_split_counts(tot, ratios).tolist() == expected


def test_filter_kcore_matches_reference() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"user_id": rng.zipf(1.5, 4000) % 300, "item_id": rng.zipf(1.3, 4000) % 200}
    ).drop_duplicates()
    data = from_pandas(df)
    core = filter_kcore(data, 5, 4)
    ref = kcore_reference(data.to_frame(), 5, 4)
    assert _pairs(core) == set(zip(ref["user_id"], ref["item_id"], strict=True))
    assert np.bincount(core.user_idx).min() >= 5 and np.bincount(core.item_idx).min() >= 4
    assert core.n_users == np.unique(core.user_idx).size  # compact vocabulary
    with pytest.raises(DataError, match="core"):
        filter_kcore(data, 10_000, 1)


def test_compact_keeps_order_and_side_tables() -> None:
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["A", "B", "C"]})
    data = from_pandas(pd.DataFrame({"user_id": ["u", "v"], "item_id": ["c", "a"]}), items=items)
    small = compact(data.subset(np.array([1])))
    assert small.items.ids.tolist() == ["a"] and small.catalog["title"].tolist() == ["A"]


def test_p4_ml1m_processed(shared_datasets: Path) -> None:
    ml = _load(shared_datasets, "ml-1m-processed")
    split = split_p4(ml, seed=0)
    assert split.extras == {"n_users": 6_033, "n_items": 3_123, "n_events": 834_449}
    assert split.sizes() == {"train": 673_059, "valid": 80_695, "test": 80_695, "test_users": 6_033}
    base = split.source
    assert base.n_users == 6_033 and base.n_items == 3_123 and base.ratings is None
    assert np.bincount(base.user_idx).min() >= 10 and np.bincount(base.item_idx).min() >= 10
    ref = kcore_reference(ml.to_frame().query("rating >= 3"), 10, 10)
    assert (ref["user_id"].nunique(), ref["item_id"].nunique(), len(ref)) == (6_033, 3_123, 834_449)
    counts = np.bincount(base.user_idx)
    expected = recbole_split_counts(counts, [0.8, 0.1, 0.1])
    for j, part in enumerate((split.train, split.valid, split.test)):
        assert np.array_equal(np.bincount(part.user_idx, minlength=base.n_users), expected[:, j])
    split.check_no_overlap()
    again, other = split_p4(ml, seed=0), split_p4(ml, seed=1)
    assert again.sizes() == other.sizes() == split.sizes()
    assert np.array_equal(again.positions["test"], split.positions["test"])
    assert not np.array_equal(other.positions["test"], split.positions["test"])
    assert split.train_full.n_events == 673_059 + 80_695


def test_p4_needs_ratings() -> None:
    with pytest.raises(DataError, match="no ratings"):
        split_p4(_sequences([12, 12]))


# -- temporal, dispatch, checks --------------------------------------------------------------
def test_temporal_split_keeps_equal_times_together() -> None:
    df = pd.DataFrame(
        {
            "user_id": list("aabbcc"),
            "item_id": list("xyzxyz"),
            "rating": [1, 2, 3, 4, 5, 1],
            "timestamp": [1, 2, 3, 3, 3, 4],
        }
    )
    split = temporal_split(from_pandas(df), 0.5)
    assert split.test.timestamps.tolist() == [3, 3, 3, 4]
    assert split.extras["cutoff"] == 3 and split.test.ratings is not None
    with pytest.raises(DataError, match="timestamps"):
        temporal_split(_sequences([3]))
    with pytest.raises(ConfigError, match="test_fraction"):
        temporal_split(from_pandas(df), 1.0)


def test_protocol_split_dispatch() -> None:
    data = _random_log(1)
    assert protocol_split(data, "P1", seed=3).protocol == "p1"
    assert protocol_split(data, " p2 ").protocol == "p2"
    assert protocol_split(data, "p3", cold_fraction=0.2).extras["n_cold_items"] == 6
    assert set(PROTOCOLS) >= {"p1", "p2", "p3", "p4"}
    with pytest.raises(ConfigError, match=r"unknown protocol 'p9'; valid: \['p1'"):
        protocol_split(data, "p9")


def test_check_no_overlap() -> None:
    data = _sequences([4, 4])
    with pytest.raises(DataError, match="1 \\(user, item\\) pair"):
        check_no_overlap(data.subset(np.array([0, 1])), data.subset(np.array([1, 2])))
    other = from_pandas(pd.DataFrame({"user_id": ["u0"], "item_id": ["i0_0"]}))
    with pytest.raises(DataError, match="u0"):
        check_no_overlap(data, other)  # different vocabularies: compared by external ids
    check_no_overlap(data.subset(np.array([0])), data.subset(np.array([1])))


def test_split_is_frozen_and_train_full_falls_back_to_concat() -> None:
    data = _sequences([5, 5])
    split = split_p2(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.seed = 3  # type: ignore[misc]
    plain = Split(split.train, split.test, split.valid, "custom")
    assert _pairs(plain.train_full) == _pairs(split.train_full)
    assert plain.train_full.n_events == 8
    assert Split(split.train, split.test).train_full is split.train
