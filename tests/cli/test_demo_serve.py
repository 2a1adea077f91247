"""``lumenrec demo`` serves the trained model on 127.0.0.1 once and prints a curl + its answer."""

from __future__ import annotations

import json
import socket
from io import StringIO

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from lumenrec.cli.demo import demo_command, run_demo  # noqa: E402


def test_demo_serves_an_explained_recommendation_and_stops():
    buffer = StringIO()
    info = run_demo(Console(file=buffer, width=200), smoke=True, serve=True)
    service = info["service"]
    assert service["status"] == 200
    assert service["curl"].startswith("curl -s 'http://127.0.0.1:")
    answer = service["answer"]
    assert answer["user_id"] == "u0" and answer["model_version"] == "v1"
    assert [i["rank"] for i in answer["items"]] == [1, 2, 3]
    assert all(i["route"] == "cf" for i in answer["items"])
    out = buffer.getvalue()
    assert service["curl"] in out and json.dumps(answer, indent=2) in out
    explained = [ln for ln in out.splitlines() if ln.startswith("  #")]
    assert len(explained) == 3 and all("because you liked" in ln for ln in explained)
    port = int(service["curl"].split(":")[2].split("/")[0])
    with socket.socket() as sock:  # the service is gone: nothing listens on its port
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    assert info["seconds"] < 60


def test_demo_no_serve_prints_no_curl():
    app = typer.Typer()
    app.command("demo")(demo_command)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["demo", "--smoke", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "curl" not in result.stdout and "Done in" in result.stdout
