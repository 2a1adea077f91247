"""ContentRecommender: users and items meet in the language model's embedding space.

An item is the embedding of its catalogue text; a user is the recency- and rating-weighted
mean of the embeddings of the items they interacted with, optionally blended with the
embedding of their profile text. Works for items and users no CF model has seen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from lumenrec._params import Interval, Options
from lumenrec.encoders.base import l2_normalize
from lumenrec.errors import DataError
from lumenrec.models.base import BaseRecommender
from lumenrec.types import IndexArray, ScoreMatrix

if TYPE_CHECKING:
    import pandas as pd

    from lumenrec.data.dataset import Dataset
    from lumenrec.encoders.base import TextEncoder

__all__ = ["ContentRecommender", "recency_weights"]

log = logging.getLogger(__name__)


class ContentRecommender(BaseRecommender):
    """Text-embedding recommender: score(u, i) = cos(profile_u, embedding_i).

    Parameters
    ----------
    encoder : str
        Encoder spec for :func:`lumenrec.encoders.factory.make_encoder` (``"minilm"``,
        ``"minilm-fast"``, ``"hashing"``, ``"st:<name or path>"``).
    fields : list of str, optional
        Catalogue fields that make an item's text (default: the catalogue's text fields).
    half_life : float
        Recency decay in events: the k-th most recent item weighs ``0.5 ** (k / half_life)``.
        ``inf`` weighs the history evenly.
    use_ratings : bool
        Multiply weights by the rating (when the data has ratings).
    profile_weight : float in [0, 1]
        Share of the user vector taken from the profile text (attributes + recent titles);
        users without history use the profile alone.
    cache : str, optional
        Path of an embedding cache (SQLite) shared across models and runs.

    Attributes
    ----------
    item_embeddings_ : ndarray of shape (n_items, dim), float32, L2-normalised
    user_embeddings_ : ndarray of shape (n_users, dim), float32, L2-normalised (zero rows
        for users with neither history nor profile)
    history_weights_ : csr_matrix of shape (n_users, n_items), float32
        The recency (× rating) weight of each training event: a training user's vector is
        the normalised ``history_weights_[u] @ item_embeddings_`` (before any profile blend),
        which is what :meth:`explain_contributions` decomposes.

    Stability: stable.
    """

    _param_constraints = {
        "half_life": Interval(float, 0, None, low_open=True),
        "profile_weight": Interval(float, 0, 1),
        "use_ratings": Options({True, False}),
    }
    _fitted_arrays = ("item_embeddings_", "user_embeddings_", "history_weights_")

    def __init__(
        self,
        encoder: str = "minilm",
        *,
        fields: Sequence[str] | None = None,
        half_life: float = 20.0,
        use_ratings: bool = False,
        profile_weight: float = 0.0,
        cache: str | None = None,
    ) -> None:
        self.encoder = encoder
        self.fields = None if fields is None else list(fields)
        self.half_life = half_life
        self.use_ratings = use_ratings
        self.profile_weight = profile_weight
        self.cache = cache

    # -- fitting ---------------------------------------------------------------------------
    def make_encoder(self) -> TextEncoder:
        """The configured encoder (with the cache when one is set)."""
        from lumenrec.encoders.factory import make_encoder

        return make_encoder(self.encoder, cache=self.cache)

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        if data is None or data.catalog is None:
            msg = (
                "ContentRecommender needs item text: fit it on a Dataset with a catalogue "
                "(read it with items=... or use a built-in dataset with text)"
            )
            raise DataError(msg)
        from lumenrec.encoders.templates import UserProfileTemplate

        encoder = self.make_encoder()
        self.text_fields_ = self.fields or data.catalog.attrs.get("text_fields")
        texts = self.item_texts(data.catalog)
        self.item_embeddings_ = np.ascontiguousarray(encoder.encode(texts), dtype=np.float32)
        weights = recency_weights(data, self.half_life, use_ratings=self.use_ratings)
        self.history_weights_ = weights
        users = _weighted_profiles(weights, self.item_embeddings_)
        if self.profile_weight > 0:
            profiles = UserProfileTemplate().render(data)
            prof = encoder.encode(profiles)
            has_hist = np.asarray(weights.sum(axis=1)).ravel() > 0
            w = np.where(has_hist, self.profile_weight, 1.0)[:, None]
            users = l2_normalize((1 - w) * users + w * prof)
        self.user_embeddings_ = users
        self.encoder_fingerprint_ = encoder.fingerprint

    # -- scoring ---------------------------------------------------------------------------
    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        emb = self.item_embeddings_ if items is None else self.item_embeddings_[items]
        vectors = self.user_embeddings_[users]
        scores = vectors @ emb.T
        scores[~vectors.any(axis=1)] = np.nan  # neither history nor profile: cannot score
        return scores

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix:
        """Scores from histories alone; the row values weight the items (fold-in).

        Parameters
        ----------
        histories : sparse matrix of shape (n, n_items_), float
        items : array of int, optional

        Returns
        -------
        ndarray of shape (n, len(items) or n_items_), float32
        """
        profiles = _weighted_profiles(
            sp.csr_matrix(histories, dtype=np.float32), self.item_embeddings_
        )
        emb = self.item_embeddings_ if items is None else self.item_embeddings_[np.asarray(items)]
        return (profiles @ emb.T).astype(np.float32)

    def explain_contributions(self, history_row: Any, item: int) -> tuple[IndexArray, np.ndarray]:
        """Split the fold-in score of ``item`` into per-history-item terms (they sum to it).

        ``score = cos(Σ_j w_j e_j, e_item) = Σ_j w_j (e_j · e_item) / ‖Σ_j w_j e_j‖``: each
        history item's term is exact. For a training user pass ``history_weights_[u]``; the
        terms then sum to the served score unless a profile text was blended in
        (``profile_weight > 0``), whose share is the remainder.

        Parameters
        ----------
        history_row : sparse matrix of shape (1, n) or ndarray of shape (n,)
            Weights of the history items (n ≤ n_items_).
        item : int

        Returns
        -------
        history_items : ndarray of shape (h,), int32
            By descending contribution (ties: lower index first).
        contributions : ndarray of shape (h,), float64
        """
        cols, contrib = self.explain_many(history_row, np.asarray([item]))
        order = np.lexsort((cols, -contrib[0]))
        return cols[order], contrib[0][order]

    def explain_many(self, history_row: Any, items: Any) -> tuple[IndexArray, np.ndarray]:
        """:meth:`explain_contributions` for several items at once, in column order.

        Returns
        -------
        history_items : ndarray of shape (h,), int32
        contributions : ndarray of shape (m, h), float64
            Row ``j`` sums to the fold-in score of ``items[j]``.
        """
        from lumenrec._params import check_is_fitted

        check_is_fitted(self)
        row = sp.csr_matrix(history_row if sp.issparse(history_row) else np.atleast_2d(history_row))
        if row.shape[0] != 1 or row.shape[1] > self.item_embeddings_.shape[0]:
            msg = f"history_row must be one row of at most {self.n_items_} items (got {row.shape})"
            raise DataError(msg)
        it = self._check_indices(np.asarray(items), self.item_embeddings_.shape[0], "items")
        row.sum_duplicates()
        cols, w = row.indices.astype(np.int32), row.data.astype(np.float64)
        emb = self.item_embeddings_.astype(np.float64)
        norm = np.linalg.norm(w @ emb[cols]) if len(cols) else 0.0
        terms = w[:, None] * (emb[cols] @ emb[it].T) / max(norm, np.finfo(np.float32).tiny)
        return cols, terms.T

    def score_texts(self, texts: Sequence[str], items: IndexArray | None = None) -> ScoreMatrix:
        """Scores for users described only by text (cold users with a profile)."""
        vectors = self.make_encoder().encode(list(texts))
        emb = self.item_embeddings_ if items is None else self.item_embeddings_[np.asarray(items)]
        return (vectors @ emb.T).astype(np.float32)

    # -- cold items ------------------------------------------------------------------------
    def item_texts(self, catalog: pd.DataFrame) -> list[str]:
        """Render catalogue rows into the texts this model embeds (same template as fit)."""
        from lumenrec.encoders.templates import ItemTextTemplate

        fields = None if self.fields is None else tuple(self.fields)
        if fields is None and getattr(self, "text_fields_", None):
            fields = tuple(self.text_fields_)
        return ItemTextTemplate(fields=fields).render(catalog)

    def add_items(self, items: pd.DataFrame | Sequence[str]) -> IndexArray:
        """Embed new items; they are recommendable at once (no refit).

        Parameters
        ----------
        items : DataFrame or sequence of str
            Catalogue rows (rendered with the same fields/template as at fit time — the
            right choice), or ready-made texts used as they are.

        Returns
        -------
        ndarray of shape (n_new,), int32
            The new items' dense indices (appended after the existing ones).
        """
        import pandas as pd

        from lumenrec._params import check_is_fitted

        check_is_fitted(self)
        texts = self.item_texts(items) if isinstance(items, pd.DataFrame) else list(items)
        vectors = self.make_encoder().encode(texts)
        if vectors.shape[1] != self.item_embeddings_.shape[1]:
            msg = f"new item vectors have dim {vectors.shape[1]}, expected {self.item_embeddings_.shape[1]}"
            raise DataError(msg)
        self.item_embeddings_ = np.vstack([self.item_embeddings_, vectors]).astype(np.float32)
        w = self.history_weights_
        self.history_weights_ = sp.csr_matrix(
            (w.data, w.indices, w.indptr), shape=(w.shape[0], len(self.item_embeddings_))
        )
        return self._append_items(len(vectors))

    def _get_state(self) -> dict[str, Any]:
        fields = getattr(self, "text_fields_", None)
        return {
            "encoder_fingerprint_": getattr(self, "encoder_fingerprint_", None),
            "text_fields_": None if fields is None else list(fields),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.encoder_fingerprint_ = state.get("encoder_fingerprint_")
        self.text_fields_ = state.get("text_fields_")


def recency_weights(data: Dataset, half_life: float, *, use_ratings: bool = False) -> sp.csr_matrix:
    """Users × items weights: ``0.5 ** (age / half_life)`` (× rating), age 0 = most recent.

    Recency follows timestamps when present (ties keep event order), else event order.
    Repeated (user, item) events add up.

    Returns
    -------
    csr_matrix of shape (n_users, n_items), float32
    """
    n = data.n_events
    if data.timestamps is not None:
        order = np.lexsort((np.arange(n), data.timestamps, data.user_idx))
    else:
        order = np.lexsort((np.arange(n), data.user_idx))
    users = data.user_idx[order]
    counts = np.bincount(users, minlength=data.n_users)
    ends = np.cumsum(counts)[users]  # one past the user's last position
    age = ends - 1 - np.arange(n)
    w = np.power(0.5, age / half_life) if np.isfinite(half_life) else np.ones(n)
    if use_ratings and data.ratings is not None:
        w = w * data.ratings[order]
    mat = sp.csr_matrix(
        (w.astype(np.float32), (users, data.item_idx[order])), shape=(data.n_users, data.n_items)
    )
    mat.sum_duplicates()
    return mat


def _weighted_profiles(weights: sp.csr_matrix, item_embeddings: np.ndarray) -> np.ndarray:
    return l2_normalize(np.asarray(weights @ item_embeddings, dtype=np.float32))
