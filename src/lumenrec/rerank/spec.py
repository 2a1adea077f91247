"""Spec strings and mappings -> :class:`~lumenrec.rerank.base.RerankChain`.

Grammar (stages run in the order written)::

    "mmr=0.3,calibration=0.5,provider=0.2,popularity=0.3,fair=0.4,cap_per_category=3"
    {"mmr": 0.3, "cap_per_category": 3, "exclude": [12, 40], "pin": {7: 0}}

========================  ================================================  ===================
name                      value                                             stage
========================  ================================================  ===================
``mmr``                   λ in [0, 1]: weight on diversity                  :class:`MMR`
``calibration``           λ in [0, 1]: weight on genre calibration          :class:`Calibration`
``provider``              λ in [0, 1]: weight on provider exposure targets  :class:`ProviderExposure`
``popularity``            λ in [0, 1]: weight on popularity-bucket targets  :class:`PopularityExposure`
``fair``                  p in [0, 1): FA*IR target protected proportion    :class:`FAIR`
``cap_per_category``      int >= 1                                          :class:`CapPerCategory`
``exclude`` (mapping)     list of item indices                              :class:`Exclude`
``pin`` (mapping)         {item index: position}                            :class:`Pin`
========================  ================================================  ===================

Other constructor arguments come as keyword options named after the stage, e.g.
``parse_rerank("provider=0.5", provider={"max_share": 0.2, "min_share": 0.3})`` or
``parse_rerank("fair=0.4", fair={"alpha": 0.05, "protected": flags})``. Options for a stage
that is not in the spec are ignored (so one options dict can serve several specs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lumenrec.errors import ConfigError
from lumenrec.rerank._util import check_lambda
from lumenrec.rerank.base import RerankChain, Reranker
from lumenrec.rerank.calibration import Calibration
from lumenrec.rerank.fairness import FAIR, PopularityExposure, ProviderExposure
from lumenrec.rerank.mmr import MMR
from lumenrec.rerank.rules import CapPerCategory, Exclude, Pin

__all__ = ["STAGES", "parse_rerank"]


def _weighted(cls: Callable[..., Reranker], what: str) -> Callable[[Any, dict], Reranker]:
    def build(value: Any, opts: dict) -> Reranker:
        return cls(check_lambda(value, f"{what} (in spec)"), **opts)

    return build


#: Stage name -> builder(value, options).
STAGES: dict[str, Callable[[Any, dict], Reranker]] = {
    "mmr": _weighted(MMR, "mmr λ"),
    "calibration": _weighted(Calibration, "calibration λ"),
    "provider": _weighted(ProviderExposure, "provider λ"),
    "popularity": _weighted(PopularityExposure, "popularity λ"),
    "fair": _weighted(FAIR, "fair p"),
    "cap_per_category": lambda value, opts: CapPerCategory(value, **opts),
    "exclude": lambda value, opts: Exclude(value, **opts),
    "pin": lambda value, opts: Pin(value, **opts),
}
_STRING_ONLY_NUMBERS = ("exclude", "pin")


def _parse_string(spec: str) -> list[tuple[str, Any]]:
    parts = []
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not sep or not value:
            msg = f"rerank spec part {part!r} must look like name=value (e.g. 'mmr=0.3')"
            raise ConfigError(msg)
        if name in _STRING_ONLY_NUMBERS:
            msg = f"rerank stage {name!r} takes item lists: pass the spec as a mapping"
            raise ConfigError(msg)
        parsed: Any = value
        if name == "cap_per_category":
            if not value.isdigit():
                msg = f"cap_per_category must be a positive int (got {value!r} in {part!r})"
                raise ConfigError(msg)
            parsed = int(value)
        parts.append((name, parsed))
    return parts


def parse_rerank(
    spec: str | Mapping[str, Any] | None, **options: Mapping[str, Any]
) -> RerankChain | None:
    """Build a re-ranking chain from a spec string or mapping (see the module docstring).

    Parameters
    ----------
    spec : str, mapping or None
        ``"mmr=0.3,calibration=0.5"``, ``{"mmr": 0.3, "pin": {7: 0}}``; None or an empty
        spec gives None (no re-ranking).
    **options : mapping
        Extra constructor arguments per stage name.

    Returns
    -------
    RerankChain or None

    Raises
    ------
    ConfigError
        An unknown stage name (the message lists the known ones), a repeated stage, a λ that
        is not a number in [0, 1], or invalid stage options; the message names the part.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        parts = _parse_string(spec)
    elif isinstance(spec, Mapping):
        parts = [(str(name).strip().lower(), value) for name, value in spec.items()]
    else:
        msg = f"rerank spec must be a string, a mapping or None (got {type(spec).__name__})"
        raise ConfigError(msg)
    unknown_opts = sorted(set(options) - set(STAGES))
    if unknown_opts:
        msg = f"options for unknown rerank stage(s) {unknown_opts}; known: {sorted(STAGES)}"
        raise ConfigError(msg)
    stages: list[Reranker] = []
    seen: set[str] = set()
    for name, value in parts:
        if name not in STAGES:
            msg = f"unknown rerank stage {name!r} in {spec!r}; known: {sorted(STAGES)}"
            raise ConfigError(msg)
        if name in seen:
            msg = f"rerank stage {name!r} appears twice in {spec!r}"
            raise ConfigError(msg)
        seen.add(name)
        opts = options.get(name, {})
        if not isinstance(opts, Mapping):
            msg = f"options for rerank stage {name!r} must be a mapping (got {opts!r})"
            raise ConfigError(msg)
        try:
            stages.append(STAGES[name](value, dict(opts)))
        except TypeError as exc:
            msg = f"bad options for rerank stage {name!r}: {exc}"
            raise ConfigError(msg) from exc
    return RerankChain(stages) if stages else None
