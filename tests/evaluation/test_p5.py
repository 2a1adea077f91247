"""Protocol P5: metrics against independent oracles, the held-out MAR split, run_p5 and the
CLI table/JSON on a small Coat-format folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec.errors import ConfigError, DataError
from lumenrec.evaluation.p5 import (
    p5_binary_metrics,
    p5_rating_metrics,
    roc_auc,
    run_p5,
    split_p5,
)


def _brute_auc(y, s):
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def _brute_user(y, s, k):
    """The reference code's per-user NDCG@k / Recall@k (no positive -> 1)."""
    top = np.argsort(-s, kind="stable")[:k]
    disc = 1 / np.log2(np.arange(2, k + 2))
    ideal = (np.sort(y)[::-1][:k] * disc[: min(k, len(y))]).sum()
    if ideal == 0:
        return 1.0, 1.0
    return (y[top] * disc[: len(top)]).sum() / ideal, y[top].sum() / min(k, y.sum())


def _random_pairs(rng, n_users=40, per_user=16):
    users = np.repeat(np.arange(n_users), per_user)
    labels = (rng.random(len(users)) < 0.3).astype(int)
    labels[:per_user] = 0  # one user without any positive
    scores = rng.normal(size=len(users))
    perm = rng.permutation(len(users))  # pooled pairs come in any order
    return users[perm], labels[perm], scores[perm]


def test_auc_matches_sklearn_and_brute_force(rng):
    y = (rng.random(500) < 0.4).astype(int)
    s = np.round(rng.normal(size=500), 1)  # ties
    assert roc_auc(y, s) == pytest.approx(_brute_auc(y, s), abs=1e-12)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert roc_auc(y, s) == pytest.approx(sklearn.roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(roc_auc([1, 1], [0.1, 0.2]))


def test_per_user_ndcg_recall_match_brute_force(rng):
    users, labels, scores = _random_pairs(rng)
    got = p5_binary_metrics(users, labels, scores, k=5)
    per = [_brute_user(labels[users == u], scores[users == u], 5) for u in range(40)]
    assert got["ndcg@5"] == pytest.approx(np.mean([p[0] for p in per]), abs=1e-12)
    assert got["recall@5"] == pytest.approx(np.mean([p[1] for p in per]), abs=1e-12)
    assert got["auc"] == pytest.approx(_brute_auc(labels, scores), abs=1e-12)
    assert (got["n_users"], got["n_pairs"]) == (40, 640)


def test_ndcg_matches_ir_measures_on_users_with_positives(rng):
    ir_measures = pytest.importorskip("ir_measures")
    users, labels, scores = _random_pairs(rng)
    qrels = [
        ir_measures.Qrel(str(u), f"d{j}", int(y))
        for j, (u, y) in enumerate(zip(users, labels, strict=True))
    ]
    run = [
        ir_measures.ScoredDoc(str(u), f"d{j}", float(s))
        for j, (u, s) in enumerate(zip(users, scores, strict=True))
    ]
    ref = {m.query_id: m.value for m in ir_measures.iter_calc([ir_measures.nDCG @ 5], qrels, run)}
    has_pos = [u for u in range(40) if labels[users == u].any()]
    assert len(has_pos) == 39
    ours = [p5_binary_metrics(users[users == u], labels[users == u], scores[users == u])["ndcg@5"] for u in has_pos]  # fmt: skip
    assert ours == pytest.approx([ref[str(u)] for u in has_pos], abs=1e-9)
    # the convention: the user with no positive scores 1 (ir-measures would give 0)
    lone = p5_binary_metrics(users[users == 0], labels[users == 0], scores[users == 0])
    assert lone["ndcg@5"] == 1.0 and lone["recall@5"] == 1.0


def test_recall_denominator_is_min_k_positives():
    got = p5_binary_metrics([0] * 8, [1] * 7 + [0], np.arange(8, 0, -1), k=5)
    assert got["recall@5"] == 1.0 and got["ndcg@5"] == 1.0
    got = p5_binary_metrics([0, 0, 0], [0, 0, 1], [3.0, 2.0, 1.0], k=5)
    assert got["recall@5"] == 1.0 and got["ndcg@5"] == pytest.approx(0.5)
    with pytest.raises(DataError):
        p5_binary_metrics([], [], [])
    assert p5_rating_metrics([1, 3], [2, 3]) == {"mse": 0.5, "mae": 0.5}


def _coat_like(folder, rng, n_users=30, n_items=40):
    train = np.zeros((n_users, n_items), int)
    test = np.zeros((n_users, n_items), int)
    for u in range(n_users):
        cols = rng.permutation(n_items)
        train[u, cols[:8]] = rng.integers(1, 6, 8)
        test[u, cols[6:14]] = rng.integers(1, 6, 8)  # two overlap, like Coat
    folder.mkdir(parents=True)
    np.savetxt(folder / "train.ascii", train, fmt="%d")
    np.savetxt(folder / "test.ascii", test, fmt="%d")
    return sp.csr_matrix(train), sp.csr_matrix(test)


def test_split_holds_out_a_seeded_mar_part(tmp_path, rng):
    train, test = _coat_like(tmp_path / "coat", rng)
    a, b = split_p5(train, test, 0), split_p5(train, test, 0)
    assert (a.test != b.test).nnz == 0
    assert a.valid.nnz == round(0.1 * test.nnz) and a.propensity_sample.nnz == round(
        0.05 * test.nnz
    )
    assert a.valid.nnz + a.test.nnz == test.nnz
    assert a.valid.multiply(a.test).nnz == 0  # disjoint
    assert a.propensity_sample.multiply(a.valid).nnz == a.propensity_sample.nnz  # inside valid
    assert (split_p5(train, test, 1).valid != a.valid).nnz > 0
    with pytest.raises(ConfigError):
        split_p5(train, test, 0, propensity_fraction=0.2, valid_fraction=0.1)


def test_run_p5_and_cli_on_a_small_coat_folder(tmp_path, rng, capsys):
    _coat_like(tmp_path / "coat", rng)
    params = {"n_epochs": 3, "patience": 0}
    res = run_p5(["mf", "mf-dr"], [0, 1], tmp_path, progress=False, params={"mf": params, "mf-dr": params})  # fmt: skip
    assert res["protocol"] == "p5" and res["seeds"] == [0, 1]
    assert set(res["per_seed"]) == {"mf", "mf-dr"} and len(res["per_seed"]["mf"]) == 2
    assert res["per_seed"]["mf-dr"][0]["propensity_source"] == "naive-bayes"
    assert 0 <= res["aggregate"]["mf"]["auc"]["mean"] <= 1
    assert res["anchors"]["mf"]["auc"] == [0.703, 0.705]
    assert "train.ascii" in res["dataset"]["sha256"]
    assert res["dataset"]["n_test_reported"] + res["dataset"]["n_valid_heldout"] == 240
    json.dumps(res, allow_nan=False)
    rating = run_p5(["mf-ips"], [0], tmp_path, progress=False, task="rating", params={"mf-ips": params})  # fmt: skip
    assert set(rating["aggregate"]["mf-ips"]) == {"mse", "mae", "fit_time"}
    assert run_p5(["mf"], [0], tmp_path, threshold=4, progress=False, params={"mf": params})["anchors"] == {}  # fmt: skip
    with pytest.raises(ConfigError, match="unknown P5 models"):
        run_p5(["mf", "ease"], [0], tmp_path)
    with pytest.raises(DataError, match="coat.zip"):
        run_p5(["mf"], [0], tmp_path / "nowhere")

    from lumenrec.cli._p5 import render_p5_table, run_p5_command

    table = render_p5_table(res)
    assert [c.header for c in table.columns][:3] == ["model", "AUC", "anchor"]
    out = tmp_path / "p5.json"
    run_p5_command(["mf-snips"], [0], out, tmp_path)
    printed = capsys.readouterr().out
    assert "mf-snips" in printed and "NDCG@5" in printed
    assert json.loads(out.read_text())["per_seed"]["mf-snips"][0]["seed"] == 0


def test_feature_propensities_are_used_when_coat_has_features(tmp_path, rng):
    folder = tmp_path / "coat"
    _coat_like(folder, rng)
    for name in ("train.ascii", "test.ascii"):  # two rating values: every one is in the P(y) sample
        m = np.loadtxt(folder / name, dtype=int)
        np.savetxt(folder / name, np.where(m > 0, np.where(m >= 3, 4, 2), 0), fmt="%d")
    feats = folder / "user_item_features"
    feats.mkdir()
    np.savetxt(feats / "user_features.ascii", np.eye(3, dtype=int)[rng.integers(0, 3, 30)], fmt="%d")  # fmt: skip
    np.savetxt(feats / "item_features.ascii", np.eye(4, dtype=int)[rng.integers(0, 4, 40)], fmt="%d")  # fmt: skip
    params = {"n_epochs": 2, "patience": 0}
    names = ["mf", "mf-ips", "mf-dr", "mf-ips-nb"]
    res = run_p5(names, [0], tmp_path, progress=False, params=dict.fromkeys(names, params))
    source = {n: res["per_seed"][n][0]["propensity_source"] for n in names}
    assert source == {
        "mf": "none",
        "mf-ips": "given-naive-bayes",
        "mf-dr": "given-naive-bayes",
        "mf-ips-nb": "naive-bayes",
    }
    assert res["params"]["mf-ips"]["propensity_model"] == "features"
    with pytest.raises(ConfigError, match="propensity_model"):
        run_p5(["mf-ips"], [0], tmp_path, progress=False, params={"mf-ips": {"propensity_model": "x"}})  # fmt: skip
