"""Top-k retrieval over item factor vectors: exact (the default) or a faiss HNSW index.

Models that score by an inner product of a user vector and an item vector (ALS, BPR and any
model exposing ``user_factors_`` / ``item_factors_``, with an optional ``item_bias_``) can be
served from an approximate nearest-neighbour index instead of scoring every item.
:func:`factor_vectors` turns such a model into one item matrix whose inner product with
:func:`user_query` / :func:`history_query` reproduces the model's scores (a bias becomes an
extra coordinate).

:class:`HNSWIndex` wraps ``faiss.IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``. HNSW cannot
remove vectors, so deleted items are *tombstones*: they are filtered out of every search
(``IDSelectorNot``), and the graph is rebuilt without them (:meth:`HNSWIndex.compacted`)
once they exceed ``rebuild_share`` of the index. The index serialises to faiss's own binary
format plus a ``.npy`` label array (no pickle).

Inner-product HNSW misses items for factor models whose item norms are skewed (ALS norms grow
with popularity): the true top-k of a query is then dominated by a few large-norm items that a
graph search walks past, all the more once seen items are filtered. So the ``n_exact``
largest-norm vectors (the *head*) are also scored exactly on every query, and by
Cauchy-Schwarz no other item can beat ``|q| * max tail norm``: when the k-th head score reaches
that bound the head's list is the exact answer and the graph is not searched at all; otherwise
the graph's list and the head's are merged. (The MIPS-to-L2 reduction, an extra coordinate
``sqrt(M^2 - |x|^2)``, was measured and is much worse on such factors: recall@10 0.68 against
1.00 on Amazon Sports ALS factors at ef 512; see ``docs/serving.md``.)
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec.errors import ArtifactError, ConfigError, DataError, missing_dependency

__all__ = [
    "HNSWIndex",
    "exact_search",
    "factor_vectors",
    "has_factors",
    "history_query",
    "user_query",
]

log = logging.getLogger(__name__)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as err:
        package = "faiss-cpu"
        raise missing_dependency(package, "serve") from err
    return faiss


def has_factors(model: Any) -> bool:
    """True when ``model`` scores as ``user_factors_ @ item_factors_.T (+ item_bias_)``."""
    users = getattr(model, "user_factors_", None)
    items = getattr(model, "item_factors_", None)
    return (
        isinstance(users, np.ndarray)
        and isinstance(items, np.ndarray)
        and users.ndim == items.ndim == 2
        and users.shape[1] == items.shape[1]
        and items.shape[0] == getattr(model, "n_items_", items.shape[0])
    )


def _bias(model: Any) -> NDArray[np.float32] | None:
    bias = getattr(model, "item_bias_", None)
    return None if bias is None else np.asarray(bias, np.float32).reshape(-1)


def factor_vectors(model: Any) -> NDArray[np.float32]:
    """Item vectors whose inner product with a user query equals the model's score.

    Parameters
    ----------
    model : fitted factor model
        See :func:`has_factors`.

    Returns
    -------
    ndarray of shape (n_items, d), float32, C-contiguous
        ``item_factors_``, with ``item_bias_`` appended as a last column when the model has one.

    Raises
    ------
    ConfigError
        The model has no factor matrices.
    """
    if not has_factors(model):
        msg = (
            f"{type(model).__name__} has no user/item factor matrices; ANN retrieval needs a "
            "factor model (ALS, BPR); use retrieval='exact'"
        )
        raise ConfigError(msg)
    items = np.asarray(model.item_factors_, np.float32)
    bias = _bias(model)
    if bias is not None:
        items = np.hstack([items, bias[:, None]])
    return np.ascontiguousarray(items, dtype=np.float32)


def _augment(model: Any, vectors: NDArray[np.floating]) -> NDArray[np.float32]:
    out = np.asarray(vectors, np.float32).reshape(-1, model.item_factors_.shape[1])
    if _bias(model) is not None:
        out = np.hstack([out, np.ones((out.shape[0], 1), np.float32)])
    return np.ascontiguousarray(out, dtype=np.float32)


def user_query(model: Any, user: int) -> NDArray[np.float32]:
    """The query vector of a training user (shape ``(1, d)``)."""
    return _augment(model, model.user_factors_[int(user)])


def history_query(model: Any, history: sp.csr_matrix) -> NDArray[np.float32]:
    """The query vector of a user known only by ``history`` (the model's ``fold_in``)."""
    return _augment(model, model.fold_in(history))


def exact_search(
    items: NDArray[np.float32], query: NDArray[np.float32], k: int, exclude: Iterable[int] = ()
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Brute-force inner-product top-``k`` (the reference for recall), best first."""
    from lumenrec.models._kernels.topk import topk

    scores = np.asarray(query, np.float32).reshape(1, -1) @ items.T
    excl = np.fromiter(exclude, np.int64)
    if excl.size:
        scores[0, excl] = -np.inf
    pos, vals = topk(scores, int(k))
    keep = pos[0] >= 0
    return pos[0][keep], vals[0][keep]


class HNSWIndex:
    """Approximate inner-product top-k over item vectors (faiss ``IndexHNSWFlat``).

    Item ``i`` of the catalogue is vector ``i`` at build time; :meth:`add` appends items,
    :meth:`delete` tombstones them. Searches never return a tombstoned or excluded item.

    Parameters
    ----------
    vectors : ndarray of shape (n_items, d), float32
        Item vectors (see :func:`factor_vectors`).
    m : int
        HNSW graph degree (``M``); more is more accurate, slower to build and bigger.
    ef_construction : int
        Candidate list size while building.
    ef_search : int
        Candidate list size while searching (raised to ``k`` when smaller); the
        recall/latency knob.
    rebuild_share : float
        Rebuild the graph without tombstones once they exceed this share of its vectors.
    n_exact : int
        Size of the exactly scored head (the largest-norm vectors); 0 searches the graph only.

    Stability: experimental.
    """

    def __init__(
        self,
        vectors: NDArray[np.floating],
        *,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        rebuild_share: float = 0.2,
        n_exact: int = 1024,
        _labels: NDArray[np.int64] | None = None,
        _index: Any = None,
    ) -> None:
        if (
            m < 4
            or ef_construction < 1
            or ef_search < 1
            or not 0 < rebuild_share <= 1
            or n_exact < 0
        ):
            msg = (
                "HNSW settings out of range: need m >= 4, ef_construction >= 1, "
                f"ef_search >= 1, 0 < rebuild_share <= 1, n_exact >= 0 (got m={m}, "
                f"ef_construction={ef_construction}, ef_search={ef_search}, "
                f"rebuild_share={rebuild_share}, n_exact={n_exact})"
            )
            raise ConfigError(msg)
        self.n_exact = int(n_exact)
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self.rebuild_share = float(rebuild_share)
        faiss = _faiss()
        if _index is not None:
            self._index = _index
            self.dim = int(_index.d)
            self._labels = np.asarray(_labels, np.int64)
            x = _index.reconstruct_n(0, _index.ntotal) if _index.ntotal else None
        else:
            x = np.ascontiguousarray(vectors, dtype=np.float32)
            if x.ndim != 2 or not x.shape[0] or not np.isfinite(x).all():
                msg = f"item vectors must be a finite non-empty 2-D array (got shape {x.shape})"
                raise DataError(msg)
            self.dim = int(x.shape[1])
            self._index = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = self.ef_construction
            self._index.add(x)
            self._labels = (
                np.arange(x.shape[0], dtype=np.int64)
                if _labels is None
                else np.asarray(_labels, np.int64)
            )
        if len(self._labels) != self._index.ntotal:
            msg = f"HNSW index holds {self._index.ntotal} vectors but {len(self._labels)} labels"
            raise ArtifactError(msg)
        self.n_items = int(self._labels.max()) + 1 if len(self._labels) else 0
        self._row_of = np.full(self.n_items, -1, np.int64)
        self._row_of[self._labels] = np.arange(len(self._labels))
        self._tombstones: set[int] = set()
        self._head_rows = np.empty(0, np.int64)
        self._head_vecs = np.empty((0, self.dim), np.float32)
        self._tail_bound = 0.0  # max norm of the graph's vectors outside the head
        if x is not None:
            self._grow_head(np.asarray(x, np.float32), 0)

    def _grow_head(self, x: NDArray[np.float32], first_row: int) -> None:
        """Merge rows ``first_row ...`` (vectors ``x``) into the head, keeping the largest norms."""
        rows = np.concatenate([self._head_rows, first_row + np.arange(len(x), dtype=np.int64)])
        vecs = np.concatenate([self._head_vecs, x]) if len(self._head_rows) else x
        norms = np.linalg.norm(vecs, axis=1)
        if len(rows) > self.n_exact:
            order = np.argsort(-norms, kind="stable")
            keep, drop = order[: self.n_exact], order[self.n_exact :]
            self._tail_bound = max(self._tail_bound, float(norms[drop].max()))
            rows, vecs = rows[keep], vecs[keep]
        self._head_rows = rows
        self._head_vecs = np.ascontiguousarray(vecs, dtype=np.float32)

    # -- state -----------------------------------------------------------------------------
    @property
    def n_vectors(self) -> int:
        """Vectors in the graph (live items + tombstones)."""
        return int(self._index.ntotal)

    @property
    def tombstones(self) -> frozenset[int]:
        """Deleted item indices still present in the graph."""
        return frozenset(self._tombstones)

    @property
    def needs_rebuild(self) -> bool:
        """True when tombstones exceed ``rebuild_share`` of the graph."""
        return len(self._tombstones) > self.rebuild_share * max(self.n_vectors, 1)

    def params(self) -> dict[str, float | int]:
        return {
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "rebuild_share": self.rebuild_share,
            "n_exact": self.n_exact,
        }

    # -- changes ---------------------------------------------------------------------------
    def add(self, vectors: NDArray[np.floating]) -> NDArray[np.int64]:
        """Append items (they get the next item indices); returns those indices."""
        x = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if not np.isfinite(x).all():
            msg = "item vectors contain NaN or inf"
            raise DataError(msg)
        new = np.arange(self.n_items, self.n_items + len(x), dtype=np.int64)
        self._index.add(x)
        self._grow_head(x, self.n_vectors - len(x))
        self._labels = np.concatenate([self._labels, new])
        self._row_of = np.concatenate([self._row_of, self.n_vectors - len(x) + np.arange(len(x))])
        self.n_items += len(x)
        return new

    def delete(self, items: Iterable[int]) -> int:
        """Tombstone items (idempotent; unknown indices ignored); returns how many were new."""
        before = len(self._tombstones)
        for item in items:
            i = int(item)
            if 0 <= i < self.n_items and self._row_of[i] >= 0:
                self._tombstones.add(i)
        return len(self._tombstones) - before

    def undelete(self, items: Iterable[int]) -> list[int]:
        """Lift tombstones; returns the items whose vectors a rebuild already dropped."""
        gone = []
        for item in items:
            i = int(item)
            self._tombstones.discard(i)
            if 0 <= i < self.n_items and self._row_of[i] < 0:
                gone.append(i)
        return gone

    def compacted(self) -> HNSWIndex:
        """A new index built from the live vectors only (tombstones dropped for good)."""
        live_rows = np.flatnonzero(~np.isin(self._labels, list(self._tombstones)))
        if not live_rows.size:
            return self  # nothing left to build a graph from; every search comes back empty
        vectors = self._index.reconstruct_n(0, self.n_vectors)[live_rows]
        out = HNSWIndex(vectors, **self.params(), _labels=self._labels[live_rows])
        out.n_items = self.n_items  # item indices keep their meaning
        row_of = np.full(self.n_items, -1, np.int64)
        row_of[out._labels] = np.arange(len(out._labels))
        out._row_of = row_of
        return out

    # -- queries ---------------------------------------------------------------------------
    def search(
        self, query: NDArray[np.floating], k: int, exclude: Iterable[int] = ()
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Approximate top-``k`` item indices and inner products, best first.

        Parameters
        ----------
        query : ndarray of shape (d,) or (1, d)
        k : int
        exclude : iterable of int
            Item indices never returned (seen items, filters); tombstones are always excluded.

        Returns
        -------
        items : ndarray of int64 (at most ``k``)
        scores : ndarray of float32
        """
        faiss = _faiss()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        excl = np.fromiter(exclude, np.int64)
        excl = excl[(excl >= 0) & (excl < self.n_items)]
        rows = self._row_of[excl] if excl.size else excl
        if self._tombstones:
            dead = self._row_of[np.fromiter(self._tombstones, np.int64, len(self._tombstones))]
            rows = np.concatenate([rows, dead])
        rows = np.unique(rows[rows >= 0])
        kk = min(int(k), self.n_vectors - len(rows))
        if kk <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        # the head, scored exactly
        hs = self._head_vecs @ q[0]
        if rows.size:
            hs[np.isin(self._head_rows, rows, assume_unique=True)] = -np.inf
        top = np.argsort(-hs, kind="stable")[:kk]
        top = top[np.isfinite(hs[top])]
        h_rows, h_scores = self._head_rows[top], hs[top]
        tail = self.n_vectors - len(self._head_rows)
        bound = float(np.linalg.norm(q)) * self._tail_bound
        if not tail or (len(top) == kk and h_scores[-1] >= bound):
            return self._labels[h_rows], h_scores.astype(np.float32)  # exact (Cauchy-Schwarz)
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ef_search, kk)
        if rows.size:
            batch = faiss.IDSelectorBatch(rows)
            params.sel = faiss.IDSelectorNot(batch)
        scores, found = self._index.search(q, kk, params=params)
        keep = found[0] >= 0
        g_rows, g_scores = found[0][keep], scores[0][keep]
        fresh = ~np.isin(g_rows, h_rows)
        all_rows = np.concatenate([h_rows, g_rows[fresh]])
        all_scores = np.concatenate([h_scores, g_scores[fresh]]).astype(np.float32)
        if len(all_rows) < kk:  # the filter starved the graph search: score everything
            log.debug("HNSW search came back short (%d < %d); scoring exactly", len(all_rows), kk)
            every = self._index.reconstruct_n(0, self.n_vectors) @ q[0]
            every[rows] = -np.inf
            all_rows = np.flatnonzero(np.isfinite(every))
            all_scores = every[all_rows].astype(np.float32)
        order = np.argsort(-all_scores, kind="stable")[:kk]
        return self._labels[all_rows[order]], all_scores[order]

    # -- persistence -----------------------------------------------------------------------
    def to_bytes(self) -> tuple[bytes, bytes]:
        """``(faiss index bytes, .npy labels bytes)``; tombstones are compacted away first."""
        index = self.compacted() if self._tombstones else self
        buf = io.BytesIO()
        np.save(buf, index._labels, allow_pickle=False)
        return bytes(_faiss().serialize_index(index._index)), buf.getvalue()

    @classmethod
    def from_bytes(cls, index_bytes: bytes, labels_bytes: bytes, **params: Any) -> HNSWIndex:
        """Inverse of :meth:`to_bytes`.

        Raises
        ------
        ArtifactError
            Unreadable bytes or not an HNSW inner-product index.
        """
        faiss = _faiss()
        try:
            labels = np.load(io.BytesIO(labels_bytes), allow_pickle=False)
            index = faiss.deserialize_index(np.frombuffer(index_bytes, np.uint8).copy())
        except (ValueError, OSError, RuntimeError) as err:
            msg = f"HNSW index is unreadable ({err})"
            raise ArtifactError(msg) from err
        if not isinstance(index, faiss.IndexHNSWFlat) or (
            index.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            msg = f"expected an inner-product IndexHNSWFlat, found {type(index).__name__}"
            raise ArtifactError(msg)
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            msg = "HNSW labels must be a 1-D integer array"
            raise ArtifactError(msg)
        params.setdefault("m", int(index.hnsw.nb_neighbors(1)))
        return cls(np.empty((0, index.d), np.float32), **params, _labels=labels, _index=index)
