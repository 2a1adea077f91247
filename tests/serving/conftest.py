"""Serving fixtures: one published hybrid (EASE + hashing-text) registry per session, copied per test."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("httpx") is None:
    collect_ignore_glob = ["test_*.py"]  # the [serve] extra is not installed

WRITE_KEY = "write-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"


def make_hybrid() -> Any:
    from lumenrec.fusion.hybrid import HybridRecommender
    from lumenrec.models.content import ContentRecommender
    from lumenrec.models.ease import EASE

    return HybridRecommender(
        {"cf": EASE(regularization=10.0), "text": ContentRecommender(encoder="hashing")}
    )


@pytest.fixture(scope="session")
def published(tmp_path_factory, clusters) -> Path:
    """A registry with v1 = hybrid fitted on the session ``clusters`` data."""
    from lumenrec.pipeline import RecommendPipeline
    from lumenrec.serving import ModelRegistry

    root = tmp_path_factory.mktemp("registry") / "models"
    ModelRegistry(root).publish(RecommendPipeline.fit(make_hybrid(), clusters))
    return root


@pytest.fixture
def model_dir(tmp_path, published) -> Path:
    target = tmp_path / "models"
    shutil.copytree(published, target)
    return target


@pytest.fixture
def settings_for(tmp_path, model_dir) -> Callable[..., Any]:
    from lumenrec.serving import ServiceSettings

    def build(**overrides: Any) -> ServiceSettings:
        values = {
            "model_dir": model_dir,
            "db": tmp_path / "events.sqlite",
            "api_key": WRITE_KEY,
            "read_api_key": READ_KEY,
            "api_key_hash": None,
            "read_api_key_hash": None,
            "require_read_key": False,
            "rate_limit": 1000.0,
            "auto_insert_item": True,
            "reload_interval_s": 0.0,
        }
        values.update(overrides)
        return ServiceSettings(**values)

    return build


@pytest.fixture
def client_for(settings_for) -> Callable[..., contextlib.AbstractContextManager[Any]]:
    from fastapi.testclient import TestClient

    from lumenrec.serving import create_app

    @contextlib.contextmanager
    def open_client(**overrides: Any) -> Iterator[TestClient]:
        with TestClient(create_app(settings_for(**overrides))) as client:
            yield client

    return open_client


@pytest.fixture
def client(client_for) -> Iterator[Any]:
    with client_for() as c:
        yield c


@pytest.fixture
def keys() -> dict[str, str]:
    return {"write": WRITE_KEY, "read": READ_KEY}


@pytest.fixture
def hybrid_factory() -> Callable[[], Any]:
    return make_hybrid


@pytest.fixture
def auth() -> dict[str, str]:
    return {"X-API-Key": WRITE_KEY}


@pytest.fixture
def read_auth() -> dict[str, str]:
    return {"X-API-Key": READ_KEY}
