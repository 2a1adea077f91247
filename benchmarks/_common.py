"""Shared helpers for benchmark scripts: data dir, environment record, JSON output."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def data_dir(arg: str | None = None) -> Path:
    """--data-dir, else $LUMENREC_DATA_DIR, else ../shared/datasets beside the repo."""
    return Path(arg or os.environ.get("LUMENREC_DATA_DIR") or REPO.parent / "shared" / "datasets")


def sha256_files(paths: list[Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        h = hashlib.sha256(p.read_bytes()).hexdigest()
        out[p.name] = h
    return out


def hardware() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload.setdefault("created_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n")
    return path
