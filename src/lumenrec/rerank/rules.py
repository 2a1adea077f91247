"""Business rules as re-ranking stages: pin items at positions, exclude items, cap categories.

Rules take parameters, not a trade-off weight. Like every stage they see dense item indices
only: the pipeline maps external ids first (``IdIndex.index``). In a spec mapping they are
written as ``{"pin": {item: position}, "exclude": [items], "cap_per_category": 3}``
(see :func:`lumenrec.rerank.parse_rerank`); in a spec string only
``cap_per_category=<int>`` is accepted. Put :class:`Pin` last in a chain so no later stage
moves the pinned items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from lumenrec.errors import ConfigError
from lumenrec.rerank._util import assemble, check_k, unchanged
from lumenrec.rerank.base import Candidates, ItemFeatures, Reranked

__all__ = ["CapPerCategory", "Exclude", "Pin"]


def _index(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        msg = f"{what} must be a non-negative int (got {value!r})"
        raise ConfigError(msg)
    return int(value)


class Pin:
    """Put given items at given positions (0-based) of the list.

    Parameters
    ----------
    pins : mapping of int to int
        Dense item index -> position. Positions past the end of the list mean "last".
    force : bool, default False
        Insert a pinned item that is not among the candidates (its score is then the lowest
        candidate score). Otherwise such a pin is skipped and noted.
    """

    name = "pin"

    def __init__(self, pins: Mapping[int, int], force: bool = False) -> None:
        if not isinstance(pins, Mapping):
            msg = f"pin needs a mapping of item index -> position (got {type(pins).__name__})"
            raise ConfigError(msg)
        self.pins = {_index(i, "pinned item"): _index(p, "pin position") for i, p in pins.items()}
        positions = list(self.pins.values())
        if len(set(positions)) != len(positions):
            msg = f"two items pinned at the same position: {self.pins}"
            raise ConfigError(msg)
        self.force = bool(force)

    def __repr__(self) -> str:
        return f"Pin({self.pins}, force={self.force})"

    def rerank(self, candidates: Candidates, k: int, features: ItemFeatures) -> Reranked:
        """Move (or insert) the pinned items to their positions; others keep their order."""
        check_k(k)
        items = candidates.items.tolist()
        scores = candidates.scores.tolist()
        where = {item: pos for pos, item in enumerate(items)}
        floor = min(scores) if scores else 0.0
        notes = []
        pinned = []
        for item, position in sorted(self.pins.items(), key=lambda kv: kv[1]):
            if item in where:
                pinned.append((position, item, scores[where[item]]))
            elif self.force:
                if item >= features.n_items:
                    msg = f"pinned item {item} is not in the catalogue ({features.n_items} items)"
                    raise ConfigError(msg)
                pinned.append((position, item, floor))
            else:
                notes.append(f"pinned item {item} is not among the candidates: skipped")
        taken = {item for _, item, _ in pinned}
        rest = [(i, s) for i, s in zip(items, scores, strict=True) if i not in taken]
        for position, item, score in pinned:
            rest.insert(min(position, len(rest)), (item, score))
        out_items = np.array([i for i, _ in rest], dtype=np.int32)
        out_scores = np.array([s for _, s in rest], dtype=np.float32)
        return Reranked(out_items, out_scores, True, tuple(notes))


class Exclude:
    """Drop the given items from the list (the output is shorter than the input).

    Parameters
    ----------
    items : iterable of int
        Dense item indices never to recommend.
    """

    name = "exclude"

    def __init__(self, items: Iterable[int]) -> None:
        if isinstance(items, str | bytes | Mapping):
            msg = f"exclude needs a list of item indices (got {type(items).__name__})"
            raise ConfigError(msg)
        self.items = np.array(sorted({_index(i, "excluded item") for i in items}), dtype=np.int32)

    def __repr__(self) -> str:
        return f"Exclude({self.items.tolist()})"

    def rerank(self, candidates: Candidates, k: int, features: ItemFeatures) -> Reranked:
        """The candidates without the excluded items, order kept."""
        check_k(k)
        keep = ~np.isin(candidates.items, self.items)
        return Reranked(candidates.items[keep], candidates.scores[keep])


class CapPerCategory:
    """At most ``max_per_category`` items of any one category in the top ``k``.

    Candidates are taken in order; an item is deferred when one of its categories is full
    (items without a category are never deferred). If fewer than ``k`` items pass, the top
    ``k`` is filled with the best deferred ones, ``feasible`` is False and a note says so.

    Parameters
    ----------
    max_per_category : int >= 1
    """

    name = "cap_per_category"

    def __init__(self, max_per_category: int) -> None:
        if isinstance(max_per_category, float) and max_per_category.is_integer():
            max_per_category = int(max_per_category)
        self.max_per_category = _index(max_per_category, "cap_per_category")
        if self.max_per_category < 1:
            msg = f"cap_per_category must be >= 1 (got {max_per_category!r})"
            raise ConfigError(msg)

    def __repr__(self) -> str:
        return f"CapPerCategory({self.max_per_category})"

    def rerank(self, candidates: Candidates, k: int, features: ItemFeatures) -> Reranked:
        """Reorder so the top ``min(k, n)`` respect the cap where the candidates allow."""
        k = check_k(k)
        n = len(candidates)
        if features.categories is None:
            return unchanged(candidates, ("no item categories: order kept",))
        rows = features.categories[candidates.items]
        counts = np.zeros(rows.shape[1], dtype=np.int64)
        chosen: list[int] = []
        deferred: list[int] = []
        k_eff = min(k, n)
        for pos in range(n):
            if len(chosen) == k_eff:
                break
            cats = rows.indices[rows.indptr[pos] : rows.indptr[pos + 1]]
            if cats.size and (counts[cats] >= self.max_per_category).any():
                deferred.append(pos)
                continue
            counts[cats] += 1
            chosen.append(pos)
        if len(chosen) == k_eff:
            return assemble(candidates, chosen)
        missing = k_eff - len(chosen)
        chosen = sorted(chosen + deferred[:missing])
        note = (
            f"cap {self.max_per_category} per category not reachable: only "
            f"{k_eff - missing} of {n} candidates fit in the top {k_eff}; "
            f"{missing} over-cap items filled in"
        )
        return assemble(candidates, chosen, False, (note,))
