"""``lumenrec forget`` through the CLI runner: JSON audit record, human output, bad input."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("fastapi")

from lumenrec.cli.forget import FORGET_HELP, forget_command  # noqa: E402
from lumenrec.data import block_clusters  # noqa: E402
from lumenrec.models.ease import EASE  # noqa: E402
from lumenrec.pipeline import RecommendPipeline  # noqa: E402
from lumenrec.serving import EventStore, ModelRegistry  # noqa: E402

runner = CliRunner()


@pytest.fixture
def app():
    cli = typer.Typer()
    cli.command("forget", help=FORGET_HELP)(forget_command)
    cli.command("noop")(lambda: None)  # two commands: "forget" stays a sub-command
    return cli


@pytest.fixture
def model_dir(tmp_path):
    data = block_clusters(n_topics=3, n_users=40, n_items=30, random_state=0)
    root = tmp_path / "models"
    ModelRegistry(root).publish(RecommendPipeline.fit(EASE(regularization=10.0), data))
    return root, str(data.users.ids[3])


def test_forget_json(app, model_dir, tmp_path):
    root, user = model_dir
    db = tmp_path / "events.sqlite"
    EventStore(db).close()
    result = runner.invoke(
        app, ["forget", "--model-dir", str(root), "--user", user, "--db", str(db), "--json"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["model_version"] == "v2" and record["model_effect"] == "exact"
    assert record["events_deleted"] == 0 and user not in result.stdout
    assert user not in ModelRegistry(root).load().users


def test_forget_human_output(app, model_dir):
    root, user = model_dir
    result = runner.invoke(app, ["forget", "--model-dir", str(root), "--user", user])
    assert result.exit_code == 0, result.output
    assert "model v2 (exact)" in result.output and "versions/v1: deleted" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "error: unknown user 'nobody'"),
        (["--user", "x", "--db", "missing.sqlite"], "error: no event store at missing.sqlite"),
        (["--user", "x", "--older", "keep"], "error: older must be 'rewrite' or 'delete'"),
        (["--user", "bad\x00id"], "error: user_id must be"),
    ],
)
def test_bad_input_exits_2(app, model_dir, args, message):
    root, _ = model_dir
    result = runner.invoke(app, ["forget", "--model-dir", str(root), *args])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(message)
    assert ModelRegistry(root).versions() == ["v1"]


def test_missing_registry(app, tmp_path):
    result = runner.invoke(app, ["forget", "--model-dir", str(tmp_path / "no"), "--user", "u"])
    assert result.exit_code == 2 and "error: no model registry at" in result.output
