"""Shared fixtures: seeded rng, tiny planted datasets (session scope, guarded against mutation)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lumenrec.data import block_clusters, checkerboard

SHARED_DATASETS = Path(
    os.environ.get(
        "LUMENREC_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The test models are tiny: intra-op threads only add synchronisation, and on a busy
    2-core CI machine spinning threads made a 40-epoch fit 20x slower. One thread for the
    session, restored afterwards."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture(scope="session")
def checker():
    return checkerboard(40)


@pytest.fixture(scope="session")
def clusters():
    return block_clusters(n_topics=4, n_users=120, n_items=80, random_state=0)


@pytest.fixture
def shared_datasets() -> Path:
    """Path to ../shared/datasets; skips the test when it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATASETS} (set LUMENREC_TEST_DATA)")
    return SHARED_DATASETS
