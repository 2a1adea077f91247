"""SERVICE.md 4.2 F2 (kill -9 during model save), F4 (bad publish under reads), S4 (traversal)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lumenrec.errors import ArtifactError


def _rewrite(version_dir: Path, name: str, blob: bytes) -> None:
    """Replace one file of an artifact and fix its manifest hash (passes the sha256 check)."""
    (version_dir / name).write_bytes(blob)
    manifest = json.loads((version_dir / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256(blob).hexdigest()
    (version_dir / "manifest.json").write_text(json.dumps(manifest))


def _bad_versions(model_dir: Path) -> dict[str, str]:
    """Copies of v1 broken in different ways: name -> expected words of the rejection."""
    import shutil

    import pandas as pd

    versions = model_dir / "versions"
    out = {}
    shutil.copytree(versions / "v1", versions / "v2")  # truncated arrays (hash mismatch)
    arrays = versions / "v2" / "model" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:100])
    out["v2"] = "sha256 mismatch"
    shutil.copytree(versions / "v1", versions / "v3")  # consistent hashes, wrong vocabulary
    frame = pd.read_parquet(versions / "v3" / "vocab-items.parquet").iloc[:-3]
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    _rewrite(versions / "v3", "vocab-items.parquet", buf.getvalue())
    out["v3"] = "incompatible"
    shutil.copytree(versions / "v1", versions / "v4")  # a manifest from the future
    manifest = json.loads((versions / "v4" / "manifest.json").read_text())
    manifest["format_version"] = 99
    (versions / "v4" / "manifest.json").write_text(json.dumps(manifest))
    out["v4"] = "newer version"
    (versions / "v5").mkdir()  # empty directory
    out["v5"] = "manifest.json not found"
    return out


def test_f4_bad_publish_keeps_old_model_with_zero_failed_reads(client, auth, model_dir, caplog):
    bad = _bad_versions(model_dir)
    failures: list[str] = []
    versions_seen: set[str] = set()
    stop = threading.Event()

    def reader(n: int) -> None:
        i = 0
        while not stop.is_set():
            r = client.get(f"/recommend/u{(i + n) % 40}?k=5")
            i += 1
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:100]}")
            else:
                versions_seen.add(r.json()["model_version"])

    readers = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for t in readers:
        t.start()
    try:
        with caplog.at_level(logging.ERROR, logger="lumenrec"):
            for version, reason in bad.items():
                r = client.post("/admin/reload", json={"version": version}, headers=auth)
                assert r.status_code == 409, r.text
                assert reason in r.json()["detail"] and "v1 keeps serving" in r.json()["detail"]
                ready = client.get("/health/ready")
                assert ready.status_code == 200 and ready.json()["model_version"] == "v1"
                assert ready.json()["last_reload_error"]["version"] == version
                time.sleep(0.05)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert failures == [] and versions_seen == {"v1"}
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    for version, reason in bad.items():
        assert any(f"version {version} rejected" in m and reason in m for m in logged), logged
    assert (model_dir / "current").read_text().strip() == "v1"


# -- S4: names that would leave the registry -----------------------------------------------
@pytest.mark.parametrize(
    "version", ["../../etc/passwd", "..", "a/b", "%2e%2e%2fx", "v1/../../x", "x" * 65, ""]
)
def test_s4_version_names_cannot_traverse(client, auth, version):
    r = client.post("/admin/reload", json={"version": version}, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "version"]
    assert "A-Z a-z 0-9" in r.json()["detail"][0]["msg"]


def test_s4_symlinked_version_and_pointer_are_refused(client, auth, model_dir, tmp_path):
    from lumenrec.serving import ModelRegistry

    outside = tmp_path / "elsewhere"
    import shutil

    shutil.copytree(model_dir / "versions" / "v1", outside)
    (model_dir / "versions" / "v7").symlink_to(outside, target_is_directory=True)
    r = client.post("/admin/reload", json={"version": "v7"}, headers=auth)
    assert r.status_code == 409 and "resolves outside the registry" in r.json()["detail"]
    assert client.get("/recommend/u1").json()["model_version"] == "v1"
    registry = ModelRegistry(model_dir)
    (model_dir / "current").unlink()
    (model_dir / "current").symlink_to(tmp_path / "pointer")
    (tmp_path / "pointer").write_text("v1\n")
    with pytest.raises(ArtifactError, match="current pointer is a link"):
        registry.current()
    (model_dir / "current").unlink()
    (model_dir / "current").write_text("../../etc\n")
    with pytest.raises(ArtifactError, match="current pointer is corrupt"):
        registry.current()


# -- F2: kill -9 while a model is being saved ----------------------------------------------
_SAVER = textwrap.dedent(
    """
    import sys
    from lumenrec.serving import ModelRegistry
    registry = ModelRegistry(sys.argv[1])
    pipeline = registry.load("v1")
    print("ready", flush=True)
    while True:
        registry.publish(pipeline)
    """
)


def _save_trials(model_dir: Path, tmp_path: Path, n_trials: int, seed: int) -> None:
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry

    rng = random.Random(seed)
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    for trial in range(n_trials):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(model_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
            time.sleep(rng.uniform(0.0, 0.6))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stdout.close()
        registry = ModelRegistry(model_dir)  # start-up: leftovers of the killed write go
        leftovers = [p.name for p in (model_dir / "versions").iterdir() if p.name.startswith(".")]
        assert leftovers == [], f"trial {trial}: {leftovers}"
        current = registry.current()
        assert current is not None
        RecommendPipeline.load(registry.path(current))  # the current one is complete
        for version in registry.versions():  # and so is every version that is listed at all
            RecommendPipeline.load(registry.path(version))
        for extra in registry.versions()[4:]:  # keep the registry small between trials
            if extra != current:
                import shutil

                shutil.rmtree(registry.path(extra))


def test_f2_kill_9_during_model_save_never_leaves_a_half_model(model_dir, tmp_path):
    _save_trials(model_dir, tmp_path, n_trials=4, seed=3)


@pytest.mark.slow
def test_f2_kill_9_during_model_save_50_trials(model_dir, tmp_path):
    _save_trials(model_dir, tmp_path, n_trials=50, seed=4)
