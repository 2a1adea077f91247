"""Explainer: one :class:`~lumenrec.explain.base.Reason` per recommended item.

The reason follows the route that ranked the item:

- ``cf`` (and any CF model's list): the history items that contribute most
  (:func:`~lumenrec.explain.attribution.history_attribution`), kind ``history``;
- ``text`` from a content model with the user's history: the history items whose text is
  nearest (exact decomposition of the content score), kind ``text``;
- ``text`` for a cold item or a user known only by profile text: the item's words and
  attributes nearest to the user in the language model's space, kind ``text``;
- ``popular``: the item's interaction count, kind ``popular``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lumenrec.explain.attribution import Attribution, contribution_matrix, history_attribution
from lumenrec.explain.base import Evidence, Reason, SentenceGenerator, TemplateSentences
from lumenrec.explain.text_match import item_phrases, nearest_phrases

__all__ = ["Explainer"]

_TEXT_MODELS = ("ContentRecommender",)


class Explainer:
    """Reasons for one model's lists, with titles from the catalogue.

    Parameters
    ----------
    model : fitted Recommender
    item_ids : sequence of str
        External id of each dense item index.
    catalog : DataFrame, optional
        Aligned to ``item_ids``; its ``title`` (or ``name``) column labels items.
    popularity : ndarray of shape (n_items,), optional
        Training interactions per item (for popularity reasons).
    text_model : Recommender, optional
        The component that embeds text (for text-match reasons).
    sentences : SentenceGenerator, optional
        Default :class:`TemplateSentences`.
    top : int
        Evidence entries kept per reason (1–3 is readable).
    max_occlusion : int
        History items occluded per request for models without an exact decomposition.
    """

    def __init__(
        self,
        model: Any,
        item_ids: Sequence[str],
        catalog: pd.DataFrame | None = None,
        *,
        popularity: np.ndarray | None = None,
        text_model: Any = None,
        sentences: SentenceGenerator | None = None,
        top: int = 3,
        max_occlusion: int = 64,
    ) -> None:
        self.model = model
        self.item_ids = list(map(str, item_ids))
        self.catalog = catalog
        self.popularity = popularity
        self.text_model = text_model
        self.sentences = sentences or TemplateSentences()
        self.top = top
        self.max_occlusion = max_occlusion
        self._encoder: Any = None
        self._encoder_lock = threading.Lock()
        title = None
        if catalog is not None:
            title = next((c for c in ("title", "name") if c in catalog.columns), None)
        self._titles = None if title is None else catalog[title].astype(str).tolist()

    # -- labels ----------------------------------------------------------------------------
    def label(self, item: int) -> str:
        """The item's title, else its external id."""
        titles = self._titles
        if titles is not None and 0 <= item < len(titles) and titles[item] not in ("", "nan"):
            return titles[item]
        return self.item_ids[item] if 0 <= item < len(self.item_ids) else str(item)

    # -- reasons ---------------------------------------------------------------------------
    def explain(
        self,
        items: Sequence[int],
        routes: Sequence[str],
        *,
        user: int | None = None,
        history: sp.csr_matrix | None = None,
        profile_text: str | None = None,
    ) -> list[Reason]:
        """A reason for each of ``items`` (dense indices, as listed).

        Parameters
        ----------
        items : sequence of int
        routes : sequence of str
            The route of each item (``cf``, ``text``, ``popular``).
        user : int, optional
            Training row of the user (exact models decompose the served score).
        history : sparse matrix of shape (1, n_items), optional
            The history the list was scored from, when it was folded in.
        profile_text : str, optional
            The profile text of a user known only by text (text-match reasons).
        """
        items = [int(i) for i in items]
        routes = [str(r) for r in routes]
        reasons: list[Reason | None] = [None] * len(items)
        has_history = history is not None and history.nnz > 0
        has_history = has_history or (user is not None and user >= 0)
        user = None if user is None or user < 0 else user
        hist_pos = [
            p
            for p, r in enumerate(routes)
            if has_history
            and (r == "cf" or (r == "text" and type(self.model).__name__ in _TEXT_MODELS))
        ]
        if hist_pos:
            chosen = np.array([items[p] for p in hist_pos], np.int32)
            found = contribution_matrix(self.model, chosen, history=history, user=user)
            if found is not None:  # exact models: every item's terms in one matrix
                self._exact_reasons(found, hist_pos, routes, reasons)
            else:
                attrs = history_attribution(
                    self.model,
                    chosen,
                    history=history,
                    user=user,
                    max_occlusion=self.max_occlusion,
                )
                for p, attr in zip(hist_pos, attrs, strict=True):
                    if attr.items.size:
                        kind = "text" if routes[p] == "text" else "history"
                        reasons[p] = self._history_reason(kind, routes[p], attr)
        for p, item in enumerate(items):
            if reasons[p] is None and routes[p] == "text":
                if has_history:
                    query = self._history_vector(history, user)
                else:
                    query = self._profile_vector(profile_text)
                reasons[p] = self._text_reason(item, query)
            if reasons[p] is None:
                reasons[p] = self._popular_reason(item, routes[p])
        return [self._with_sentence(r, items[p]) for p, r in enumerate(reasons)]  # type: ignore[arg-type]

    def _exact_reasons(
        self,
        found: tuple[str, np.ndarray, np.ndarray],
        positions: list[int],
        routes: list[str],
        reasons: list[Reason | None],
    ) -> None:
        """Reasons from a (items x history) contribution matrix, top terms taken at once."""
        method, cols, matrix = found
        if matrix.shape[1] == 0:
            return
        top = min(self.top, matrix.shape[1])
        # stable on -contribution: ties keep column order (lower item index first)
        order = np.argsort(-matrix, axis=1, kind="stable")[:, :top]
        positive = np.where(matrix > 0, matrix, 0.0).sum(axis=1)
        absolute = np.abs(matrix).sum(axis=1)
        total = np.where(positive > 0, positive, np.where(absolute > 0, absolute, 1.0))
        sums = matrix.sum(axis=1)
        n_ids = len(self.item_ids)
        for j, p in enumerate(positions):
            evidence = []
            for o in order[j]:
                c, value = int(cols[o]), float(matrix[j, o])
                item_id = self.item_ids[c] if c < n_ids else None
                evidence.append(Evidence("item", self.label(c), value, value / total[j], item_id))
            kind = "text" if routes[p] == "text" else "history"
            reasons[p] = Reason(kind, routes[p], method, tuple(evidence), "", float(sums[j]))

    def _history_reason(self, kind: str, route: str, attr: Attribution) -> Reason:
        positive = attr.contributions[attr.contributions > 0].sum()
        total = positive if positive > 0 else np.abs(attr.contributions).sum() or 1.0
        evidence = tuple(
            Evidence(
                "item",
                self.label(int(i)),
                float(c),
                float(c / total),
                self.item_ids[int(i)] if int(i) < len(self.item_ids) else None,
            )
            for i, c in zip(attr.items[: self.top], attr.contributions[: self.top], strict=True)
        )
        notes = (attr.note,) if attr.note else ()
        return Reason(kind, route, attr.method, evidence, "", attr.explained_score, notes)

    def _history_vector(self, history: sp.csr_matrix | None, user: int | None) -> np.ndarray | None:
        emb = getattr(self.text_model, "item_embeddings_", None)
        if emb is None:
            return None
        if history is not None and history.nnz:
            cols = history.indices[history.indices < len(emb)]
        elif user is not None:
            seen = self.model.seen_
            cols = seen.indices[seen.indptr[user] : seen.indptr[user + 1]]
        else:
            return None
        return emb[cols].mean(axis=0) if len(cols) else None

    def _profile_vector(self, text: str | None) -> np.ndarray | None:
        encoder = self._text_encoder() if text else None
        return None if encoder is None else np.asarray(encoder.encode([text]))[0]

    def _text_reason(self, item: int, query: np.ndarray | None) -> Reason | None:
        if query is None or self.text_model is None or self.catalog is None:
            return None
        encoder = self._text_encoder()
        if encoder is None or item >= len(self.catalog):
            return None
        phrases = item_phrases(self.catalog.iloc[item])
        best = nearest_phrases(encoder, phrases, query, top=self.top)
        if not best:
            return None
        positive = sum(s for _, s in best if s > 0) or 1.0
        evidence = tuple(Evidence("attribute", p, s, s / positive) for p, s in best)
        return Reason("text", "text", "text-match", evidence)

    def _text_encoder(self) -> Any:
        with self._encoder_lock:
            if self._encoder is None and hasattr(self.text_model, "make_encoder"):
                self._encoder = self.text_model.make_encoder()
            return self._encoder

    def _popular_reason(self, item: int, route: str) -> Reason:
        count = 0.0
        if self.popularity is not None and item < len(self.popularity):
            count = float(self.popularity[item])
        evidence = (Evidence("attribute", "interactions", count, 1.0),) if count > 0 else ()
        return Reason("popular", route, "popularity", evidence)

    def _with_sentence(self, reason: Reason, item: int) -> Reason:
        r = reason
        sentence = self.sentences(r, self.label(item))
        return Reason(r.kind, r.route, r.method, r.evidence, sentence, r.explained_score, r.notes)
