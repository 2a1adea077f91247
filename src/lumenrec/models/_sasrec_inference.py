"""Inference of :class:`~lumenrec.models.sasrec.SASRec` on new input: next-item query vectors
of padded item sequences (in length buckets, eval mode), the network rebuilt once from the
stored weights, scoring of new item-index sequences or sparse time-ordered histories (e.g.
users unseen at fit time), and placing new items from their text (text-unified model only).
These methods need torch; scoring the fitted users does not and stays in the model module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import check_is_fitted
from lumenrec.errors import ConfigError, DataError
from lumenrec.models._sequences import tail_matrix
from lumenrec.models._torch_train import arrays_to_module, import_torch
from lumenrec.types import IndexArray, ScoreMatrix

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SequenceInferenceMixin"]

_SCORE_BATCH = 1024


class SequenceInferenceMixin:
    """Methods :class:`~lumenrec.models.sasrec.SASRec` gains for new sequences and new items."""

    n_factors: int
    max_length: int
    text_encoder: str | None
    n_items_: int
    weights_: dict[str, NDArray]
    item_vectors_: NDArray[np.float32]
    text_embeddings_: NDArray[np.float32]
    item_has_id_: NDArray[np.bool_]
    _net_cache: tuple[Any, Any]
    _build_net: Any
    _text_model: Any
    _append_items: Any
    _check_indices: Any
    _dot_scores: Any

    def _query_vectors(
        self, net: Any, queries: NDArray[np.int64], device: Any
    ) -> NDArray[np.float32]:
        """Next-item queries (n, n_factors) of padded rows, in length buckets, eval mode."""
        torch = import_torch()
        out = np.zeros((len(queries), self.n_factors), np.float32)
        lengths = (queries != 0).sum(1)
        order = np.argsort(lengths, kind="stable")
        with torch.no_grad():
            for s in range(0, len(order), _SCORE_BATCH):
                rows = order[s : s + _SCORE_BATCH]
                width = max(int(lengths[rows].max()), 1)
                batch = torch.from_numpy(queries[rows, -width:]).to(device)
                out[rows] = net.last_hidden(batch).float().cpu().numpy()
        return out

    def _net(self) -> Any:
        """The network rebuilt from ``weights_`` (CPU) for new sequences; kept until
        ``weights_`` is replaced (fit, load, add_items), so a served fold-in does not rebuild it."""
        cached = self.__dict__.get("_net_cache")
        if cached is None or cached[0] is not self.weights_:
            net = arrays_to_module(self._build_net(self.n_items_), self.weights_).eval()
            cached = (self.weights_, net)
            self._net_cache = cached
        return cached[1]

    def score_sequences(
        self, sequences: Sequence[Sequence[int]], items: IndexArray | None = None
    ) -> ScoreMatrix:
        """Next-item scores for item-index sequences (oldest first), e.g. new users.

        Parameters
        ----------
        sequences : sequence of sequences of int
            Dense item indices; only the last ``max_length`` of each are used.
        items : array-like of shape (m,), int, optional

        Returns
        -------
        ndarray of shape (n, m or n_items_), float32
            Empty sequences score NaN (nothing to go on).
        """
        check_is_fitted(self)
        lists = [np.asarray(s, np.int64).reshape(-1) for s in sequences]
        flat = np.concatenate(lists) if lists else np.zeros(0, np.int64)
        self._check_indices(flat, self.n_items_, "sequences")
        indptr = np.concatenate([[0], np.cumsum([len(s) for s in lists])]).astype(np.int64)
        queries = tail_matrix(indptr, flat, indptr[1:], self.max_length)
        torch = import_torch()
        net = self._net()
        hidden = self._query_vectors(net, queries, torch.device("cpu"))
        scores = self._dot_scores(hidden, self.item_vectors_, items)
        scores[np.diff(indptr) == 0] = np.nan
        return scores

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix:
        """Scores from sparse histories: each row's items ordered by their stored values
        (ascending: timestamps or positions work; equal values keep column order).

        Parameters
        ----------
        histories : sparse matrix of shape (n, n_items_), float
        items : array-like of shape (m,), int, optional

        Returns
        -------
        ndarray of shape (n, m or n_items_), float32
        """
        hist = sp.csr_matrix(histories, dtype=np.float64)
        if hist.shape[1] != self.n_items_:
            msg = f"histories has {hist.shape[1]} columns but the model has {self.n_items_} items"
            raise DataError(msg)
        hist.sort_indices()
        sequences = []
        for r in range(hist.shape[0]):
            lo, hi = hist.indptr[r], hist.indptr[r + 1]
            order = np.argsort(hist.data[lo:hi], kind="stable")
            sequences.append(hist.indices[lo:hi][order])
        return self.score_sequences(sequences, items)

    # -- cold items ------------------------------------------------------------------------
    def add_items(self, items: pd.DataFrame | Sequence[str]) -> IndexArray:
        """Embed new items from text; they are recommendable at once (text-unified only).

        Returns
        -------
        ndarray of shape (n_new,), int32
            The new items' dense indices.
        """
        import pandas as pd

        check_is_fitted(self)
        if self.text_encoder is None:
            msg = "the id-only SASRec cannot place new items; fit SASRec(text_encoder='minilm') for that"
            raise ConfigError(msg)
        model = self._text_model()
        model.text_fields_ = getattr(self, "text_fields_", None)
        texts = model.item_texts(items) if isinstance(items, pd.DataFrame) else list(items)
        vectors = np.asarray(model.make_encoder().encode(texts), np.float32)
        if vectors.shape[1] != self.text_embeddings_.shape[1]:
            msg = f"new item vectors have dim {vectors.shape[1]}, expected {self.text_embeddings_.shape[1]}"
            raise DataError(msg)
        n_new = len(vectors)
        self.text_embeddings_ = np.vstack([self.text_embeddings_, vectors])
        self.item_has_id_ = np.concatenate([self.item_has_id_, np.zeros(n_new, bool)])
        ids = self.weights_["tower.ids.weight"]
        self.weights_ = {
            **self.weights_,
            "tower.ids.weight": np.vstack([ids, np.zeros((n_new, ids.shape[1]), np.float32)]),
        }
        new = self._append_items(n_new)
        torch = import_torch()
        net = self._net()
        with torch.no_grad():
            fresh = net.tower(torch.from_numpy(new.astype(np.int64) + 1)).numpy()
        self.item_vectors_ = np.vstack([self.item_vectors_, fresh]).astype(np.float32)
        return new
