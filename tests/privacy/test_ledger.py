"""The budget ledger: spends add up, an over-budget training stops before it starts."""

from __future__ import annotations

import json
import logging

import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("opacus")

from lumenrec.cli.train import train_command  # noqa: E402
from lumenrec.data import block_clusters  # noqa: E402
from lumenrec.errors import ConfigError  # noqa: E402
from lumenrec.privacy.dp import PrivacySpend  # noqa: E402
from lumenrec.privacy.ledger import LEDGER_FILE, PrivacyLedger  # noqa: E402


def _spend(eps: float) -> PrivacySpend:
    return PrivacySpend(eps, 1e-6, "user", "gaussian", "prv", 1.0, 1.0, 1, 1.0, eps)


def test_spent_adds_up_and_over_budget_is_refused(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    assert ledger.spent("fp", "ease") == (0.0, 0.0)
    ledger.record("fp", "ease", _spend(2.0), "v1", max_epsilon=5.0)
    ledger.record("fp", "ease", _spend(1.5), "v2")
    ledger.record("fp", "pop", _spend(1.0), "v3")
    assert ledger.spent("fp", "ease") == pytest.approx((3.5, 2e-6))
    assert ledger.spent("fp") == pytest.approx((4.5, 3e-6))
    assert ledger.max_epsilon("fp", "ease") == 5.0
    before = (tmp_path / LEDGER_FILE).read_bytes()
    with pytest.raises(ConfigError, match=r"budget exceeded.*max epsilon 5.*would reach 5.5"):
        ledger.check("fp", "ease", 2.0)
    with pytest.raises(ConfigError, match="budget exceeded"):
        ledger.record("fp", "ease", _spend(2.0))
    assert (tmp_path / LEDGER_FILE).read_bytes() == before
    ledger.check("fp", "ease", 1.5)  # exactly at the maximum is allowed
    assert ledger.summary("fp", "ease")["dataset_total_epsilon"] == pytest.approx(4.5)


def test_check_writes_nothing(tmp_path):
    ledger = PrivacyLedger(tmp_path / "models")
    with pytest.raises(ConfigError):
        ledger.check("fp", "ease", 3.0, max_epsilon=2.0)
    assert not (tmp_path / "models").exists()


def test_corrupt_ledger_is_an_error(tmp_path):
    (tmp_path / LEDGER_FILE).write_text("{not json")
    with pytest.raises(Exception, match="unreadable"):
        PrivacyLedger(tmp_path).spent("fp")


@pytest.fixture
def cli() -> typer.Typer:
    saved = logging.getLogger("lumenrec")
    level, handlers, propagate = saved.level, list(saved.handlers), saved.propagate
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("other")(lambda: None)
    yield app
    saved.setLevel(level)
    saved.handlers[:] = handlers
    saved.propagate = propagate


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    data = block_clusters(n_topics=4, n_users=120, n_items=60, random_state=0)
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    data.to_frame().to_csv(path, index=False)
    return path


def _train(cli, ratings, out, *extra):
    args = ["train", "--dataset", ratings, "--out", out, "--json", *extra]
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_private_training_ledger_and_manifest(cli, ratings, tmp_path):
    out = tmp_path / "models"
    first = _train(cli, ratings, out, "--model", "ease", "--epsilon", "2", "--max-epsilon", "3")
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert result["privacy"]["level"] == "user" and result["privacy"]["epsilon"] <= 2.0
    manifest = json.loads((out / "versions" / "v1" / "manifest.json").read_text())
    privacy = manifest["state"]["metadata"]["privacy"]
    assert privacy["epsilon"] == result["privacy"]["epsilon"]
    assert privacy["ledger"]["model_total_epsilon"] == pytest.approx(privacy["epsilon"])
    ledger = json.loads((out / LEDGER_FILE).read_text())
    assert [e["version"] for e in ledger["entries"]] == ["v1"]
    before = (out / LEDGER_FILE).read_bytes()
    # 2 spent of a stored maximum of 3: a second epsilon-2 training stops before it starts
    second = _train(cli, ratings, out, "--model", "ease", "--epsilon", "2")
    assert second.exit_code != 0 and "budget exceeded" in second.output
    assert (out / LEDGER_FILE).read_bytes() == before
    assert sorted(p.name for p in (out / "versions").iterdir()) == ["v1"]
    third = _train(cli, ratings, out, "--model", "pop", "--epsilon", "1")
    assert third.exit_code == 0, third.output
    assert json.loads(third.stdout)["privacy"]["ledger"]["dataset_total_epsilon"] > 2.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "als", "--epsilon", "1"], "no differentially private variant"),
        (["--model", "ease", "--epsilon", "0"], "epsilon must be"),
        (["--model", "ease", "--epsilon", "1", "--delta", "0.01"], "n = 120 users"),
    ],
)
def test_cli_bad_private_input(cli, ratings, tmp_path, extra, message):
    out = tmp_path / "models"
    r = _train(cli, ratings, out, *extra)
    assert r.exit_code != 0 and message in r.output
    assert not (out / LEDGER_FILE).exists()
