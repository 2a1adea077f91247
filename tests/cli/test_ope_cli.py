"""``ope_command`` through Typer's runner: lumenrec and OBD formats, JSON, truth, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from lumenrec.cli.ope import ope_command

app = typer.Typer()
app.command()(ope_command)


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def log_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "item_id": rng.choice(["a", "b", "c", "d"], n),
            "position": rng.integers(0, 2, n),
            "reward": rng.binomial(1, 0.3, n),
            "propensity": 0.25,
        }
    )
    path = tmp_path / "log.csv"
    df.to_csv(path, index=False)
    return path


def test_lumenrec_format_table_json_and_truth(log_file, tmp_path):
    out = tmp_path / "ope.json"
    res = _run("--logs", log_file, "--target", "random", "--estimators", "ips,snips,dm,dr",
               "--ground-truth", log_file, "--json", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "95% CI" in res.output and "snips" in res.output and "rel. error" in res.output
    data = json.loads(out.read_text())
    assert data["format"] == "lumenrec" and data["n"] == 400
    ips = data["estimates"]["ips"]
    # a uniform log evaluated for the uniform policy: IPS is the logged mean, error 0
    assert (
        ips["value"] == pytest.approx(data["logged_mean_reward"]) and ips["relative_error"] < 1e-12
    )
    assert ips["ci_low"] < ips["value"] < ips["ci_high"]


def test_bootstrap_option(log_file):
    res = _run("--logs", log_file, "--estimators", "ips", "--bootstrap", "50")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    ("edit", "args", "message"),
    [
        ({"propensity": 0.0}, [], "propensities are <= 0"),
        ({"propensity": 1.5}, [], "are > 1"),
        ({}, ["--target", "bts"], "unknown --target 'bts' for --format lumenrec"),
        ({}, ["--estimators", "ips,wizard"], "unknown estimator"),
        ({}, ["--format", "xml"], "unknown --format"),
    ],
)
def test_bad_input_is_one_error_line(log_file, edit, args, message):
    df = pd.read_csv(log_file).assign(**edit)
    df.to_csv(log_file, index=False)
    res = _run("--logs", log_file, *args)
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_missing_propensity_column_and_db_hook(log_file, tmp_path):
    pd.read_csv(log_file).drop(columns="propensity").to_csv(log_file, index=False)
    res = _run("--logs", log_file)
    assert res.exit_code == 2 and "missing column(s) ['propensity']" in res.output
    res = _run("--db", tmp_path / "events.db", "--target", "random")
    assert res.exit_code == 2 and "error:" in res.output


def test_obd_bts_from_random(shared_datasets, tmp_path):
    root = shared_datasets / "open-bandit"
    out = tmp_path / "obd.json"
    res = _run("--logs", root / "random/all/all.csv", "--format", "obd", "--target", "bts",
               "--estimators", "ips,snips", "--ground-truth", root / "bts/all/all.csv",
               "--json", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert abs(data["estimates"]["ips"]["value"] - 0.004566904) <= 1e-9
    assert data["truth"] == pytest.approx(0.0042)
    assert data["estimates"]["ips"]["relative_error"] == pytest.approx(0.0873, abs=1e-3)
