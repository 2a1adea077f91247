"""The similar-items part of :class:`~lumenrec.pipeline.RecommendPipeline`: items most like
a given item, from the model's item-item view (any component that supports
``similar_items``) or else from the text component's item embeddings, and the nearest
neighbours of items a user marked "not interested" (demoted in their lists)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lumenrec.errors import ConfigError, UnknownIdError
from lumenrec.models.base import SupportsSimilarItems

__all__ = ["SimilarItemsMixin"]


class SimilarItemsMixin:
    """Methods :class:`~lumenrec.pipeline.RecommendPipeline` gains for similar items."""

    model: Any
    items: Any
    n_items: int
    _lock: Any
    _deleted_items: set[int]
    _popularity: np.ndarray
    _rank: Any
    _listing: Any
    text_model: Any

    def _neighbours(self, item_ids: frozenset[str], excl: set[int], per_item: int = 10) -> set[int]:
        """Nearest neighbours of the disliked items (demoted, not removed)."""
        out: set[int] = set()
        for idx in self.items.index(sorted(item_ids)[-50:], missing="ignore"):
            if idx >= 0:
                out |= set(self._similar_indices(int(idx), per_item, excl | {int(idx)}))
        return out - excl

    def similar(self, item_id: str, k: int = 10) -> list[dict[str, Any]]:
        """Items most similar to ``item_id`` (the model's item-item view, else text embeddings).

        Raises
        ------
        UnknownIdError
            ``item_id`` is not in the vocabulary or was deleted.
        ConfigError
            The model has neither ``similar_items`` nor item embeddings.
        """
        with self._lock.read():
            idx = int(self.items.index([item_id], missing="ignore")[0])
            if idx < 0 or idx in self._deleted_items:
                msg = f"unknown item {item_id!r}"
                raise UnknownIdError(msg)
            excl = set(self._deleted_items) | {idx}
            items, scores, route = self._similar(idx, k, excl)
            return self._listing(items, scores, [route] * len(items))

    def _similar_indices(self, idx: int, k: int, excl: set[int]) -> np.ndarray:
        try:
            return self._similar(idx, k, excl)[0]
        except ConfigError:
            return np.empty(0, np.int32)

    def _similar(self, idx: int, k: int, excl: set[int]) -> tuple[np.ndarray, np.ndarray, str]:
        comps = getattr(self.model, "components", None) or {"model": self.model}
        warm = self._popularity[idx] > 0
        for comp in comps.values():
            if isinstance(comp, SupportsSimilarItems) and warm and idx < comp.n_items_:
                recs = comp.similar_items(np.array([idx], np.int32), k=k + len(excl))
                scores = np.full((1, self.n_items), -np.inf, np.float32)
                valid = recs.items[0] >= 0
                scores[0, recs.items[0][valid]] = recs.scores[0][valid]
                items, vals, _ = self._rank(scores, "cf", k, excl, None)
                return items, vals, "cf"
        text = self.text_model()
        emb = getattr(text, "item_embeddings_", None)
        if emb is None:
            msg = f"{type(self.model).__name__} cannot find similar items"
            raise ConfigError(msg)
        scores = np.full((1, self.n_items), np.nan, np.float32)
        scores[0, : emb.shape[0]] = emb @ emb[idx]
        items, vals, _ = self._rank(scores, "text", k, excl, None)
        return items, vals, "text"
