"""The Recommender protocol and BaseRecommender, which writes fit/score/recommend/save once.

A model subclasses :class:`BaseRecommender`, declares ``_param_constraints`` and
``_fitted_arrays``, and implements ``_fit`` and ``_score_block``. Everything else —
validation, seen-item filtering, candidates/exclusions, top-k with padding, batching,
persistence, parameter introspection — lives here.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from lumenrec._params import check_is_fitted, clone, get_params, set_params, validate_params
from lumenrec._random import check_random_state
from lumenrec.errors import ArtifactError, ConfigError, DataError, FitError
from lumenrec.models._kernels.topk import topk
from lumenrec.persistence import read_artifact, write_artifact
from lumenrec.types import IndexArray, PathLike, Recommendations, ScoreMatrix

if TYPE_CHECKING:
    from lumenrec.data.dataset import Dataset

__all__ = [
    "BaseRecommender",
    "Recommender",
    "SupportsFoldIn",
    "SupportsSimilarItems",
    "as_positives",
    "as_user_items",
]

log = logging.getLogger(__name__)


@runtime_checkable
class Recommender(Protocol):
    """Learns from a Dataset and ranks items for users (dense indices only)."""

    def fit(self, data: Dataset | sp.spmatrix) -> Self: ...

    def score(self, users: IndexArray, items: IndexArray | None = None) -> ScoreMatrix: ...

    def recommend(
        self,
        users: IndexArray,
        k: int = 10,
        *,
        filter_seen: bool = True,
        candidates: IndexArray | None = None,
        exclude: IndexArray | None = None,
    ) -> Recommendations: ...

    def save(self, path: PathLike) -> None: ...


@runtime_checkable
class SupportsFoldIn(Protocol):
    """Scores users from an interaction history alone (new or updated users, no refit)."""

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix: ...


@runtime_checkable
class SupportsSimilarItems(Protocol):
    def similar_items(self, items: IndexArray, k: int = 10) -> Recommendations: ...


def as_user_items(data: Dataset | sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    """The users × items CSR (float32, sorted indices) of a Dataset or matrix, validated."""
    from lumenrec.data.dataset import Dataset

    if isinstance(data, Dataset):
        mat = data.matrix
    elif sp.issparse(data) or isinstance(data, np.ndarray):
        mat = sp.csr_matrix(data, dtype=np.float32)
        mat.sort_indices()
    else:
        msg = f"fit expects a Dataset or a users x items sparse matrix (got {type(data).__name__})"
        raise DataError(msg)
    if mat.ndim != 2 or mat.shape[0] == 0 or mat.shape[1] == 0 or mat.nnz == 0:
        msg = f"user_items must be a non-empty 2-D matrix (got shape {mat.shape} with {mat.nnz} entries)"
        raise DataError(msg)
    if not np.isfinite(mat.data).all():
        msg = "user_items contains NaN or inf values"
        raise DataError(msg)
    return mat


def as_positives(matrix: sp.spmatrix) -> sp.csr_matrix:
    """A binary float32 CSR copy (stored value > 0 = interaction), zeros dropped, indices sorted.

    The implicit-feedback input of BPR, MultVAE and LightGCN (fit and fold-in alike).
    """
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data = (out.data > 0).astype(np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out


def _row_entries(matrix: sp.csr_matrix, rows: IndexArray) -> tuple[IndexArray, IndexArray]:
    """``(position in rows, column)`` of every stored entry of ``matrix[rows]``, without
    building the sub-matrix (scipy's row indexing was the largest Python cost of a served
    request in a profile of ``Service.recommend``)."""
    starts = matrix.indptr[rows].astype(np.int64)
    counts = matrix.indptr[np.asarray(rows) + 1].astype(np.int64) - starts
    r = np.repeat(np.arange(len(rows)), counts)
    offsets = np.cumsum(counts) - counts
    pos = np.arange(int(counts.sum())) - np.repeat(offsets - starts, counts)
    return r, matrix.indices[pos].astype(np.int64)


class BaseRecommender:
    """Template for every LumenRec model (see module docstring).

    Subclasses set:

    ``_param_constraints``
        ``{name: Interval | Options | tuple of them}`` checked at the start of ``fit``.
    ``_fitted_arrays``
        Names of fitted array attributes (dense or sparse) saved by :meth:`save`.
    """

    _param_constraints: ClassVar[dict[str, Any]] = {}
    _fitted_arrays: ClassVar[tuple[str, ...]] = ()
    _block_size: ClassVar[int] = 2048

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, data: Dataset | sp.spmatrix) -> Self:
        """Fit from scratch.

        Parameters
        ----------
        data : Dataset or sparse matrix of shape (n_users, n_items)
            Training interactions; a Dataset also gives models its catalogue.

        Returns
        -------
        self
        """
        validate_params(self, self._param_constraints)
        user_items = as_user_items(data)
        for name in [*self._fitted_arrays, "seen_", "n_users_", "n_items_", "fit_time_"]:
            self.__dict__.pop(name, None)
        rng = check_random_state(getattr(self, "random_state", None))
        start = time.perf_counter()
        log.info("fitting %s on %d users x %d items", type(self).__name__, *user_items.shape)
        from lumenrec.data.dataset import Dataset

        self._fit(user_items, rng, data if isinstance(data, Dataset) else None)
        self.n_users_, self.n_items_ = user_items.shape
        self.seen_ = user_items
        self._check_finite()
        self.fit_time_ = time.perf_counter() - start
        log.info("fitted %s in %.2fs", type(self).__name__, self.fit_time_)
        return self

    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        raise NotImplementedError

    def _check_finite(self) -> None:
        for name in self._fitted_arrays:
            value = getattr(self, name, None)
            arr = value.data if sp.issparse(value) else value
            if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                msg = (
                    f"{type(self).__name__} produced non-finite values in {name}; "
                    "try a smaller learning_rate or a larger regularization"
                )
                raise FitError(msg)

    # -- scoring ---------------------------------------------------------------------------
    def score(self, users: IndexArray, items: IndexArray | None = None) -> ScoreMatrix:
        """Scores for ``users`` × ``items``.

        Parameters
        ----------
        users : array-like of shape (n,), int
            Dense user indices in [0, n_users_).
        items : array-like of shape (m,), int, optional
            Dense item indices; all items when omitted.

        Returns
        -------
        ndarray of shape (n, m or n_items_), float32
            NaN where the model cannot score a pair.
        """
        check_is_fitted(self)
        u = self._check_indices(users, self.n_users_, "users")
        it = None if items is None else self._check_indices(items, self.n_items_, "items")
        blocks = [
            self._score_block(u[s : s + self._block_size], it)
            for s in range(0, len(u), self._block_size)
        ]
        width = self.n_items_ if it is None else len(it)
        if not blocks:
            return np.empty((0, width), np.float32)
        return np.ascontiguousarray(np.vstack(blocks), dtype=np.float32)

    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        raise NotImplementedError

    def recommend(
        self,
        users: IndexArray,
        k: int = 10,
        *,
        filter_seen: bool = True,
        candidates: IndexArray | None = None,
        exclude: IndexArray | None = None,
    ) -> Recommendations:
        """Top-``k`` items per user among ``candidates``, minus seen and excluded items.

        Parameters
        ----------
        users : array-like of shape (n,), int
        k : int
            List length; rows are padded with item -1 / score -inf when fewer items remain.
        filter_seen : bool
            Drop the user's training items.
        candidates : array-like of shape (m,), int, optional
            Restrict ranking to these items.
        exclude : array-like, int, optional
            Items never returned.

        Returns
        -------
        Recommendations
        """
        check_is_fitted(self)
        u = self._check_indices(users, self.n_users_, "users")
        seen = self.seen_ if filter_seen else None
        return self._rank(
            lambda rows, it: self._score_block(u[rows], it), u, k, seen, candidates, exclude
        )

    def _rank(
        self,
        score_rows: Any,
        users: IndexArray,
        k: int,
        seen: sp.csr_matrix | None,
        candidates: IndexArray | None,
        exclude: IndexArray | None,
        seen_rows: IndexArray | None = None,
    ) -> Recommendations:
        """Shared top-k path: ``score_rows(row_slice, items) -> scores`` for row blocks.

        ``seen`` rows are taken at ``seen_rows`` (default: ``users``).
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            msg = f"k must be a positive int (got {k!r})"
            raise DataError(msg)
        cand = (
            None
            if candidates is None
            else self._check_indices(candidates, self.n_items_, "candidates")
        )
        excl = None if exclude is None else self._check_indices(exclude, self.n_items_, "exclude")
        seen_rows = users if seen_rows is None else seen_rows
        n = len(users)
        out_items = np.empty((n, k), np.int32)
        out_scores = np.empty((n, k), np.float32)
        col_of = None
        if cand is not None:
            col_of = np.full(self.n_items_, -1, np.int64)
            col_of[cand] = np.arange(len(cand))
        for start in range(0, n, self._block_size):
            rows = slice(start, min(start + self._block_size, n))
            scores = np.array(score_rows(rows, cand), dtype=np.float32, copy=True)
            scores[np.isnan(scores)] = -np.inf
            if seen is not None:
                r, c = _row_entries(seen, seen_rows[rows])
                if col_of is not None:
                    c = col_of[c]
                    r, c = r[c >= 0], c[c >= 0]
                scores[r, c] = -np.inf
            if excl is not None:
                cols = excl if col_of is None else col_of[excl]
                scores[:, cols[cols >= 0]] = -np.inf
            pos, vals = topk(scores, int(k))
            items = pos if cand is None else np.where(pos >= 0, cand[np.maximum(pos, 0)], -1)
            out_items[rows] = items
            out_scores[rows] = vals
        return Recommendations(users=users.astype(np.int32), items=out_items, scores=out_scores)

    def recommend_history(
        self,
        histories: sp.spmatrix,
        k: int = 10,
        *,
        filter_seen: bool = True,
        candidates: IndexArray | None = None,
        exclude: IndexArray | None = None,
    ) -> Recommendations:
        """Top-``k`` for users given only their histories (fold-in; no refit).

        Parameters
        ----------
        histories : sparse matrix of shape (n, n_items_), float
            One row per (new or updated) user. Needs a model with ``score_history``.

        Returns
        -------
        Recommendations
            ``users`` holds row positions 0..n-1 of ``histories``.
        """
        check_is_fitted(self)
        if not isinstance(self, SupportsFoldIn):
            msg = f"{type(self).__name__} cannot score unseen histories (no score_history)"
            raise ConfigError(msg)
        hist = sp.csr_matrix(histories, dtype=np.float32)
        if hist.shape[1] != self.n_items_:
            msg = f"histories has {hist.shape[1]} columns but the model has {self.n_items_} items"
            raise DataError(msg)
        rows_idx = np.arange(hist.shape[0], dtype=np.int32)
        return self._rank(
            lambda rows, it: self.score_history(hist[rows], it),
            rows_idx,
            k,
            hist if filter_seen else None,
            candidates,
            exclude,
        )

    def _append_items(self, n_new: int) -> IndexArray:
        """Grow the catalogue by ``n_new`` items (no interactions yet); return their indices.

        Used by models that can score items from text alone (``add_items``): ``seen_`` gains
        empty columns and ``n_items_`` grows; the model appends its own item vectors.
        """
        start = self.n_items_
        self.n_items_ = start + int(n_new)
        self.seen_ = sp.csr_matrix(
            (self.seen_.data, self.seen_.indices, self.seen_.indptr),
            shape=(self.n_users_, self.n_items_),
        )
        return np.arange(start, self.n_items_, dtype=np.int32)

    def _dot_scores(
        self,
        queries: Any,
        item_vectors: Any,
        items: IndexArray | None,
        bias: Any = None,
    ) -> ScoreMatrix:
        """``queries @ item_vectors[items].T (+ bias[items])``, float32; all items when None.

        The shared last step of ``score_history`` for factor models (``items`` validated).
        """
        it = None if items is None else self._check_indices(items, self.n_items_, "items")
        vectors = item_vectors if it is None else item_vectors[it]
        out = queries @ vectors.T
        if bias is not None:
            out = out + (bias if it is None else bias[it])
        return np.ascontiguousarray(out, dtype=np.float32)

    @staticmethod
    def _check_indices(values: Any, bound: int, name: str) -> IndexArray:
        arr = np.asarray(values)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            msg = f"{name} must be a 1-D array of int indices (got dtype {arr.dtype}, shape {arr.shape})"
            raise DataError(msg)
        if arr.size and (arr.min() < 0 or arr.max() >= bound):
            msg = f"{name} must lie in [0, {bound}) (got min {arr.min()}, max {arr.max()})"
            raise DataError(msg)
        return arr.astype(np.int32, copy=False)

    # -- persistence -----------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        """Extra JSON state beyond params and arrays (override when needed)."""
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_get_state` returned."""

    def _get_files(self) -> dict[str, bytes]:
        """Extra artifact files beyond ``arrays.npz`` (e.g. ``weights.safetensors``)."""
        return {}

    def _set_files(self, files: dict[str, bytes]) -> None:
        """Restore what :meth:`_get_files` returned (files verified by sha256)."""

    def save(self, path: PathLike) -> None:
        """Write an artifact directory (manifest.json + arrays.npz); no pickle."""
        check_is_fitted(self)
        arrays = {name: getattr(self, name) for name in self._fitted_arrays}
        arrays["seen_"] = self.seen_
        state = {
            "n_users_": int(self.n_users_),
            "n_items_": int(self.n_items_),
            **self._get_state(),
        }
        write_artifact(
            path,
            cls=type(self),
            params=get_params(self),
            arrays=arrays,
            state=state,
            extra_files=self._get_files(),
        )

    @classmethod
    def load(cls, path: PathLike) -> Self:
        """Load an artifact written by :meth:`save` (class checked against the allow-list)."""
        found, params, arrays, manifest = read_artifact(path)
        if not issubclass(found, cls):
            msg = f"artifact at {path} holds a {found.__name__}, not a {cls.__name__}"
            raise ArtifactError(msg)
        model = found(**params)
        state = dict(manifest.get("state", {}))
        model.n_users_ = int(state.pop("n_users_"))
        model.n_items_ = int(state.pop("n_items_"))
        for name, value in arrays.items():
            setattr(model, name, value)
        missing = [n for n in (*found._fitted_arrays, "seen_") if n not in arrays]
        if missing:
            msg = f"model at {path} is corrupt: arrays {missing} are missing"
            raise ArtifactError(msg)
        root = Path(os.fspath(path))
        files = {
            name: (root / name).read_bytes()
            for name in manifest.get("files", {})
            if name not in ("manifest.json", "arrays.npz")
        }
        model._set_files(files)
        model._set_state(state)
        return model

    # -- estimator plumbing ------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-serialisable)."""
        return get_params(self)

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters; unknown names raise ConfigError."""
        return set_params(self, **params)

    def clone(self) -> Self:
        """An unfitted copy with the same parameters."""
        return clone(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
