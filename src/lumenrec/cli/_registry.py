"""The one explicit table of model names the CLI (and experiment configs) understand.

Modules are imported only when a model is built, so ``lumenrec --help`` stays fast and a
missing optional backend (torch for BPR) only matters when that model is asked for.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from lumenrec.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from lumenrec.models.base import Recommender

__all__ = ["MODELS", "ModelSpec", "check_model_names", "make_model", "model_class"]


class ModelSpec(NamedTuple):
    """Where a model lives and the parameters the CLI uses unless told otherwise."""

    module: str
    class_name: str
    defaults: Mapping[str, Any]
    summary: str
    extra: str | None = None


_NONE: Mapping[str, Any] = MappingProxyType({})

#: name → (module path, class name, default params, one-line summary, pip extra if optional).
MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "pop": ModelSpec("lumenrec.models.popularity", "MostPopular", _NONE, "most popular items"),
        "itemknn": ModelSpec(
            "lumenrec.models.itemknn", "ItemKNN", _NONE, "item-item k-nearest neighbours"
        ),
        "ease": ModelSpec("lumenrec.models.ease", "EASE", _NONE, "EASE closed-form item model"),
        "als": ModelSpec(
            "lumenrec.models.als", "ImplicitALS", _NONE, "implicit-feedback matrix factorisation"
        ),
        "bpr": ModelSpec("lumenrec.models.bpr", "BPR", _NONE, "BPR matrix factorisation", "torch"),
    }
)


def check_model_names(names: list[str]) -> list[str]:
    """Validate model names (case-insensitive); returns them lower-cased, in order, deduplicated.

    Raises
    ------
    ConfigError
        Empty list or an unknown name (the message lists the valid ones).
    """
    cleaned = list(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    if not cleaned:
        msg = f"no model given; choose from {', '.join(MODELS)}"
        raise ConfigError(msg)
    unknown = [n for n in cleaned if n not in MODELS]
    if unknown:
        label = "model" if len(unknown) == 1 else "models"
        msg = f"unknown {label} {', '.join(map(repr, unknown))}; valid: {', '.join(MODELS)}"
        raise ConfigError(msg)
    return cleaned


def model_class(name: str) -> type[Recommender]:
    """Import and return the class registered under ``name``."""
    (spec,) = (MODELS[n] for n in check_model_names([name]))
    try:
        module = importlib.import_module(spec.module)
    except ImportError as err:
        if spec.extra is None:
            raise
        msg = (
            f"model {name!r} needs {err.name or 'an optional package'}; "
            f"install it with: pip install 'lumenrec[{spec.extra}]'"
        )
        raise MissingDependencyError(msg) from err
    return getattr(module, spec.class_name)


def make_model(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """Build an unfitted model from its registry name and parameter overrides.

    Raises
    ------
    ConfigError
        Unknown model or parameter name (the message lists the valid parameters).
    """
    cls = model_class(name)
    spec = MODELS[name.strip().lower()]
    signature = {
        p.name: p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    valid = list(signature)
    merged = {**spec.defaults, **(params or {})}
    unknown = [p for p in merged if p not in valid]
    if unknown:
        msg = (
            f"unknown parameter {unknown[0]!r} for model {name!r} ({spec.class_name}); "
            f"valid: {', '.join(valid) if valid else '(none)'}"
        )
        raise ConfigError(msg)
    for key, value in merged.items():  # "300" parses as int; keep float parameters float
        default = signature[key].default
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            merged[key] = float(value)
    return cls(**merged)
