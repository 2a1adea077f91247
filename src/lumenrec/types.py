"""Array aliases and the Recommendations result type shared by every layer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = ["IndexArray", "PathLike", "Recommendations", "ScoreMatrix", "Seed"]

IndexArray: TypeAlias = NDArray[np.int32]
ScoreMatrix: TypeAlias = NDArray[np.float32]
Seed: TypeAlias = int | np.random.Generator | None
PathLike: TypeAlias = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Recommendations:
    """Top-k items for a batch of users (dense indices).

    Always 2-D; rows are sorted by descending score. ``items`` is -1 and ``scores`` is
    -inf where fewer than k items were available.

    Attributes
    ----------
    users : ndarray of shape (n_users,), int32
    items : ndarray of shape (n_users, k), int32
    scores : ndarray of shape (n_users, k), float32
    routes : ndarray of shape (n_users, k), object (str), optional
        Which path produced each item (hybrids: ``"cf"``, ``"text"``, ``"popular"``);
        None for single models.
    """

    users: IndexArray
    items: IndexArray
    scores: ScoreMatrix
    routes: NDArray[np.object_] | None = None

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def k(self) -> int:
        """The list length (number of columns)."""
        return int(self.items.shape[1])
