"""``lumenrec encode`` (registered here on a local Typer app): outputs, cache and exit codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from lumenrec.cli.encode import encode
from lumenrec.encoders import HashingEncoder, ItemTextTemplate

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("encode")(encode)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps "encode" a named sub-command
        pass

    return app


@pytest.fixture
def items_csv(tmp_path):
    frame = pd.DataFrame(
        {
            "item_id": ["b1", "b2", "b3"],
            "title": ["Trail boots", "Cast iron skillet", None],
            "brand": ["Acme", None, "Chef"],
        }
    )
    path = tmp_path / "items.csv"
    frame.to_csv(path, index=False)
    return path, frame.set_index("item_id")


def expected(frame, fields=None):
    texts = ItemTextTemplate(fields=fields).render(frame)
    return HashingEncoder().encode(texts)


def test_parquet_output_with_cache(app, items_csv, tmp_path):
    path, frame = items_csv
    out, cache = tmp_path / "emb.parquet", tmp_path / "emb.sqlite"
    args = ["encode", "--items", str(path), "--model", "hashing", "--out", str(out)]
    result = runner.invoke(app, [*args, "--cache", str(cache), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "encoded 3 items" in result.output and "3 new vectors" in result.output
    table = pq.read_table(out)
    assert table.column("item_id").to_pylist() == ["b1", "b2", "b3"]
    vectors = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
    np.testing.assert_array_equal(vectors, expected(frame))
    assert table.schema.metadata[b"lumenrec.encoder"] == HashingEncoder().fingerprint.encode()
    again = runner.invoke(app, [*args, "--cache", str(cache)])
    assert again.exit_code == 0 and "0 new vectors" in again.output


def test_npy_and_npz_outputs(app, items_csv, tmp_path):
    path, frame = items_csv
    for name in ("emb.npy", "emb.npz"):
        out = tmp_path / name
        result = runner.invoke(
            app,
            [
                "encode",
                "--items",
                str(path),
                "-m",
                "hashing",
                "--fields",
                "brand,title",
                "-o",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
    want = expected(frame, ["brand", "title"])
    np.testing.assert_array_equal(np.load(tmp_path / "emb.npy", allow_pickle=False), want)
    ids = np.load(tmp_path / "emb.ids.npy", allow_pickle=False)
    assert ids.tolist() == ["b1", "b2", "b3"]
    with np.load(tmp_path / "emb.npz", allow_pickle=False) as z:
        assert z["ids"].tolist() == ["b1", "b2", "b3"]
        np.testing.assert_array_equal(z["embeddings"], want)
    assert not list(tmp_path.glob(".*.tmp"))


def test_dataset_file_with_items(app, items_csv, tmp_path):
    path, _ = items_csv
    events = tmp_path / "events.csv"
    pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["b2", "b1"]}).to_csv(events, index=False)
    out = tmp_path / "emb.npz"
    result = runner.invoke(
        app, ["encode", "-d", str(events), "--items", str(path), "-m", "hashing", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z["ids"].tolist()) == ["b1", "b2", "b3"]
        assert z["embeddings"].shape == (3, 256)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "emb.csv", "--items", "ITEMS"], "--out must end in"),
        (["--out", "emb.npy"], "give --dataset"),
        (["--out", "emb.npy", "--items", "ITEMS", "--fields", "price"], "no column"),
        (["--out", "emb.npy", "--items", "ITEMS", "--fast"], "--fast applies"),
    ],
)
def test_bad_input_exits_2(app, items_csv, tmp_path, extra, message):
    path, _ = items_csv
    args = [a.replace("ITEMS", str(path)) for a in extra]
    args = [str(tmp_path / a) if a.startswith("emb.") else a for a in args]
    result = runner.invoke(app, ["encode", "-m", "hashing", *args])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in result.output
