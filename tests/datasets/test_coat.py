"""Coat (shared copy) and Yahoo! R3 (a synthetic file in the official format) loaders."""

from __future__ import annotations

import numpy as np
import pytest

from lumenrec.datasets.coat import YAHOO_R3_FILES, load_coat, load_yahoo_r3
from lumenrec.errors import DataError


def test_coat_counts_match_provenance(shared_datasets):
    data = load_coat(shared_datasets)
    assert data.shape == (290, 300)
    assert data.train.nnz == 6960 and data.test.nnz == 4640
    assert (np.diff(data.train.indptr) == 24).all() and (np.diff(data.test.indptr) == 16).all()
    assert np.bincount(data.train.data.astype(int), minlength=6)[1:].tolist() == [
        1901, 1437, 1717, 1275, 630,
    ]  # fmt: skip
    assert data.train.multiply(data.test).nnz == 366
    assert data.user_features.shape == (290, 14) and data.item_features.shape == (300, 33)
    assert (data.item_features.sum(1) == 4).all()
    assert data.propensities.shape == (290, 300)
    assert data.sha256["train.ascii"].startswith("a87bd9e7")


def test_coat_accepts_the_coat_folder_itself(shared_datasets):
    data = load_coat(shared_datasets / "coat", side_files=False)
    assert data.test.nnz == 4640 and data.propensities is None


def test_coat_missing_file_names_it_and_the_fix(tmp_path, monkeypatch):
    (tmp_path / "coat").mkdir()
    (tmp_path / "coat" / "train.ascii").write_text("0 1\n2 0\n")
    with pytest.raises(DataError, match=r"test\.ascii.*coat\.zip"):
        load_coat(tmp_path)
    monkeypatch.setenv("LUMENREC_DATA_DIR", str(tmp_path))
    (tmp_path / "coat" / "test.ascii").write_text("1 0\n0 7\n")
    with pytest.raises(DataError, match="outside 0..5"):
        load_coat()


def _write_yahoo(folder, train_rows, test_rows):
    for name, rows in zip(YAHOO_R3_FILES, (train_rows, test_rows), strict=True):
        (folder / name).write_text("".join(f"{u}\t{i}\t{r}\n" for u, i, r in rows))


def test_yahoo_r3_reads_official_format(tmp_path):
    _write_yahoo(tmp_path, [(1, 1, 5), (1, 3, 1), (2, 2, 4), (4, 2, 2)], [(1, 2, 1), (3, 4, 3)])
    data = load_yahoo_r3(tmp_path)
    assert data.name == "yahoo-r3" and data.shape == (4, 4)  # 1-based ids -> id - 1
    assert data.train.toarray()[0].tolist() == [5, 0, 1, 0]
    assert data.train[3, 1] == 2 and data.test[0, 1] == 1 and data.test[2, 3] == 3
    assert set(data.sha256) == set(YAHOO_R3_FILES)


def test_yahoo_r3_errors(tmp_path):
    with pytest.raises(DataError, match="redistribution.*webscope"):
        load_yahoo_r3(tmp_path)
    _write_yahoo(tmp_path, [(1, 1, 5), (1, 1, 4)], [(1, 2, 1)])
    with pytest.raises(DataError, match="twice"):
        load_yahoo_r3(tmp_path)
    _write_yahoo(tmp_path, [(0, 1, 5)], [(1, 2, 1)])
    with pytest.raises(DataError, match="1-based"):
        load_yahoo_r3(tmp_path)
    _write_yahoo(tmp_path, [(1, 1, "x")], [(1, 2, 1)])
    with pytest.raises(DataError, match="line 1"):
        load_yahoo_r3(tmp_path)
