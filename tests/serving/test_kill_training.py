"""SERVICE.md 4.2 F3: kill -9 during training.

``lumenrec train --out DIR`` runs as a subprocess against a registry that already serves v1,
next to an event store. Once it logs that fitting has started it is killed with SIGKILL at a
random moment of the fit, the save or the publish. Afterwards: the event store is byte for byte
what it was (training never writes to it) and passes ``integrity_check``; the registry's
``current`` names a complete version (the previous one, unless the kill came after the pointer
moved); no leftover of the killed write is listed or loadable; and the next ``lumenrec train``
succeeds and publishes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from lumenrec.pipeline import RecommendPipeline
from lumenrec.serving import EventStore, ModelRegistry

N_USERS, N_ITEMS, N_EVENTS = 2000, 2000, 40_000


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    """Enough data that EASE takes about a second to fit and another to save."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, N_USERS, N_EVENTS),
            "item_id": rng.integers(0, N_ITEMS, N_EVENTS),
        }
    ).drop_duplicates()
    path = tmp_path_factory.mktemp("f3") / "ratings.csv"
    frame.to_csv(path, index=False)
    return path


def _store_digest(db: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(db.parent.glob(db.name + "*"))
    }


def _train_and_kill(ratings: Path, out: Path, delay: float, log: Path) -> int | None:
    """Start ``lumenrec train``; SIGKILL it ``delay`` s after fitting starts; its exit code."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "lumenrec", "train", "--dataset", str(ratings)]
    cmd += ["--model", "ease", "--out", str(out), "-v"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    fitting = threading.Event()
    lines: list[str] = []

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "fitting" in line:
                fitting.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not fitting.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"train never started fitting (rc {proc.poll()}): {''.join(lines)}")
        time.sleep(delay)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
        log.write_text("".join(lines))
    return proc.returncode


def _kill_trials(ratings: Path, tmp_path: Path, n_trials: int, seed: int) -> None:
    from lumenrec.cli.serve import serve_command
    from lumenrec.cli.train import train_command
    from lumenrec.data import read_interactions
    from lumenrec.models.ease import EASE

    rng = random.Random(seed)
    out = tmp_path / "models"

    ModelRegistry(out).publish(RecommendPipeline.fit(EASE(), read_interactions(ratings)))
    db = tmp_path / "store" / "events.sqlite"
    store = EventStore(db)
    store.add_events(
        [
            {"user_id": f"u{n % 7}", "item_id": f"{n}", "type": "click", "value": 1.0}
            | {"timestamp": 1_700_000_000 + n, "event_id": f"e{n}"}
            for n in range(50)
        ]
    )
    store.close()
    before = _store_digest(db)
    outcomes = []
    for trial in range(n_trials):
        previous = ModelRegistry(out).current()
        delay = rng.uniform(0.0, 2.0) if trial else 0.1  # the first one dies inside fit()
        code = _train_and_kill(ratings, out, delay, tmp_path / f"train-{trial}.log")
        outcomes.append(code)
        assert code in (-signal.SIGKILL, 0), (trial, code, (tmp_path / f"train-{trial}.log"))
        # the event store is untouched
        assert _store_digest(db) == before, f"trial {trial}: the event store changed"
        # the registry: leftovers go at start-up; current and every listed version load
        registry = ModelRegistry(out)
        hidden = [p.name for p in (out / "versions").iterdir() if p.name.startswith(".")]
        assert hidden == [], f"trial {trial}: leftovers {hidden}"
        current = registry.current()
        versions = registry.versions()
        if code == -signal.SIGKILL:
            newer = versions[versions.index(previous) + 1 :]
            assert current == previous or current in newer, (trial, previous, current)
        for version in versions:  # never a half version: whatever is listed is complete
            registry.load(version)
        assert registry.load().version == current
    assert outcomes.count(-signal.SIGKILL) >= max(1, n_trials - 1), outcomes
    check = EventStore(db)
    try:
        assert check.integrity_check() == "ok" and check.count_events() == 50
    finally:
        check.close()
    # the next training run succeeds and publishes
    runner = CliRunner()
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("serve")(serve_command)
    versions_before = ModelRegistry(out).versions()
    result = runner.invoke(
        app, ["train", "--dataset", str(ratings), "--model", "ease", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    published = json.loads(result.stdout)["version"]
    assert published not in versions_before
    assert ModelRegistry(out).current() == published
    assert ModelRegistry(out).load().version == published


def test_f3_kill_9_during_training_keeps_the_old_model(ratings, tmp_path):
    _kill_trials(ratings, tmp_path, n_trials=3, seed=5)


@pytest.mark.slow
def test_f3_kill_9_during_training_12_trials(ratings, tmp_path):
    _kill_trials(ratings, tmp_path, n_trials=12, seed=6)
