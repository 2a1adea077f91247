"""evaluate / compare / saved files: full-ranking evaluation that third parties can recompute."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from lumenrec.data import Dataset, from_pandas
from lumenrec.data.split import Split
from lumenrec.errors import ConfigError, DataError
from lumenrec.evaluation.metrics import evaluate_rankings, summarize
from lumenrec.evaluation.protocol import (
    EvalResult,
    evaluate,
    metrics_from_files,
    recommendations_frame,
    save_split,
)
from lumenrec.evaluation.runner import RESULTS_SCHEMA, compare, write_results
from lumenrec.models import MostPopular
from lumenrec.models.ease import EASE


def _holdout(data: Dataset, seed: int = 0, frac: float = 0.25, valid: bool = False) -> Split:
    """Per-user random holdout built by hand (independent of the protocol functions)."""
    rng = np.random.default_rng(seed)
    part = np.zeros(data.n_events, np.int8)  # 0 train, 1 test, 2 valid
    for u in range(data.n_users):
        ev = rng.permutation(np.flatnonzero(data.user_idx == u))
        n = int(round(len(ev) * frac))
        part[ev[:n]] = 1
        if valid:
            part[ev[n : 2 * n]] = 2
    positions = {name: np.flatnonzero(part == code) for name, code in (("train", 0), ("test", 1))}
    if valid:
        positions["valid"] = np.flatnonzero(part == 2)
    return Split(
        train=data.subset(positions["train"]),
        test=data.subset(positions["test"]),
        valid=data.subset(positions["valid"]) if valid else None,
        protocol="holdout",
        seed=seed,
        description="per-user random holdout (test helper)",
        source=data,
        positions=positions,
    )


@pytest.fixture(scope="module")
def split(clusters) -> Split:
    return _holdout(clusters, seed=3)


def test_evaluate_scores_masked_full_ranking(split):
    res = evaluate(EASE(regularization=10.0), split, k=10, ks=(5, 20))
    assert isinstance(res, EvalResult)
    assert res.ks == (5, 10, 20) and res.k == 10 and res.evaluated_on == "test"
    test_users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
    np.testing.assert_array_equal(res.users, test_users)
    assert res.n_users == len(test_users) == res.summary["n_users"]
    assert res.recommendations.items.shape == (len(test_users), 20)
    train = split.train.matrix
    for row, u in enumerate(res.users):  # no training item is ever ranked
        assert not set(res.recommendations.items[row]) & set(train[u].indices)
    relevant = split.test.matrix[res.users]
    expected = summarize(evaluate_rankings(res.recommendations.items, relevant, ks=(5, 10, 20)))
    assert res.summary == pytest.approx(expected, rel=0, abs=0)
    assert set(res.beyond) == {
        "coverage@10", "gini@10", "longtail_share@10", "novelty@10", "popularity_bias@10"
    }  # fmt: skip
    assert 0 <= res.beyond["longtail_share@10"] <= 1
    assert 0 < res.beyond["coverage@10"] <= 1 and 0 <= res.beyond["gini@10"] < 1
    assert res.beyond["novelty@10"] > 0 and 0 <= res.beyond["popularity_bias@10"] <= 1
    assert res.fit_time > 0 and res.eval_time > 0
    assert set(res.metrics) == {*res.per_user, *res.beyond}


def test_personalised_model_beats_popularity(split):
    pop = evaluate(MostPopular(), split)
    ease = evaluate(EASE(regularization=10.0), split)
    assert ease.summary["ndcg@10"] > 2 * pop.summary["ndcg@10"]
    assert pop.beyond["popularity_bias@10"] > ease.beyond["popularity_bias@10"]


def test_evaluate_fit_false_and_use_valid(clusters, split):
    fitted = MostPopular().fit(split.train_full)
    a = evaluate(fitted, split, fit=False)
    b = evaluate(MostPopular(), split)
    assert a.fit_time == 0 and a.summary == b.summary
    with pytest.raises(ConfigError, match="no validation part"):
        evaluate(MostPopular(), split, use_valid=True)
    tuned = _holdout(clusters, seed=1, frac=0.2, valid=True)
    res = evaluate(MostPopular(), tuned, use_valid=True)
    assert res.evaluated_on == "valid"
    np.testing.assert_array_equal(res.users, np.flatnonzero(np.diff(tuned.valid.matrix.indptr)))
    model = MostPopular()
    evaluate(model, tuned)  # test mode fits on train ∪ valid
    assert model.seen_.nnz == tuned.train_full.matrix.nnz > tuned.train.matrix.nnz


@pytest.mark.parametrize("bad", [{"k": 0}, {"ks": (5, -1)}, {"k": 2.5}])
def test_evaluate_rejects_bad_cutoffs(split, bad):
    with pytest.raises(ConfigError, match="positive"):
        evaluate(MostPopular(), split, **bad)


def test_evaluate_rejects_empty_test(clusters):
    empty = Split(train=clusters, test=clusters.subset(np.zeros(clusters.n_events, bool)))
    with pytest.raises(DataError, match="no events"):
        evaluate(MostPopular(), empty)


def test_recommendations_frame_uses_external_ids_and_drops_padding():
    df = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]})
    data = from_pandas(df)
    recs = MostPopular().fit(data).recommend(np.array([0, 1], np.int32), k=3)
    frame = recommendations_frame(recs, data)
    assert list(frame.columns) == ["user_id", "item_id", "rank", "score"]
    assert frame.to_dict("list") == {
        "user_id": ["b"],
        "item_id": ["y"],
        "rank": [1],
        "score": [1.0],
    }


def test_saved_files_reproduce_evaluate_exactly(tmp_path, split):
    res = evaluate(EASE(regularization=10.0), split, ks=(1, 5, 10, 20))
    frame = recommendations_frame(res.recommendations, split.test)
    frame.insert(0, "model", "ease")
    frame.to_parquet(tmp_path / "recs.parquet", index=False)
    out = save_split(split, tmp_path / "split")
    assert sorted(p.name for p in out.iterdir()) == ["split.json", "test.parquet", "train.parquet"]
    meta = json.loads((out / "split.json").read_text())
    assert meta["protocol"] == "holdout" and meta["n_events"]["test"] == split.test.n_events
    test = pd.read_parquet(out / "test.parquet")
    assert list(test.columns) == ["user_id", "item_id", "rating", "timestamp"]
    for k in (1, 5, 10, 20):
        again = metrics_from_files(tmp_path / "recs.parquet", out / "test.parquet", k)
        assert again["n_users"] == res.n_users
        for name in ("precision", "recall", "ndcg", "map", "mrr", "hr", "f1"):
            assert again[f"{name}@{k}"] == pytest.approx(res.summary[f"{name}@{k}"], abs=1e-12)


def test_metrics_from_files_hand_computed(tmp_path):
    recs = pd.DataFrame(
        {"user_id": ["u1"] * 3, "item_id": ["a", "b", "c"], "rank": [1, 2, 3], "score": [3.0, 2, 1]}
    )
    test = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["b", "d", "a"]})
    recs.to_parquet(tmp_path / "r.parquet")
    test.to_parquet(tmp_path / "t.parquet")
    got = metrics_from_files(tmp_path / "r.parquet", tmp_path / "t.parquet", 3)
    ndcg_u1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    expected = {  # u2 has no recommendations: zeros
        "precision@3": (1 / 3) / 2,
        "recall@3": 0.5 / 2,
        "ndcg@3": ndcg_u1 / 2,
        "map@3": (0.5 / 2) / 2,
        "mrr@3": 0.5 / 2,
        "hr@3": 0.5,
        "f1@3": 0.4 / 2,
        "n_users": 2,
    }
    assert got == pytest.approx(expected, abs=1e-15)
    with pytest.raises(ConfigError, match="no 'model' column"):
        metrics_from_files(tmp_path / "r.parquet", tmp_path / "t.parquet", 3, model="ease")
    recs.assign(model=["x", "y", "y"]).to_parquet(tmp_path / "m.parquet")
    with pytest.raises(ConfigError, match="holds models"):
        metrics_from_files(tmp_path / "m.parquet", tmp_path / "t.parquet", 3)


def test_compare_aggregates_over_seeds(clusters):
    seen: list[tuple] = []
    out = compare(
        {"pop": MostPopular, "ease": EASE(regularization=10.0)},
        clusters,
        "p1",
        seeds=[0, 1, 2],
        on_split=lambda seed, s: seen.append(("split", seed)),
        on_result=lambda seed, name, res, s: seen.append((name, seed, res.n_users)),
        keep=True,
    )
    r = out.results
    assert seen[0] == ("split", 0) and len(seen) == 9
    assert r["schema"] == RESULTS_SCHEMA and r["protocol"] == "p1" and r["seeds"] == [0, 1, 2]
    assert r["dataset"]["fingerprint"] == clusters.fingerprint()
    assert r["models"]["ease"]["params"]["regularization"] == 10.0
    assert {"lumenrec", "numpy", "scipy", "pandas", "python"} <= set(r["versions"])
    assert r["hardware"]["cpu_count"] >= 1 and r["wall_time"] > 0 and r["created_at"]
    assert len(r["runs"]) == 6 and len(r["splits"]) == 3
    values = [run["metrics"]["ndcg@10"] for run in r["runs"] if run["model"] == "ease"]
    agg = r["aggregate"]["ease"]["ndcg@10"]
    assert agg["mean"] == pytest.approx(np.mean(values), abs=1e-15)
    assert agg["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-15) and agg["n"] == 3
    assert out.evaluations[(2, "ease")].summary["ndcg@10"] == values[2]
    assert out.mean("ease", "ndcg@10") > out.mean("pop", "ndcg@10")
    assert {"fit_time", "eval_time", "n_users", "coverage@10"} <= set(r["aggregate"]["pop"])
    json.loads(write_results(r, None))  # strict JSON (no NaN)


def test_compare_single_seed_has_no_std_and_is_deterministic(clusters):
    a = compare({"pop": MostPopular}, clusters, "p1", seeds=[4]).results
    b = compare({"pop": MostPopular}, clusters, "p1", seeds=[4]).results
    assert a["aggregate"]["pop"]["ndcg@10"]["std"] is None
    assert a["runs"][0]["metrics"] == b["runs"][0]["metrics"]


@pytest.mark.parametrize("seeds", [[], [0, 0], [-1], [True]])
def test_compare_rejects_bad_seeds(clusters, seeds):
    with pytest.raises(ConfigError, match="seeds"):
        compare({"pop": MostPopular}, clusters, "p1", seeds=seeds)


def test_compare_needs_a_model(clusters):
    with pytest.raises(ConfigError, match="at least one model"):
        compare({}, clusters, "p1")


def test_evaluate_candidates_rank_only_those_items(clusters, split):
    cand = np.arange(0, clusters.n_items, 2, dtype=np.int32)
    res = evaluate(EASE(regularization=10.0), split, ks=(5, 10), candidates=cand)
    listed = res.recommendations.items[res.recommendations.items >= 0]
    assert set(listed.tolist()) <= set(cand.tolist())
    relevant = split.test.matrix[res.users]  # targets outside the candidates stay relevant
    expected = summarize(evaluate_rankings(res.recommendations.items, relevant, ks=(5, 10)))
    assert res.summary == pytest.approx(expected, rel=0, abs=0)
    # a split.extras key names the candidates (P3: "cold_items"); compare passes it through
    keyed = Split(split.train, split.test, None, "holdout", 3, "", {"cold": cand})
    again = evaluate(EASE(regularization=10.0), keyed, ks=(5, 10), candidates="cold")
    assert again.summary == res.summary
    with pytest.raises(ConfigError, match="not in the split's extras"):
        evaluate(MostPopular(), keyed, candidates="nope")
    with pytest.raises(DataError, match="candidates must lie in"):
        evaluate(MostPopular(), keyed, candidates=np.array([clusters.n_items]))
    p3 = compare({"pop": MostPopular}, clusters, "p3", seeds=[0], candidates="cold_items")
    assert p3.results["candidates"] == "cold_items"
    assert p3.results["runs"][0]["metrics"]["hr@10"] > 0  # only cold items compete
