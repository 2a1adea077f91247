"""The curated public API: every name in ``__all__`` exists, and nothing private leaks."""

from __future__ import annotations

import importlib

import pytest

import lumenrec

PACKAGES = [
    "lumenrec",
    "lumenrec.data",
    "lumenrec.models",
    "lumenrec.encoders",
    "lumenrec.evaluation",
    "lumenrec.datasets",
    "lumenrec.errors",
    "lumenrec.types",
    "lumenrec.explain",
    "lumenrec.rerank",
    "lumenrec.explore",
    "lumenrec.privacy",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist_and_are_public(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"
        assert not attr.startswith("_") or attr == "__version__", attr


def test_version_and_error_tree():
    assert lumenrec.__version__
    assert issubclass(lumenrec.UnknownIdError, lumenrec.DataError)
    assert issubclass(lumenrec.UnknownIdError, KeyError)
    assert issubclass(lumenrec.NotFittedError, AttributeError)
    assert issubclass(lumenrec.DataError, ValueError)
