"""``lumenrec evaluate --group-by`` through CliRunner: JSON, table and one-line errors."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from lumenrec.cli import app
from lumenrec.data import block_clusters


@pytest.fixture(autouse=True)
def _restore_lumenrec_logger():
    logger = logging.getLogger("lumenrec")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    data = block_clusters(n_topics=4, n_users=120, n_items=80, random_state=0)
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    data.to_frame().to_csv(path, index=False)
    return path


def test_group_by_activity_in_json_and_table(tmp_path, ratings_csv):
    out = tmp_path / "r.json"
    args = ["evaluate", "-d", str(ratings_csv), "-m", "pop,ease", "--seeds", "0,1"]
    result = CliRunner().invoke(app, [*args, "--group-by", "activity,active", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "per user group: activity" in result.stdout and "gap (p, kruskal)" in result.stdout
    groups = json.loads(out.read_text())["groups"]
    assert groups["by"] == ["activity", "active"] and len(groups["runs"]) == 8
    run = next(r for r in groups["runs"] if r["group_by"] == "active" and r["model"] == "ease")
    assert run["groups"] == ["active", "inactive"]
    ndcg = run["metrics"]["ndcg@10"]
    assert ndcg["test"]["test"] == "welch"
    assert ndcg["difference"] == pytest.approx(ndcg["mean"]["active"] - ndcg["mean"]["inactive"])
    agg = groups["aggregate"]["activity"]["pop"]["ndcg@10"]
    assert set(agg["mean"]) <= {"q1", "q2", "q3", "q4"} and agg["gap"] >= 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("zodiac", "unknown --group-by 'zodiac'; valid: activity, active, gender"),
        ("gender", "has no user attribute 'gender'"),
    ],
)
def test_group_by_errors_are_one_line(ratings_csv, value, expected):
    argv = ["evaluate", "-d", str(ratings_csv), "-m", "pop", "--group-by", value]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_group_by_gender_on_ml100k(shared_datasets, tmp_path):
    if not (shared_datasets / "ml-100k").is_dir():
        pytest.skip("ml-100k not in the shared datasets")
    out = tmp_path / "r.json"
    argv = ["evaluate", "-d", "ml-100k", "--data-dir", str(shared_datasets), "-m", "pop"]
    result = CliRunner().invoke(app, [*argv, "--group-by", "gender,occupation", "--json", str(out)])
    assert result.exit_code == 0, result.output
    runs = json.loads(out.read_text())["groups"]["runs"]
    gender = next(r for r in runs if r["group_by"] == "gender")
    assert gender["groups"] == ["F", "M"] and sum(gender["n_users"].values()) == 943
    occupation = next(r for r in runs if r["group_by"] == "occupation")
    assert (
        len(occupation["groups"]) == 21
        and occupation["metrics"]["ndcg@10"]["test"]["test"] == "kruskal"
    )
