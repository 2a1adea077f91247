"""``lumenrec recommend`` through Typer's runner: reasons, re-ranking, store controls, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lumenrec.cli import app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from lumenrec.data.synthetic import block_clusters
    from lumenrec.models.ease import EASE
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry

    data = block_clusters(n_topics=4, n_users=60, n_items=40, random_state=0)
    root = tmp_path_factory.mktemp("rec") / "models"
    ModelRegistry(root).publish(RecommendPipeline.fit(EASE(regularization=5.0), data))
    return root


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_recommend_json_has_a_reason_per_item(model_dir):
    result = _run("recommend", "--model-dir", model_dir, "--user", "u1", "--k", "4", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["model_version"] == "v1" and len(body["items"]) == 4
    for entry in body["items"]:
        reason = entry["reason"]
        assert reason["method"] == "exact" and reason["sentence"].startswith("Because you liked")
        assert reason["explained_score"] == pytest.approx(entry["score"], abs=1e-5)


def test_recommend_table_and_rerank(model_dir):
    table = _run("recommend", "--model-dir", model_dir, "--user", "u1", "--k", "3")
    assert table.exit_code == 0 and "Because you liked" in table.stdout
    reranked = _run(
        "recommend", "--model-dir", model_dir, "--user", "u1", "--rerank", "mmr=0.9", "--json"
    )
    assert json.loads(reranked.stdout)["rerank"]["stages"] == ["mmr"]


def test_recommend_honours_store_controls(model_dir, tmp_path):
    from lumenrec.serving.store import EventStore

    first = json.loads(
        _run("recommend", "--model-dir", model_dir, "--user", "u1", "--json").stdout
    )["items"][0]["item_id"]
    db = tmp_path / "events.sqlite"
    store = EventStore(db)
    store.add_control("u1", "item", first)
    store.close()
    out = _run("recommend", "--model-dir", model_dir, "--user", "u1", "--db", db, "--json")
    assert out.exit_code == 0, out.output
    assert first not in [x["item_id"] for x in json.loads(out.stdout)["items"]]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--rerank", "sparkle=0.2"], "sparkle"),
        (["--rerank", "mmr=3"], "mmr"),
        (["--db", "{tmp}/none.sqlite"], "no event store"),
    ],
)
def test_recommend_bad_input_is_one_clear_line(model_dir, tmp_path, args, expected):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = _run("recommend", "--model-dir", model_dir, "--user", "u1", *args)
    assert result.exit_code == 2
    assert expected in result.output and "Traceback" not in result.output


def test_recommend_missing_model_dir(tmp_path):
    result = _run("recommend", "--model-dir", tmp_path / "nope", "--user", "u1")
    assert result.exit_code == 2 and "not a directory" in result.output
