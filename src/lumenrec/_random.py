"""Seed handling: turn ``random_state`` into a numpy Generator."""

from __future__ import annotations

import numbers

import numpy as np

from lumenrec.errors import ConfigError
from lumenrec.types import Seed


def check_random_state(seed: Seed) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``seed``.

    Parameters
    ----------
    seed : int, Generator or None
        An int seeds a new PCG64 generator; a Generator is returned as is; None gives
        fresh OS entropy.
    """
    if seed is None or isinstance(seed, numbers.Integral):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    msg = f"random_state must be an int, a numpy Generator or None (got {type(seed).__name__})"
    raise ConfigError(msg)


def derive_seed(rng: np.random.Generator) -> int:
    """Draw a 31-bit integer seed from ``rng`` (for libraries that need an int seed)."""
    return int(rng.integers(0, 2**31 - 1))
