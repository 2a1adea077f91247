"""``lumenrec train`` and ``lumenrec serve``: CliRunner for exit codes, a real uvicorn subprocess."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from lumenrec.cli.serve import serve_command  # noqa: E402
from lumenrec.cli.train import train_command  # noqa: E402
from lumenrec.data import block_clusters  # noqa: E402

KEY = "cli-test-key-0123456789"


@pytest.fixture
def cli() -> typer.Typer:
    """train + serve as in ``lumenrec`` (they are registered there by the lead)."""
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("serve")(serve_command)
    return app


@pytest.fixture(autouse=True)
def _restore_loggers():
    """train/serve configure the 'lumenrec' and 'uvicorn' loggers; put them back."""
    saved = {}
    for name in ("lumenrec", "uvicorn"):
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers), logger.propagate)
    yield
    for name, (level, handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> tuple[Path, Path]:
    data = block_clusters(n_topics=4, n_users=120, n_items=80, random_state=0)
    folder = tmp_path_factory.mktemp("data")
    data.to_frame().to_csv(folder / "ratings.csv", index=False)
    data.catalog.reset_index().to_csv(folder / "items.csv", index=False)
    return folder / "ratings.csv", folder / "items.csv"


def _train(cli, data_files, out, *extra):
    ratings, items = data_files
    args = ["train", "--dataset", ratings, "--items", items, "--out", out, "--json", *extra]
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_train_publishes_versions(cli, data_files, tmp_path):
    out = tmp_path / "models"
    first = _train(
        cli, data_files, out, "--model", "hybrid", "--params", "encoder=hashing,cache=none"
    )
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert result["version"] == "v1" and result["model"] == "hybrid" and result["n_items"] == 80
    second = _train(cli, data_files, out, "--model", "ease", "--params", "regularization=50")
    assert second.exit_code == 0 and json.loads(second.stdout)["version"] == "v2"
    assert (out / "current").read_text().strip() == "v2"
    manifest = json.loads((out / "versions" / "v2" / "manifest.json").read_text())
    assert manifest["state"]["metadata"]["params"] == {"regularization": 50.0}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "nope"], "unknown model 'nope'"),
        (["--model", "ease", "--params", "topk=3"], "unknown parameter 'topk'"),
    ],
)
def test_train_usage_errors_exit_2(cli, data_files, tmp_path, extra, message):
    r = _train(cli, data_files, tmp_path / "m", *extra)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_train_missing_file_exit_2(cli, tmp_path):
    r = CliRunner().invoke(cli, ["train", "--dataset", str(tmp_path / "x.csv"), "--out", "m"])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_serve_refuses_open_bind_without_key(cli, tmp_path):
    args = ["serve", "--model-dir", str(tmp_path), "--db", str(tmp_path / "e.db")]
    r = CliRunner().invoke(cli, [*args, "--host", "0.0.0.0"], env={"LUMENREC_API_KEY": ""})
    assert r.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in r.output and "LUMENREC_API_KEY" in r.output


def test_serve_without_or_with_corrupt_model_exit_2(cli, data_files, tmp_path):
    args = ["serve", "--model-dir", str(tmp_path / "models"), "--db", str(tmp_path / "e.db")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and "no model in" in r.output
    assert _train(cli, data_files, tmp_path / "models").exit_code == 0
    arrays = tmp_path / "models" / "versions" / "v1" / "model" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:50])
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2
    assert "is corrupt: sha256 mismatch for arrays.npz" in r.output and "Traceback" not in r.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_subprocess_end_to_end(cli, data_files, tmp_path):
    out = tmp_path / "models"
    assert (
        _train(
            cli, data_files, out, "--model", "hybrid", "--params", "encoder=hashing,cache=none"
        ).exit_code
        == 0
    )
    port = _free_port()
    env = {**os.environ, "LUMENREC_API_KEY": KEY}
    env.pop("OPENBLAS_NUM_THREADS", None)
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "lumenrec", "serve", "--model-dir", str(out)]
    cmd += ["--db", str(tmp_path / "events.sqlite"), "--port", str(port)]
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server not ready in 60 s"
            try:
                ready = httpx.get(f"{base}/health/ready", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert ready.json()["ready"] is True and ready.json()["blas_threads"] == 1
        r = httpx.get(f"{base}/recommend/u1", params={"k": 3})
        assert r.status_code == 200 and r.json()["model_version"] == "v1"
        assert len(r.json()["items"]) == 3
        event = {"user_id": "u1", "item_id": "i2", "event_id": "cli-1"}
        assert httpx.post(f"{base}/feedback", json=event).status_code == 401
        wrong = httpx.post(f"{base}/feedback", json=event, headers={"X-API-Key": "y" * 20})
        assert wrong.status_code == 401
        ok = httpx.post(f"{base}/feedback", json=event, headers={"X-API-Key": KEY})
        assert ok.status_code == 200 and ok.json()["accepted"] == 1
        assert "lumenrec_model_version_info" in httpx.get(f"{base}/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code in (0, -signal.SIGTERM)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines and all(json.loads(line)["level"] for line in lines)  # JSON log lines only
    assert KEY not in log.read_text()
    assert any("serving model v1" in json.loads(line)["msg"] for line in lines)


# -- SERVICE.md 4.3: CLI data errors exit 2 naming the file and the column ------------------
_BAD_FILES = {
    "missing.csv": (
        "user,item_id\nu1,i1\n",
        ["missing.csv", "missing column(s) ['user_id']", "found columns ['user', 'item_id']"],
    ),
    "empty.csv": ("", ["empty.csv is empty", "header row"]),
    "ts.csv": (
        "user_id,item_id,timestamp\nu1,i1,yesterday\n",
        ["ts.csv", "'timestamp'", "unparsable timestamp 'yesterday'", "ISO 8601"],
    ),
}


@pytest.mark.parametrize("name", sorted(_BAD_FILES))
def test_train_bad_data_files_exit_2(cli, tmp_path, name):
    text, messages = _BAD_FILES[name]
    (tmp_path / name).write_text(text, encoding="utf-8")
    args = ["train", "--dataset", str(tmp_path / name), "--out", str(tmp_path / "m")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    flat = " ".join(r.output.split())
    assert all(m in flat for m in messages), flat
    assert "Traceback" not in r.output and not (tmp_path / "m" / "current").exists()


_BAD_PARQUET = {
    "float user ids": (
        {"user_id": [1.5, 2.25], "item_id": ["i1", "i2"]},
        ["'user_id' holds non-integral numbers (e.g. 1.5 at row 0)"],
    ),
    "list item ids": (
        {"user_id": ["u1", "u2"], "item_id": [["i1", "i2"], ["i3"]]},
        ["'item_id' holds list values (a nested column)"],
    ),
    "bytes user ids": ({"user_id": [b"u1", b"u2"], "item_id": ["i1", "i2"]}, ["holds bytes"]),
    "dict ratings": (
        {"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "rating": [{"r": 1}, {"r": 2}]},
        ["'rating' holds dict values", "--col-rating ''"],
    ),
}


@pytest.mark.parametrize("case", sorted(_BAD_PARQUET))
def test_train_parquet_with_wrong_dtypes_exit_2(cli, tmp_path, case):
    """SERVICE.md 4.3: Parquet with the wrong dtypes → exit 2 naming the file, the column and
    the available columns with a one-line hint; no traceback (only with --debug)."""
    import pandas as pd

    columns, messages = _BAD_PARQUET[case]
    path = tmp_path / "events.parquet"
    pd.DataFrame(columns).to_parquet(path)
    args = ["train", "--dataset", str(path), "--out", str(tmp_path / "m")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    flat = " ".join(r.output.split())
    assert f"error: {path}: column" in flat, flat
    assert all(m in flat for m in messages), flat
    assert f"available columns: {list(columns)}" in flat
    assert "Traceback" not in r.output and not (tmp_path / "m" / "current").exists()
    debug = CliRunner().invoke(cli, [*args, "--debug"])
    assert debug.exit_code == 2 and "Traceback" in debug.output


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("bom.csv", b"\xef\xbb\xbfuser_id,item_id\nu1,i1\nu2,i2\n"),
        ("semicolon.csv", b"user_id;item_id\nu1;i1\nu2;i2\n"),
    ],
)
def test_train_bom_and_other_delimiters_are_read(cli, tmp_path, name, raw):
    (tmp_path / name).write_bytes(raw)
    args = ["train", "--dataset", str(tmp_path / name), "--out", str(tmp_path / "m"), "--json"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_users"] == 2


def test_serve_model_from_a_newer_format_exit_2(cli, data_files, tmp_path):
    assert _train(cli, data_files, tmp_path / "models").exit_code == 0
    manifest = tmp_path / "models" / "versions" / "v1" / "manifest.json"
    body = json.loads(manifest.read_text())
    body["format_version"] = 99
    manifest.write_text(json.dumps(body))
    args = ["serve", "--model-dir", str(tmp_path / "models"), "--db", str(tmp_path / "e.db")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "written by a newer version (format 99 > 1)" in " ".join(r.output.split())


@pytest.mark.parametrize("bad", ["..%2foutside", "ml-100k%2f..%2f..%2fx", "..", "~root"])
def test_train_dataset_names_cannot_escape_the_data_dir(cli, tmp_path, bad):
    """S4: a name that is not a file is only ever one of the built-in datasets (an allow-list
    resolved inside --data-dir), so encoded traversal gets exit 2, never a read elsewhere.
    A file path given explicitly is the operator's own choice and is read as given."""
    root = tmp_path / "datasets"
    root.mkdir()
    args = ["train", "--dataset", bad, "--data-dir", str(root), "--out", str(tmp_path / "m")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert "unknown dataset" in r.output or "does not exist" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "m").exists()
