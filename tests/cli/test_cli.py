"""The lumenrec CLI through CliRunner: exit codes, one-line errors, JSON, reproducible files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from lumenrec.cli import app
from lumenrec.cli._common import parse_params, parse_seeds
from lumenrec.data import block_clusters
from lumenrec.errors import ConfigError
from lumenrec.evaluation.protocol import metrics_from_files

RESULT_KEYS = {
    "schema", "protocol", "description", "evaluated_on", "dataset", "seeds", "k", "ks", "models",
    "splits", "runs", "aggregate", "versions", "hardware", "wall_time", "created_at",
}  # fmt: skip
NAMES = ("precision", "recall", "ndcg", "map", "mrr", "hr", "f1")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def _restore_lumenrec_logger():
    """The CLI configures the 'lumenrec' logger; put it back for the other tests."""
    logger = logging.getLogger("lumenrec")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory) -> Path:
    data = block_clusters(n_topics=4, n_users=120, n_items=80, random_state=0)
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    data.to_frame().to_csv(path, index=False)
    return path


def _invoke(runner: CliRunner, *args: object):
    return runner.invoke(app, [str(a) for a in args])


def _assert_reproduced(results: dict, recs: Path, test: Path, seed: int) -> None:
    runs = [r for r in results["runs"] if r["seed"] == seed]
    assert runs
    for run in runs:
        for k in results["ks"]:
            again = metrics_from_files(recs, test, k, model=run["model"])
            assert again["n_users"] == run["n_users"]
            for name in NAMES:
                assert abs(again[f"{name}@{k}"] - run["metrics"][f"{name}@{k}"]) <= 1e-12


@pytest.mark.parametrize("command", [[], ["datasets"], ["evaluate"], ["demo"]])
def test_help_on_every_command(runner, command):
    result = _invoke(runner, *command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "--help" in result.output


def test_version(runner):
    result = _invoke(runner, "--version")
    assert result.exit_code == 0 and result.stdout.startswith("lumenrec ")


def test_datasets_lists_builtin_names(runner, tmp_path):
    result = _invoke(runner, "datasets", "--data-dir", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {"ml-100k", "amazon-beauty"} <= {r["name"] for r in rows}
    assert all(set(r) == {"name", "description", "present", "path", "missing"} for r in rows)
    assert all(r["path"].startswith(str(tmp_path)) and r["missing"] for r in rows)
    assert not any(r["present"] for r in rows)  # an empty directory holds none of them
    table = _invoke(runner, "datasets", "--data-dir", tmp_path)
    assert table.exit_code == 0 and "ml-100k" in table.stdout


@pytest.mark.data
def test_datasets_sees_shared_copies(runner, shared_datasets):
    result = _invoke(runner, "datasets", "--data-dir", shared_datasets, "--json")
    assert result.exit_code == 0, result.output
    present = {r["name"]: r["present"] for r in json.loads(result.stdout)}
    assert present["ml-100k"]


def test_evaluate_csv_writes_json_and_reproducible_files(runner, ratings_csv, tmp_path):
    out = tmp_path / "r.json"
    result = _invoke(
        runner, "evaluate", "--dataset", ratings_csv, "--protocol", "p1",
        "--models", "pop,itemknn,ease", "--params", "ease.regularization=10", "--seeds", "0,1",
        "--json", out, "--save-recs", tmp_path / "recs-{seed}.parquet",
        "--save-split", tmp_path / "split-{seed}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ndcg@10".upper() in result.stdout.upper() and "itemknn" in result.stdout
    results = json.loads(out.read_text())
    assert set(results) == RESULT_KEYS
    assert results["seeds"] == [0, 1] and results["ks"] == [5, 10, 20] and results["k"] == 10
    assert results["dataset"]["name"] == "ratings" and len(results["dataset"]["fingerprint"]) == 64
    assert results["models"]["ease"]["params"]["regularization"] == 10.0
    assert set(results["aggregate"]) == {"pop", "itemknn", "ease"}
    assert results["aggregate"]["ease"]["ndcg@10"]["std"] is not None
    assert len(results["runs"]) == 6
    recs = pd.read_parquet(tmp_path / "recs-1.parquet")
    assert list(recs.columns) == [
        "model", "user_id", "item_id", "rank", "score",
        "reason_kind", "reason_method", "reason", "evidence",
    ]  # fmt: skip
    assert set(recs["model"]) == {"pop", "itemknn", "ease"} and recs["rank"].min() == 1
    assert (recs["reason"].str.len() > 0).all()  # every saved item has a reason
    assert set(recs.loc[recs["model"] == "ease", "reason_method"]) <= {"exact", "popularity"}
    assert set(recs.loc[recs["model"] == "pop", "reason_kind"]) == {"popular"}
    for seed in (0, 1):
        split_dir = tmp_path / f"split-{seed}"
        assert json.loads((split_dir / "split.json").read_text())["seed"] == seed
        _assert_reproduced(
            results, tmp_path / f"recs-{seed}.parquet", split_dir / "test.parquet", seed
        )


def test_evaluate_json_to_stdout_and_column_options(runner, tmp_path, ratings_csv):
    renamed = tmp_path / "renamed.parquet"
    frame = pd.read_csv(ratings_csv, dtype=str)
    frame.rename(columns={"user_id": "who", "item_id": "what"}).to_parquet(renamed)
    result = _invoke(
        runner, "evaluate", "-d", renamed, "-m", "pop", "--col-user", "who", "--col-item", "what",
        "--json", "-", "-k", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert results["k"] == 5 and "precision@5" in results["runs"][0]["metrics"]


def test_evaluate_default_paths_hold_last_recs_and_first_split(runner, tmp_path, ratings_csv):
    result = _invoke(
        runner, "evaluate", "-d", ratings_csv, "-m", "pop", "--seeds", "3", "--json", tmp_path / "r.json",
        "--save-recs", tmp_path / "recs.parquet", "--save-split", tmp_path / "split",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "r.json").read_text())
    _assert_reproduced(results, tmp_path / "recs.parquet", tmp_path / "split" / "test.parquet", 3)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-d", "{tmp}/missing.csv"], "missing.csv does not exist"),
        (["-d", "{tmp}/bad.csv"], "missing column(s) ['user_id']; found columns ['uid', 'item_id'"),
        (
            ["-d", "{csv}", "-m", "pop,knn"],
            "unknown model 'knn'; valid: pop, itemknn, ease, als, bpr",
        ),
        (
            ["-d", "{csv}", "-p", "p9"],
            "unknown protocol 'p9'; valid: p1, p1-item, p2, p3, p3-users, p4, temporal",
        ),
        (["-d", "{csv}", "--seeds", "0,x"], "bad --seeds '0,x'"),
        (["-d", "{csv}", "--seeds", "1,1"], "seeds repeat"),
        (["-d", "{csv}", "-m", "ease", "--params", "ease.foo=1"], "unknown parameter 'foo'"),
        (["-d", "{csv}", "-m", "ease", "--params", "ease.regularization=-1"], "regularization"),
        (["-d", "{csv}", "-m", "pop", "--params", "ease.regularization=1"], "not in --models"),
        (["-d", "{csv}", "-m", "pop", "--params", "regularization"], "expected MODEL.PARAM=VALUE"),
        (["-d", "{csv}", "--items", "{tmp}/items.csv", "-m", "pop"], "missing column 'item_id'"),
    ],
)
def test_evaluate_bad_input_is_one_line_exit_2(runner, tmp_path, ratings_csv, args, expected):
    (tmp_path / "bad.csv").write_text("uid,item_id\n1,2\n")
    (tmp_path / "items.csv").write_text("id,title\ni1,A title\n")
    argv = [a.format(tmp=tmp_path, csv=ratings_csv) for a in args]
    result = _invoke(runner, "evaluate", *argv)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_debug_adds_the_traceback(runner, tmp_path):
    result = _invoke(runner, "evaluate", "-d", tmp_path / "missing.csv", "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and result.stderr.strip().endswith("check the path")


def test_usage_error_exits_2(runner, ratings_csv):
    assert _invoke(runner, "evaluate", "-d", ratings_csv, "-k", "0").exit_code == 2
    assert _invoke(runner, "evaluate").exit_code == 2  # --dataset is required


def test_internal_error_exits_1_with_traceback(runner, ratings_csv, monkeypatch):
    def boom(*args, **kwargs):
        msg = "kaput"
        raise RuntimeError(msg)

    monkeypatch.setattr("lumenrec.cli.evaluate.load_dataset", boom)
    result = _invoke(runner, "evaluate", "-d", ratings_csv, "-m", "pop")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "RuntimeError: kaput" in result.stderr


def test_verbose_logs_through_the_lumenrec_logger(runner, ratings_csv):
    result = _invoke(runner, "evaluate", "-d", ratings_csv, "-m", "pop", "-v")
    assert result.exit_code == 0, result.output
    assert "evaluated MostPopular" in result.stderr
    assert logging.getLogger().handlers == [] or all(
        not getattr(h, "_lumenrec_cli_handler", False) for h in logging.getLogger().handlers
    )


@pytest.mark.data
def test_evaluate_ml100k_reproduces_from_saved_files(runner, shared_datasets, tmp_path):
    result = _invoke(
        runner, "evaluate", "--dataset", "ml-100k", "--data-dir", shared_datasets,
        "--protocol", "p1", "--models", "pop,itemknn", "--seeds", "0", "--json", tmp_path / "r.json",
        "--save-recs", tmp_path / "recs.parquet", "--save-split", tmp_path / "split",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["dataset"]["n_users"] == 943 and results["dataset"]["n_events"] == 100_000
    assert results["runs"][0]["n_users"] == 943
    assert (
        results["aggregate"]["itemknn"]["ndcg@10"]["mean"]
        > results["aggregate"]["pop"]["ndcg@10"]["mean"]
    )
    _assert_reproduced(results, tmp_path / "recs.parquet", tmp_path / "split" / "test.parquet", 0)


def test_demo_smoke_prints_titles(runner):
    result = _invoke(runner, "demo", "--smoke")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "topic hiking" in out and "recently:" in out
    assert "Classic" in out and " no. " in out  # item titles from the synthetic catalogue
    assert "ease" in out and "pop" in out


def test_demo_ease_beats_popularity_and_stays_on_topic():
    from io import StringIO

    from rich.console import Console

    from lumenrec.cli.demo import run_demo

    buffer = StringIO()
    info = run_demo(Console(file=buffer, width=120), smoke=True)
    assert info["metrics"]["ease"]["ndcg@10"] > 3 * info["metrics"]["pop"]["ndcg@10"]
    for line in buffer.getvalue().splitlines():
        if " on topic" in line:
            assert int(line.split("·")[-1].split("/")[0]) >= 7


def test_parsers():
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    assert parse_params(
        "ease.regularization=3e2,als.binarize=true,als.backend=numpy", ["ease", "als"]
    ) == {
        "ease": {"regularization": 300.0},
        "als": {"binarize": True, "backend": "numpy"},
    }
    with pytest.raises(ConfigError, match="range"):
        parse_seeds("3-1")


def test_multi_seed_without_placeholders_warns_and_keeps_first_split(runner, tmp_path, ratings_csv):
    result = _invoke(
        runner, "evaluate", "-d", ratings_csv, "-m", "pop", "--seeds", "0,1",
        "--save-recs", tmp_path / "recs.parquet", "--save-split", tmp_path / "split",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "{seed}" in result.stderr  # the hint to use the placeholder
    assert json.loads((tmp_path / "split" / "split.json").read_text())["seed"] == 0
    assert set(pd.read_parquet(tmp_path / "recs.parquet")["model"]) == {"pop"}


def test_table_transposes_on_a_narrow_console(runner, ratings_csv, tmp_path):
    from io import StringIO

    from rich.console import Console

    from lumenrec.cli.evaluate import print_table

    out = tmp_path / "r.json"
    result = _invoke(runner, "evaluate", "-d", ratings_csv, "-m", "pop,ease", "--json", out)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    wide, narrow = StringIO(), StringIO()
    print_table(results, Console(file=wide, width=200))
    print_table(results, Console(file=narrow, width=60))
    assert "│ pop " in wide.getvalue() and "│ NDCG@10 " in narrow.getvalue()
    assert max(map(len, narrow.getvalue().splitlines())) <= 60
