"""The catalogue part of :class:`~lumenrec.pipeline.RecommendPipeline`: adding new items
(embedded at once by models that can) or updating known ones, tombstoning deleted items,
listing them, and the training interactions a retrain starts from; plus
:func:`merge_catalog`, which aligns the item side information with a grown vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lumenrec.data.vocab import IdIndex
from lumenrec.errors import ConfigError

__all__ = ["CatalogChangesMixin", "merge_catalog"]


class CatalogChangesMixin:
    """Methods :class:`~lumenrec.pipeline.RecommendPipeline` gains for catalogue changes."""

    model: Any
    users: IdIndex
    items: IdIndex
    catalog: pd.DataFrame | None
    text_fields: list[str] | None
    ann: Any
    _lock: Any
    _deleted_items: set[int]
    _popularity: np.ndarray
    text_model: Any
    use_ann: Any
    _compact_ann: Any

    def add_items(self, frame: pd.DataFrame, texts: Sequence[str] | None = None) -> dict[str, list]:
        """Add new items (embedded at once via the model's ``add_items``) or update known ones.

        Parameters
        ----------
        frame : DataFrame
            Indexed by ``item_id``; catalogue columns (e.g. ``title``, ``description``).
        texts : sequence of str, optional
            Ready-made texts aligned to ``frame`` (used instead of rendering the columns).

        Returns
        -------
        dict
            ``{"added": [ids], "updated": [ids]}``. Updated items get their catalogue row
            replaced and are undeleted; their embedding is refreshed at the next retrain.
        """
        last = ~pd.Index([str(i) for i in frame.index]).duplicated(keep="last")
        frame = frame[last]  # an id given twice in one batch: the last row wins
        texts = None if texts is None else list(np.asarray(texts, object)[last])
        ids = [str(i) for i in frame.index]
        with self._lock.write():
            known = self.items.index(ids, missing="ignore")
            new_mask = known < 0
            updated = [i for i, k in zip(ids, known, strict=True) if k >= 0]
            for k in known[~new_mask]:
                self._deleted_items.discard(int(k))
            revived = [] if self.ann is None else self.ann.undelete(known[~new_mask])
            added = [i for i, m in zip(ids, new_mask, strict=True) if m]
            if added:
                if not hasattr(self.model, "add_items"):
                    msg = f"{type(self.model).__name__} cannot add items without a refit"
                    raise ConfigError(msg)
                sub = frame[new_mask].copy()
                text = self.text_model()
                needed = [*(self.text_fields or []), *(getattr(text, "fields", None) or [])]
                needed += getattr(text, "text_fields_", None) or []
                for col in dict.fromkeys(needed):  # fields a new item lacks render as missing
                    if col not in sub.columns:
                        sub[col] = None
                payload = list(np.asarray(texts, object)[new_mask]) if texts else sub
                new_index = self.model.add_items(payload)
                if self.ann is not None:  # the index grows with the model, same indices
                    from lumenrec.retrieval import factor_vectors

                    self.ann.add(factor_vectors(self.model)[np.asarray(new_index)])
                self.items = self.items.extend(added)
                self._popularity = np.concatenate(
                    [self._popularity, np.zeros(len(added), np.float32)]
                )
            self.catalog = merge_catalog(self.catalog, frame, self.items)
        if revived:  # compacted away earlier: rebuild the graph over the live items
            self.use_ann(**self.ann.params())
        return {"added": added, "updated": updated}

    def delete_items(self, item_ids: Sequence[str]) -> int:
        """Tombstone items: never recommended again (removed from the data at the next retrain)."""
        with self._lock.write():
            idx = {int(i) for i in self.items.index(list(item_ids), missing="ignore") if i >= 0}
            new = idx - self._deleted_items
            self._deleted_items |= idx
            if self.ann is not None:
                self.ann.delete(idx)
        if self.ann is not None and self.ann.needs_rebuild:
            self._compact_ann()
        return len(new)

    def deleted_items(self) -> list[str]:
        """External ids of tombstoned items."""
        return [str(x) for x in self.items.lookup(sorted(self._deleted_items))]

    def training_frame(self, drop_users: set[str] = frozenset()) -> pd.DataFrame:
        """The training interactions as ``user_id, item_id, rating`` (minus ``drop_users``)."""
        with self._lock.read():
            coo = self.model.seen_.tocoo()
            frame = pd.DataFrame(
                {
                    "user_id": self.users.lookup(coo.row),
                    "item_id": self.items.lookup(coo.col),
                    "rating": coo.data.astype(np.float32),
                }
            )
        return frame[~frame["user_id"].isin(drop_users)].reset_index(drop=True)


def merge_catalog(
    catalog: pd.DataFrame | None, frame: pd.DataFrame, items: IdIndex
) -> pd.DataFrame | None:
    rows = frame.copy()
    rows.index = pd.Index([str(i) for i in rows.index], name="item_id")
    if catalog is None:
        return None
    merged = catalog.reindex(pd.Index(items.ids, name="item_id"))
    for col in rows.columns:
        if col not in merged.columns:
            merged[col] = pd.Series(pd.NA, index=merged.index, dtype=object)
        merged[col] = merged[col].astype(object)
        merged.loc[rows.index, col] = rows[col].astype(object).to_numpy()
    merged.attrs = dict(catalog.attrs)
    return merged
