"""The Fuser protocol: combine named component score matrices into one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Fuser"]


@runtime_checkable
class Fuser(Protocol):
    """Combines ``{component: scores (n_users, n_items)}`` into one score matrix (NaN-aware)."""

    def fuse(self, scores: Mapping[str, NDArray[np.float32]]) -> NDArray[np.float32]: ...

    def to_config(self) -> dict: ...
