"""Artifacts: atomic writes, sha256 verification, allow-list, and no pickle ever."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from lumenrec import MostPopular
from lumenrec.errors import ArtifactError
from lumenrec.persistence import read_artifact, write_artifact


class _NotAllowed:
    pass


class _Boom:
    """Unpickling this creates a sentinel file (the S5 gate)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.fixture
def model(clusters):
    return MostPopular().fit(clusters)


def test_write_read_round_trip(tmp_path: Path):
    arrays = {
        "dense": np.arange(6, dtype=np.float32).reshape(2, 3),
        "sparse": sp.eye(3, format="csr"),
    }
    write_artifact(tmp_path / "a", cls=MostPopular, params={}, arrays=arrays, state={"x": 1})
    cls, params, loaded, manifest = read_artifact(tmp_path / "a")
    assert cls is MostPopular and params == {} and manifest["state"] == {"x": 1}
    np.testing.assert_array_equal(loaded["dense"], arrays["dense"])
    assert (loaded["sparse"] != arrays["sparse"]).nnz == 0
    assert set(manifest["files"]) == {"arrays.npz"}
    assert manifest["versions"]["lumenrec"]


def test_class_outside_allow_list_is_refused(tmp_path: Path, model):
    with pytest.raises(ArtifactError, match="ALLOWED_CLASSES"):
        write_artifact(tmp_path / "x", cls=_NotAllowed, params={}, arrays={})
    model.save(tmp_path / "m")
    man = tmp_path / "m" / "manifest.json"
    meta = json.loads(man.read_text())
    meta["class"] = "os.system"
    man.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="not allowed to load"):
        MostPopular.load(tmp_path / "m")


def test_malicious_pickle_is_never_unpickled(tmp_path: Path, model):
    model.save(tmp_path / "m")
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps(_Boom(str(sentinel)))
    np.savez(tmp_path / "m" / "arrays.npz", evil=np.array([payload], dtype=object))
    npz_path = tmp_path / "m" / "arrays.npz"
    # even with a matching checksum the object array is refused
    meta = json.loads((tmp_path / "m" / "manifest.json").read_text())
    import hashlib

    meta["files"]["arrays.npz"] = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="without pickle"):
        MostPopular.load(tmp_path / "m")
    assert not sentinel.exists()


def test_overwrite_is_atomic_and_leaves_no_temp(tmp_path: Path, model):
    model.save(tmp_path / "m")
    model.save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_missing_and_corrupt_manifest(tmp_path: Path, model):
    with pytest.raises(ArtifactError, match="manifest.json not found"):
        MostPopular.load(tmp_path / "nothing")
    model.save(tmp_path / "m")
    (tmp_path / "m" / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        MostPopular.load(tmp_path / "m")


def test_failed_write_keeps_previous_artifact(tmp_path: Path, model, monkeypatch):
    model.save(tmp_path / "m")
    before = (tmp_path / "m" / "manifest.json").read_text()

    def boom(*args, **kwargs):
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr("lumenrec.persistence.os.fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "m")
    assert (tmp_path / "m" / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    MostPopular.load(tmp_path / "m")
