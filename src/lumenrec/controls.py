"""User controls: "not interested" in an item, a category or a brand, and personalisation off.

The next request honours them: a disliked item is gone, its nearest neighbours are demoted
(ranked after every other candidate), and items of a disliked category or brand are gone. A
user who turned personalisation off gets the non-personalised (popularity) list. The service
keeps the controls in its event store, so they survive a restart; the pipeline applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from lumenrec.errors import DataError

__all__ = ["CONTROL_KINDS", "UserControls", "control_exclusions"]

#: What a user can say "not interested" to.
CONTROL_KINDS = ("item", "category", "brand")


@dataclass(frozen=True, slots=True)
class UserControls:
    """A user's standing choices.

    Attributes
    ----------
    items, categories, brands : frozenset of str
        "Not interested" item ids, category names and brand names (case-insensitive for
        categories and brands).
    personalised : bool
        False: the user asked for non-personalised recommendations.
    """

    items: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    brands: frozenset[str] = frozenset()
    personalised: bool = True

    @property
    def empty(self) -> bool:
        """True when nothing changes the user's list."""
        return self.personalised and not (self.items or self.categories or self.brands)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> UserControls:
        """Build from stored ``(kind, value)`` rows (kind ``setting`` holds ``non-personalised``)."""
        found: dict[str, set[str]] = {"item": set(), "category": set(), "brand": set()}
        personalised = True
        for kind, value in rows:
            if kind == "setting" and value == "non-personalised":
                personalised = False
            elif kind in found:
                found[kind].add(value)
        return cls(
            frozenset(found["item"]),
            frozenset(found["category"]),
            frozenset(found["brand"]),
            personalised,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "not_interested": {
                "items": sorted(self.items),
                "categories": sorted(self.categories),
                "brands": sorted(self.brands),
            },
            "personalised": self.personalised,
        }


def control_exclusions(
    controls: UserControls,
    item_index: Callable[[list[str]], np.ndarray],
    features: object | None,
) -> set[int]:
    """Dense indices the user's controls remove: disliked items and every item of a disliked
    category or brand.

    Parameters
    ----------
    controls : UserControls
    item_index : callable
        Maps external item ids to dense indices (-1 for unknown ids).
    features : ItemFeatures, optional
        Category and provider (brand) membership; without it only items are removed.

    Raises
    ------
    DataError
        A category or brand was named but the catalogue has no such column.
    """
    out = {int(i) for i in item_index(sorted(controls.items)) if i >= 0}
    if controls.categories:
        names = [n.lower() for n in getattr(features, "category_names", ())]
        cats = getattr(features, "categories", None)
        wanted = [j for j, n in enumerate(names) if n in {c.lower() for c in controls.categories}]
        if cats is not None and wanted:
            hit = np.asarray(cats[:, wanted].sum(axis=1)).ravel() > 0
            out |= {int(i) for i in np.flatnonzero(hit)}
    if controls.brands:
        names = [n.lower() for n in getattr(features, "provider_names", ())]
        providers = getattr(features, "providers", None)
        codes = [j for j, n in enumerate(names) if n in {b.lower() for b in controls.brands}]
        if providers is not None and codes:
            out |= {int(i) for i in np.flatnonzero(np.isin(providers, codes))}
    return out


def check_control(kind: str, value: str) -> None:
    """Validate one "not interested" request (kind and a non-empty value)."""
    if kind not in CONTROL_KINDS:
        msg = f"not-interested kind must be one of {list(CONTROL_KINDS)} (got {kind!r})"
        raise DataError(msg)
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        msg = f"not-interested {kind} must be a non-empty string of at most 256 chars"
        raise DataError(msg)
