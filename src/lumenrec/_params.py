"""Estimator plumbing: parameter introspection, declarative validation and fitted checks."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from lumenrec.errors import ConfigError, NotFittedError

__all__ = ["Interval", "Options", "check_is_fitted", "clone", "get_params", "set_params"]


@dataclass(frozen=True)
class Interval:
    """A numeric constraint: ``kind`` is int or float; bounds are inclusive unless open."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, name: str, value: Any) -> None:
        is_bool = isinstance(value, bool)
        if self.kind is int:
            ok_type = isinstance(value, numbers.Integral) and not is_bool
        else:
            ok_type = isinstance(value, numbers.Real) and not is_bool
        if not ok_type:
            msg = f"{name} must be {self.describe()} (got {value!r})"
            raise ConfigError(msg)
        too_low = self.low is not None and (
            value <= self.low if self.low_open else value < self.low
        )
        too_high = self.high is not None and (
            value >= self.high if self.high_open else value > self.high
        )
        if too_low or too_high or value != value:  # NaN fails every comparison
            msg = f"{name} must be {self.describe()} (got {value!r})"
            raise ConfigError(msg)

    def describe(self) -> str:
        kind = "an int" if self.kind is int else "a number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high}")
        return kind + (" " + " and ".join(parts) if parts else "")


@dataclass(frozen=True)
class Options:
    """A choice constraint: the value must be one of ``values``."""

    values: Collection[Any]

    def check(self, name: str, value: Any) -> None:
        if value not in self.values:
            msg = f"{name} must be one of {sorted(map(str, self.values))} (got {value!r})"
            raise ConfigError(msg)


def _init_params(cls: type) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [
        p.name
        for p in sig.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def get_params(obj: Any) -> dict[str, Any]:
    """Constructor parameters of ``obj`` (read from attributes of the same name)."""
    return {name: getattr(obj, name) for name in _init_params(type(obj))}


def set_params(obj: Any, **params: Any) -> Any:
    """Set constructor parameters on ``obj``; unknown names raise ConfigError."""
    valid = _init_params(type(obj))
    for name, value in params.items():
        if name not in valid:
            msg = f"unknown parameter {name!r} for {type(obj).__name__}; valid: {valid}"
            raise ConfigError(msg)
        setattr(obj, name, value)
    return obj


def clone(obj: Any) -> Any:
    """A new unfitted object with the same parameters."""
    return type(obj)(**get_params(obj))


def validate_params(obj: Any, constraints: dict[str, Any]) -> None:
    """Check each parameter against its ``Interval``/``Options`` (or tuple of alternatives)."""
    for name, rule in constraints.items():
        value = getattr(obj, name)
        rules = rule if isinstance(rule, tuple) else (rule,)
        if value is None and None in rules:
            continue
        errors = []
        for r in rules:
            if r is None:
                continue
            try:
                r.check(name, value)
            except ConfigError as err:
                errors.append(err)
            else:
                errors = []
                break
        if errors:
            raise errors[0]


def check_is_fitted(obj: Any, attributes: Collection[str] = ("n_items_",)) -> None:
    """Raise NotFittedError unless every fitted attribute exists."""
    if not all(hasattr(obj, a) for a in attributes):
        msg = (
            f"this {type(obj).__name__} is not fitted yet; call fit(data) or "
            f"{type(obj).__name__}.load(path) first"
        )
        raise NotFittedError(msg)
