"""The one explicit table of model names the CLI (and experiment configs) understand.

Modules are imported only when a model is built, so ``lumenrec --help`` stays fast and a
missing optional backend (torch for BPR) only matters when that model is asked for.

Text models (``content``, ``adapter``, ``hybrid``) get an embedding cache unless their
``cache`` parameter is given (``cache=none`` turns it off): ``$LUMENREC_CACHE_DIR/
embeddings.sqlite``, else ``~/.lumenrec/cache/embeddings.sqlite`` (:func:`default_cache`),
so a catalogue is encoded once per machine, not once per run.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from lumenrec.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from lumenrec.fusion.hybrid import HybridRecommender
    from lumenrec.models.base import Recommender

__all__ = [
    "MODELS",
    "ModelSpec",
    "check_model_names",
    "default_cache",
    "make_model",
    "model_class",
    "text_hybrid",
]


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
        "multvae": ModelSpec(
            "lumenrec.models.multvae", "MultVAE", _NONE, "Mult-VAE autoencoder", "torch"
        ),
        "lightgcn": ModelSpec(
            "lumenrec.models.lightgcn", "LightGCN", _NONE, "LightGCN graph model", "torch"
        ),
        "sasrec": ModelSpec(
            "lumenrec.models.sasrec", "SASRec", _NONE, "SASRec next-item transformer", "torch"
        ),
        "sasrec-text": ModelSpec(
            "lumenrec.models.sasrec",
            "SASRec",
            MappingProxyType({"text_encoder": "minilm"}),
            "SASRec with item text fused in (all-MiniLM-L6-v2); cold items placed by text",
            "text",
        ),
        "content": ModelSpec(
            "lumenrec.models.content",
            "ContentRecommender",
            MappingProxyType({"encoder": "minilm", "half_life": 1.0}),
            "text-embedding kNN (all-MiniLM-L6-v2)",
            "text",
        ),
        "adapter": ModelSpec(
            "lumenrec.models.adapter",
            "TextAdapter",
            _NONE,
            "ALS + language-model adapter for cold items and users",
            "text",
        ),
        "hybrid": ModelSpec(
            "lumenrec.cli._registry",
            "text_hybrid",
            _NONE,
            "EASE fused with a text model; cold items and users routed to text",
            "text",
        ),
    }
)
#: Models whose ``cache`` parameter defaults to :func:`default_cache` when built here.
_CACHED = frozenset({"content", "adapter", "hybrid", "sasrec-text"})


def default_cache() -> str:
    """The CLI's embedding cache file: ``$LUMENREC_CACHE_DIR/embeddings.sqlite``, else
    ``~/.lumenrec/cache/embeddings.sqlite``."""
    folder = os.environ.get("LUMENREC_CACHE_DIR") or "~/.lumenrec/cache"
    return str(Path(folder).expanduser() / "embeddings.sqlite")


def text_hybrid(
    *,
    text: str = "content",
    encoder: str = "minilm",
    cache: str | None = None,
    half_life: float = 1.0,
    cf_regularization: float = 200.0,
    fusion: str = "weighted",
    text_weight: float = 0.8,
    normalize: str = "zscore",
    random_state: int | None = None,
) -> HybridRecommender:
    """``HybridRecommender({"cf": EASE, "text": ContentRecommender | TextAdapter})``.

    Parameters
    ----------
    text : {"content", "adapter"}
        The text component (it alone scores cold items and users).
    encoder, cache : str
        Its encoder spec and embedding cache.
    half_life : float
        The content component's recency half-life in events.
    cf_regularization : float
        EASE's ``regularization``.
    fusion, normalize : str
        As in :class:`~lumenrec.fusion.hybrid.HybridRecommender`.
    text_weight : float in [0, 1]
        Weight of the text component (``cf`` gets ``1 − text_weight``); unused when
        ``fusion="learned"``.
    random_state : int, optional
        Seeds the learned fusion and the adapter.
    """
    from lumenrec.fusion.hybrid import HybridRecommender
    from lumenrec.models.adapter import TextAdapter
    from lumenrec.models.content import ContentRecommender
    from lumenrec.models.ease import EASE

    if text not in ("content", "adapter"):
        msg = f"hybrid text must be 'content' or 'adapter' (got {text!r})"
        raise ConfigError(msg)
    if not 0.0 <= text_weight <= 1.0:
        msg = f"hybrid text_weight must lie in [0, 1] (got {text_weight!r})"
        raise ConfigError(msg)
    text_model: Recommender = (
        ContentRecommender(encoder, half_life=float(half_life), cache=cache)
        if text == "content"
        else TextAdapter(encoder, cache=cache, random_state=random_state)
    )
    weights = {"cf": 1.0 - text_weight, "text": float(text_weight)}
    return HybridRecommender(
        {"cf": EASE(regularization=float(cf_regularization)), "text": text_model},
        fusion=fusion,
        weights=None if fusion == "learned" else weights,
        normalize=normalize,
        random_state=random_state,
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


def model_class(name: str) -> Callable[..., Recommender]:
    """Import and return the class (or factory function) registered under ``name``."""
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
    key = name.strip().lower()
    spec = MODELS[key]
    signature = {
        p.name: p
        for p in inspect.signature(
            cls.__init__ if isinstance(cls, type) else cls
        ).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    valid = list(signature)
    merged = {**spec.defaults, **(params or {})}
    if key in _CACHED and "cache" not in merged:
        merged["cache"] = default_cache()
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
