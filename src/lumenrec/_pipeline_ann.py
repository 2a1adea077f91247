"""The retrieval part of :class:`~lumenrec.pipeline.RecommendPipeline`: switching between
exact ranking (every item scored) and an HNSW index built from the model's factor matrices
(:mod:`lumenrec.retrieval`), and rebuilding that index without its tombstones once enough
items were deleted."""

from __future__ import annotations

import logging
from typing import Any

from lumenrec.errors import ArtifactError

__all__ = ["AnnRetrievalMixin"]

log = logging.getLogger("lumenrec.pipeline")  # the name its records had before the split


class AnnRetrievalMixin:
    """Methods :class:`~lumenrec.pipeline.RecommendPipeline` gains for approximate retrieval."""

    model: Any
    ann: Any
    _lock: Any
    _deleted_items: set[int]

    @property
    def retrieval(self) -> str:
        """``"ann"`` when an HNSW index serves the model's lists, else ``"exact"``."""
        return "exact" if self.ann is None else "ann"

    def supports_ann(self) -> bool:
        """Whether the model exposes user/item factor matrices (ALS, BPR, ...)."""
        from lumenrec.retrieval import has_factors

        return has_factors(self.model)

    def use_ann(self, index: Any = None, **params: Any) -> Any:
        """Serve lists from an HNSW index (built from the model's factors unless given).

        Parameters
        ----------
        index : HNSWIndex, optional
            A ready index over this model's items (e.g. loaded with the artifact).
        **params
            :class:`~lumenrec.retrieval.HNSWIndex` settings for a new index.

        Returns
        -------
        HNSWIndex
            The index now serving; the pipeline's deleted items are tombstoned in it.

        Raises
        ------
        ConfigError
            The model has no factor matrices (use exact retrieval).
        """
        from lumenrec.retrieval import HNSWIndex, factor_vectors

        vectors = factor_vectors(self.model) if index is None else None
        if index is None:
            index = HNSWIndex(vectors, **params)
        if index.n_items != self.model.n_items_:
            msg = f"ANN index covers {index.n_items} items, the model {self.model.n_items_}"
            raise ArtifactError(msg)
        with self._lock.write():
            index.delete(self._deleted_items)
            self.ann = index
        return index

    def use_exact(self) -> None:
        """Serve lists by scoring every item (drop the ANN index)."""
        with self._lock.write():
            self.ann = None

    def _compact_ann(self) -> None:
        """Rebuild the HNSW graph without tombstones (reads go on meanwhile)."""
        with self._lock.read():
            index = self.ann
            if index is None or not index.needs_rebuild:
                return
        fresh = index.compacted()  # minutes for huge catalogues: outside the write lock
        with self._lock.write():
            if self.ann is index:
                fresh.delete(self._deleted_items)  # deletions made while it was building
                self.ann = fresh
        log.info("ANN index rebuilt without %d tombstones", len(index.tombstones))
