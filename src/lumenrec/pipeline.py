"""RecommendPipeline: the one place where external ids meet dense indices, for serving and the CLI.

It holds a fitted model, the user/item :class:`~lumenrec.data.vocab.IdIndex` maps and the item
catalogue; it answers for known users (the model), users known only by recent feedback (fold-in),
users known only by profile text (the text component) and everyone else (popularity).
Similar items, ANN retrieval and catalogue changes are methods it gains from the mixins in
:mod:`lumenrec._pipeline_similar`, :mod:`lumenrec._pipeline_ann` and
:mod:`lumenrec._pipeline_catalog`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lumenrec._pipeline_ann import AnnRetrievalMixin
from lumenrec._pipeline_catalog import CatalogChangesMixin
from lumenrec._pipeline_similar import SimilarItemsMixin
from lumenrec._post_rank import Explore, Picked, Ranked, finish_list, parse_chain
from lumenrec._rwlock import ReadWriteLock
from lumenrec.controls import UserControls, control_exclusions
from lumenrec.data.vocab import IdIndex
from lumenrec.errors import ArtifactError, DataError
from lumenrec.models._kernels.topk import topk
from lumenrec.models.base import SupportsFoldIn
from lumenrec.types import PathLike

__all__ = ["Explore", "Ranked", "RecommendPipeline", "UserControls"]


@dataclass(eq=False)
class RecommendPipeline(SimilarItemsMixin, AnnRetrievalMixin, CatalogChangesMixin):
    """A fitted model with its id maps and catalogue; external ids in, external ids out.

    Parameters
    ----------
    model : BaseRecommender
        Fitted on indices that ``users``/``items`` define.
    users, items : IdIndex
        Vocabularies of length ``model.n_users_`` / ``model.n_items_``.
    catalog : DataFrame, optional
        Item side information indexed by ``item_id``, aligned to ``items``.
    text_fields : list of str, optional
        Catalogue columns that make an item's text (for new items).
    events_watermark : int
        Event-store sequence number up to which events are in the training data; later
        events of a user are folded in at request time.
    trained_at : float
        Unix time of training; user deletions after it hide the user's training row.
    metadata : dict
        Free JSON (dataset name, fingerprint, model name) recorded in the manifest.

    Stability: experimental.
    """

    model: Any
    users: IdIndex
    items: IdIndex
    catalog: pd.DataFrame | None = None
    text_fields: list[str] | None = None
    events_watermark: int = 0
    trained_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    sentences: Any = None

    def __post_init__(self) -> None:
        self._lock = ReadWriteLock()
        self._deleted_items: set[int] = set()
        self.ann: Any = None  # an HNSWIndex when retrieval is approximate (see use_ann)
        seen = self.model.seen_
        self._popularity = np.bincount(seen.indices, minlength=self.model.n_items_).astype(
            np.float32
        )

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def fit(cls, model: Any, data: Any, **kwargs: Any) -> RecommendPipeline:
        """Fit ``model`` on a :class:`~lumenrec.data.dataset.Dataset` and wrap it."""
        model.fit(data)
        catalog = data.catalog
        fields = None if catalog is None else catalog.attrs.get("text_fields")
        kwargs.setdefault("text_fields", None if fields is None else list(fields))
        kwargs.setdefault("metadata", {"dataset": data.name, "fingerprint": data.fingerprint()})
        return cls(model, data.users, data.items, catalog, **kwargs)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def text_model(self) -> Any | None:
        """The component that scores texts (the model itself or a hybrid's text part)."""
        comps = getattr(self.model, "components", None)
        candidate = comps.get(self.model.text) if comps and self.model.text else self.model
        return candidate if hasattr(candidate, "score_texts") else None

    def can_fold_in(self) -> bool:
        """Whether users known only by a history can be scored without refit."""
        if not isinstance(self.model, SupportsFoldIn):
            return False
        comps = getattr(self.model, "components", None)
        return comps is None or any(isinstance(c, SupportsFoldIn) for c in comps.values())

    def live_item(self, item_id: str) -> bool:
        """True when ``item_id`` is in the vocabulary and not deleted."""
        idx = self.items.index([item_id], missing="ignore")[0]
        return idx >= 0 and int(idx) not in self._deleted_items

    # -- ranking ---------------------------------------------------------------------------
    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        exclude: Sequence[str] = (),
        history: Sequence[tuple[str, float]] | None = None,
        profile: str | None = None,
        forget: bool = False,
        rerank: Any = None,
        controls: UserControls | None = None,
        explain: bool = True,
        explore: Explore | None = None,
    ) -> Ranked:
        """Top-``k`` for one external user id, each item with its reason.

        Parameters
        ----------
        user_id : str
        k : int
            List length (fewer items come back when fewer remain).
        exclude : sequence of str
            Item ids never returned (unknown ids are ignored).
        history : sequence of (item_id, value), optional
            Feedback not in the training data, oldest first; folded in when the model can.
        profile : str, optional
            Profile text for users with neither training row nor usable history.
        forget : bool
            Ignore the user's training row (the user was deleted after training).
        rerank : str, mapping or RerankChain, optional
            Re-rankers applied to the top ``max(100, 3k)`` candidates, e.g.
            ``"mmr=0.3,calibration=0.5"`` (see :func:`lumenrec.rerank.parse_rerank`).
        controls : UserControls, optional
            The user's "not interested" choices and personalisation switch.
        explain : bool
            Attach a ``reason`` to every item.
        explore : Explore, optional
            An exploration policy that picks the ``k`` shown items from the top
            ``n_candidates`` (after re-ranking); each item then carries its ``propensity`` and
            whether it is ``exploratory``, and ``Ranked.served`` holds what to log.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            msg = f"k must be a positive int (got {k!r})"
            raise DataError(msg)
        chain = parse_chain(rerank)
        controls = controls or UserControls()
        with self._lock.read():
            u = -1 if forget else int(self.users.index([user_id], missing="ignore")[0])
            excl = {int(i) for i in self.items.index(list(exclude), missing="ignore") if i >= 0}
            excl |= self._deleted_items
            demote: set[int] = set()
            if not controls.empty:
                excl |= control_exclusions(controls, self._item_index, self.features())
                demote = self._neighbours(controls.items, excl)
            n = (k if chain is None else max(100, 3 * k)) + len(demote)
            if explore is not None:
                n = max(n, explore.n_candidates + len(demote))
            row = self._history_row(history or ())
            picked = self._candidates(u, n, excl, row, profile, controls.personalised)
            return finish_list(self, picked, k, demote, chain, explain, explore)

    def _candidates(
        self,
        u: int,
        n: int,
        excl: set[int],
        row: sp.csr_matrix,
        profile: str | None,
        personalised: bool,
    ) -> Picked:
        """The top ``n`` before demotion, re-ranking and reasons (read lock held)."""
        if not personalised:
            scores = self._popularity[None, :].copy()
            if u >= 0:
                seen = self.model.seen_
                excl = excl | {int(i) for i in seen.indices[seen.indptr[u] : seen.indptr[u + 1]]}
            return Picked(*self._rank(scores, "popular", n, excl, row), "popular", setting=True)
        if row.nnz and self.can_fold_in():
            if u >= 0:
                base = self.model.seen_[u]
                row = base.maximum(row) if base.nnz else row
            if self.ann is not None:
                from lumenrec.retrieval import history_query

                query = history_query(self.model, row)
                items, scores = self.ann.search(query, n, excl | {int(i) for i in row.indices})
                routes = np.full(len(items), self._default_route(), object)
                return Picked(items, scores, routes, None, True, u >= 0, history=row)
            scores, routes = self._fold_in(row)
            return Picked(
                *self._rank(scores, routes, n, excl, row), None, True, u >= 0, history=row
            )
        if u >= 0:  # (a history the model cannot fold in still counts as seen)
            excl |= {int(i) for i in row.indices}
            if self.ann is not None:
                from lumenrec.retrieval import user_query

                seen = self.model.seen_
                excl |= {int(i) for i in seen.indices[seen.indptr[u] : seen.indptr[u + 1]]}
                items, scores = self.ann.search(user_query(self.model, u), n, excl)
                routes = np.full(len(items), self._default_route(), object)
                return Picked(items, scores, routes, None, False, True, user=u)
            return Picked(*self._model_list(u, n, excl), None, False, True, user=u)
        text = self.text_model()
        if profile and text is not None:
            scores = np.full((1, self.n_items), np.nan, np.float32)
            s = text.score_texts([profile])
            scores[:, : s.shape[1]] = s
            return Picked(*self._rank(scores, "text", n, excl, row), "text", profile=profile)
        scores = self._popularity[None, :].copy()
        return Picked(*self._rank(scores, "popular", n, excl, row), "popular")

    def _item_index(self, ids: list[str]) -> np.ndarray:
        return self.items.index(ids, missing="ignore")

    def features(self) -> Any:
        """The catalogue features re-rankers and controls read (built once per catalogue)."""
        cached = self.__dict__.get("_features")
        if cached is not None and cached.n_items == self.n_items:
            return cached
        from lumenrec.rerank import ItemFeatures

        emb = getattr(self.text_model(), "item_embeddings_", None)
        if emb is not None and len(emb) != self.n_items:
            emb = None
        features = ItemFeatures.from_catalog(
            self.catalog, [str(i) for i in self.items.ids], self._popularity, embeddings=emb
        )
        self._features = features
        return features

    def explainer(self) -> Any:
        """The :class:`~lumenrec.explain.Explainer` of this pipeline (built once per catalogue)."""
        cached = self.__dict__.get("_explainer")
        if cached is not None and len(cached.item_ids) == self.n_items:
            return cached
        from lumenrec.explain import Explainer

        explainer = Explainer(
            self.model,
            [str(i) for i in self.items.ids],
            self.catalog,
            popularity=self._popularity,
            text_model=self.text_model(),
            sentences=self.sentences,
        )
        self._explainer = explainer
        return explainer

    def _history_row(self, history: Sequence[tuple[str, float]]) -> sp.csr_matrix:
        values: dict[int, float] = {}
        if history:
            ids = [item for item, _ in history]
            for idx, (_, value) in zip(
                self.items.index(ids, missing="ignore"), history, strict=True
            ):
                if idx >= 0:
                    values[int(idx)] = float(value)
        cols = np.fromiter(values, np.int32, len(values))
        data = np.fromiter(values.values(), np.float32, len(values))
        order = np.argsort(cols)  # canonical CSR built directly: no COO pass on every request
        indptr = np.array([0, len(cols)], np.int32)
        return sp.csr_matrix((data[order], cols[order], indptr), shape=(1, self.n_items))

    def _model_list(
        self, u: int, k: int, excl: set[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        exclude = np.fromiter(excl, np.int32, len(excl)) if excl else None
        recs = self.model.recommend(np.array([u], np.int32), k, exclude=exclude)
        keep = recs.items[0] >= 0
        routes = recs.routes[0][keep] if recs.routes is not None else None
        if routes is None:
            routes = np.full(int(keep.sum()), self._default_route(), object)
        return recs.items[0][keep], recs.scores[0][keep], routes

    def _listing(self, idx: np.ndarray, scores: np.ndarray, routes: Any) -> list[dict[str, Any]]:
        ids = self.items.lookup(idx)
        return [
            {"item_id": str(item), "score": float(score), "rank": rank, "route": str(route)}
            for rank, (item, score, route) in enumerate(zip(ids, scores, routes, strict=True), 1)
        ]

    def _default_route(self) -> str:
        name = type(self.model).__name__
        return {"ContentRecommender": "text", "MostPopular": "popular"}.get(name, "cf")

    def _fold_in(self, row: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray | str]:
        model = self.model
        scores = np.asarray(model.score_history(row), np.float32)
        routes = model.item_routes() if hasattr(model, "item_routes") else self._default_route()
        return scores, routes

    def _rank(
        self,
        scores: np.ndarray,
        routes: np.ndarray | str,
        k: int,
        excl: set[int],
        seen: sp.csr_matrix | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = np.array(scores, dtype=np.float32, copy=True).reshape(1, -1)
        s[~np.isfinite(s)] = -np.inf
        if excl:
            s[0, np.fromiter(excl, np.int64, len(excl))] = -np.inf
        if seen is not None and seen.nnz:
            s[0, seen.indices] = -np.inf
        pos, vals = topk(s, int(k))
        keep = pos[0] >= 0
        idx = pos[0][keep]
        labels = np.full(len(idx), routes, object) if isinstance(routes, str) else routes[idx]
        return idx, vals[0][keep], labels

    # -- validation and persistence ---------------------------------------------------------
    def check(self) -> None:
        """Reject an incompatible pipeline (sizes, catalogue alignment, embedding dimension).

        Raises
        ------
        ArtifactError
        """
        model, where = self.model, self.version or "pipeline"
        problems = []
        if model.n_users_ != self.n_users or model.n_items_ != self.n_items:
            problems.append(
                f"vocabularies hold {self.n_users} users x {self.n_items} items but the model "
                f"has {model.n_users_} x {model.n_items_}"
            )
        if self.catalog is not None and list(self.catalog.index) != list(self.items.ids):
            problems.append("catalog rows are not aligned with the item vocabulary")
        text = self.text_model()
        emb = getattr(text, "item_embeddings_", None)
        if emb is not None and hasattr(text, "make_encoder"):
            dim = text.make_encoder().dim
            if emb.shape[1] != dim:
                problems.append(f"item embeddings have dimension {emb.shape[1]}, encoder {dim}")
        if problems:
            msg = f"model {where} is incompatible: {'; '.join(problems)}"
            raise ArtifactError(msg)
        try:
            if self.n_users:
                model.recommend(np.array([0], np.int32), 1)
        except Exception as err:
            msg = f"model {where} is incompatible: a probe recommendation failed ({err})"
            raise ArtifactError(msg) from err

    def save(self, path: PathLike) -> None:
        """Write the pipeline as an artifact directory (``model/`` + parquet files + manifest)."""
        from lumenrec._pipeline_io import save_pipeline

        save_pipeline(self, path)

    @classmethod
    def load(cls, path: PathLike) -> RecommendPipeline:
        """Load and :meth:`check` a pipeline written by :meth:`save`."""
        from lumenrec._pipeline_io import load_pipeline

        return load_pipeline(cls, path)
