"""Re-ranking data types and protocol: item features, candidates, results, chains.

A re-ranker reorders one request's candidate list (dense item indices, best first) so that
the first ``k`` items trade relevance against something else (diversity, calibration,
exposure fairness, business rules). Every stage is deterministic: the same candidates,
``k`` and features give the same list. Stages compose with :class:`RerankChain`, each one
working on the previous stage's full output.

Conventions shared by every stage
---------------------------------
- ``Reranked.items`` is a reordering of the candidates: the first ``min(k, n)`` items are
  the ones the stage chose, in its order; the remaining candidates follow in their input
  order. Each item keeps its input score (so later stages still see the base relevance).
  Exception: :class:`~lumenrec.rerank.rules.Exclude` drops items, and
  :class:`~lumenrec.rerank.rules.Pin` with ``force=True`` may insert one.
- A trade-off weight ``lam`` (λ) lies in [0, 1]; λ = 0 returns the input order exactly.
- Relevance inside a stage is the candidate score min-max normalised over the candidate set
  (non-finite scores count as the minimum), so λ means the same for any base model.
- ``feasible`` is False only when a stage's constraint cannot be met with these candidates;
  the stage then returns the best list it found and says why in ``notes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from lumenrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Candidates",
    "ItemFeatures",
    "RerankChain",
    "Reranked",
    "Reranker",
    "parse_rerank",
]

_CATEGORY_COLUMNS = ("genres", "categories", "category", "genre")
_PROVIDER_COLUMNS = ("brand", "provider", "brands", "seller", "artist")
_UNKNOWN_PROVIDERS = frozenset({"", "unknown", "nan", "none", "n/a", "null"})


@dataclass(frozen=True)
class ItemFeatures:
    """Catalogue-side features the re-rankers read, built once per pipeline or dataset.

    Attributes
    ----------
    popularity : ndarray of shape (n_items,), float32
        Training interaction counts (any non-negative popularity measure).
    embeddings : ndarray of shape (n_items, d), float32, optional
        Item embeddings (e.g. LM text embeddings) with L2-normalised rows.
    categories : scipy.sparse.csr_matrix of shape (n_items, n_categories), float32, optional
        Multi-hot category membership (genres, Amazon categories).
    category_names : tuple of str
        Name of each category column.
    providers : ndarray of shape (n_items,), int32, optional
        Provider code of each item (e.g. brand), -1 = unknown.
    provider_names : tuple of str
        Name of each provider code.
    """

    popularity: NDArray[np.float32]
    embeddings: NDArray[np.float32] | None = None
    categories: sp.csr_matrix | None = None
    category_names: tuple[str, ...] = ()
    providers: NDArray[np.int32] | None = None
    provider_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        pop = np.asarray(self.popularity, dtype=np.float32)
        if pop.ndim != 1 or not np.isfinite(pop).all() or (pop < 0).any():
            msg = f"popularity must be a finite non-negative 1-D array (got shape {pop.shape})"
            raise DataError(msg)
        object.__setattr__(self, "popularity", pop)
        n = pop.shape[0]
        if self.embeddings is not None:
            emb = np.asarray(self.embeddings, dtype=np.float32)
            if emb.ndim != 2 or emb.shape[0] != n or not np.isfinite(emb).all():
                msg = f"embeddings must be finite with shape ({n}, d), got {emb.shape}"
                raise DataError(msg)
            object.__setattr__(self, "embeddings", emb)
        if self.categories is not None:
            cats = sp.csr_matrix(self.categories, dtype=np.float32)
            if cats.shape[0] != n:
                msg = f"categories must have {n} rows (one per item), got {cats.shape[0]}"
                raise DataError(msg)
            if self.category_names and len(self.category_names) != cats.shape[1]:
                msg = f"{len(self.category_names)} category_names for {cats.shape[1]} columns"
                raise DataError(msg)
            object.__setattr__(self, "categories", cats)
        if self.providers is not None:
            prov = np.asarray(self.providers, dtype=np.int32)
            if prov.shape != (n,) or (prov < -1).any():
                msg = f"providers must have shape ({n},) with codes >= -1, got {prov.shape}"
                raise DataError(msg)
            if self.provider_names and prov.size and prov.max() >= len(self.provider_names):
                msg = f"provider code {prov.max()} has no name ({len(self.provider_names)} names)"
                raise DataError(msg)
            object.__setattr__(self, "providers", prov)

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue."""
        return int(self.popularity.shape[0])

    @classmethod
    def from_catalog(
        cls,
        catalog: pd.DataFrame | None,
        item_ids: Sequence[str],
        popularity: ArrayLike,
        *,
        embeddings: ArrayLike | None = None,
        category_column: str | None = None,
        provider_column: str | None = None,
    ) -> ItemFeatures:
        """Build features from a catalogue table aligned to the dense item order.

        Parameters
        ----------
        catalog : DataFrame, optional
            Indexed by item id. Category cells may be ``"A|B"`` strings or lists of names;
            provider cells are names. Items missing from the table get no category and
            provider -1; so do empty/NaN cells and the provider names ``"Unknown"``,
            ``"none"``, ``"n/a"``.
        item_ids : sequence of str, length n_items
            External id of each dense item index.
        popularity : array-like of shape (n_items,)
            Training interaction counts.
        embeddings : array-like of shape (n_items, d), optional
            Item embeddings; rows are L2-normalised here (a zero row stays zero).
        category_column, provider_column : str, optional
            Columns to read. When None, the first present of ``"genres"``,
            ``"categories"``, ``"category"``, ``"genre"`` (resp. ``"brand"``,
            ``"provider"``, ...) is used, if any.

        Returns
        -------
        ItemFeatures
        """
        ids = [str(i) for i in item_ids]
        emb = None
        if embeddings is not None:
            emb = np.asarray(embeddings, dtype=np.float32)
            if emb.ndim == 2:
                norms = np.linalg.norm(emb, axis=1, keepdims=True)
                emb = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
        categories, cat_names, providers, prov_names = None, (), None, ()
        if catalog is not None:
            keyed = catalog.set_axis(catalog.index.astype(str), axis=0)
            aligned = keyed[~keyed.index.duplicated(keep="first")].reindex(ids)
            cat_col = _pick_column(catalog, category_column, _CATEGORY_COLUMNS, "category")
            if cat_col is not None:
                categories, cat_names = _multi_hot(aligned[cat_col].tolist())
            prov_col = _pick_column(catalog, provider_column, _PROVIDER_COLUMNS, "provider")
            if prov_col is not None:
                providers, prov_names = _codes(aligned[prov_col].tolist())
        return cls(
            popularity=np.asarray(popularity, dtype=np.float32),
            embeddings=emb,
            categories=categories,
            category_names=cat_names,
            providers=providers,
            provider_names=prov_names,
        )


def _pick_column(
    catalog: pd.DataFrame, given: str | None, defaults: tuple[str, ...], what: str
) -> str | None:
    if given is not None:
        if given not in catalog.columns:
            msg = f"{what}_column {given!r} is not in the catalogue ({list(catalog.columns)})"
            raise ConfigError(msg)
        return given
    return next((c for c in defaults if c in catalog.columns), None)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def _split_categories(value: Any) -> list[str]:
    if isinstance(value, str):
        parts = value.split("|")
    elif isinstance(value, list | tuple | set | frozenset | np.ndarray):
        parts = [str(v) for v in value if not _is_missing(v)]
    else:
        parts = [] if _is_missing(value) else [str(value)]
    return [p.strip() for p in parts if p.strip()]


def _multi_hot(values: list[Any]) -> tuple[sp.csr_matrix, tuple[str, ...]]:
    per_item = [_split_categories(v) for v in values]
    names = tuple(sorted({c for cats in per_item for c in cats}))
    code = {name: j for j, name in enumerate(names)}
    rows, cols = [], []
    for i, cats in enumerate(per_item):
        for c in dict.fromkeys(cats):
            rows.append(i)
            cols.append(code[c])
    data = np.ones(len(rows), dtype=np.float32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(len(values), len(names)))
    return matrix, names


def _codes(values: list[Any]) -> tuple[NDArray[np.int32], tuple[str, ...]]:
    clean = [
        None if _is_missing(v) or str(v).strip().lower() in _UNKNOWN_PROVIDERS else str(v).strip()
        for v in values
    ]
    names = tuple(sorted({v for v in clean if v is not None}))
    code = {name: j for j, name in enumerate(names)}
    out = np.array([-1 if v is None else code[v] for v in clean], dtype=np.int32)
    return out, names


@dataclass(frozen=True)
class Candidates:
    """One request's candidate list.

    Attributes
    ----------
    items : ndarray of shape (n,), int32
        Dense item indices, best first, no duplicates.
    scores : ndarray of shape (n,), float32
        The base model's score of each candidate.
    history : ndarray of shape (h,), int32
        The user's history items (used by calibration); may be empty.
    """

    items: NDArray[np.int32]
    scores: NDArray[np.float32]
    history: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def __post_init__(self) -> None:
        items = np.asarray(self.items, dtype=np.int32).reshape(-1)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if items.shape != scores.shape:
            msg = f"candidates have {items.size} items but {scores.size} scores"
            raise DataError(msg)
        if items.size and items.min() < 0:
            msg = "candidate items must be dense indices >= 0 (drop -1 padding first)"
            raise DataError(msg)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "history", np.asarray(self.history, dtype=np.int32).reshape(-1))

    def __len__(self) -> int:
        return int(self.items.shape[0])


@dataclass(frozen=True)
class Reranked:
    """A stage's output.

    Attributes
    ----------
    items : ndarray of shape (m,), int32
        The candidates reordered (see the module docstring for what follows position k).
    scores : ndarray of shape (m,), float32
        Each item's input score, carried along with it.
    feasible : bool
        False when a constraint could not be met with these candidates (the best list
        found is returned anyway).
    notes : tuple of str
        Human-readable remarks (fallbacks, unreachable targets).
    """

    items: NDArray[np.int32]
    scores: NDArray[np.float32]
    feasible: bool = True
    notes: tuple[str, ...] = ()

    def as_candidates(self, history: NDArray[np.int32]) -> Candidates:
        """This output as the next stage's input."""
        return Candidates(self.items, self.scores, history)


@runtime_checkable
class Reranker(Protocol):
    """Anything that reorders a candidate list for one request."""

    name: str

    def rerank(self, candidates: Candidates, k: int, features: ItemFeatures) -> Reranked:
        """Reorder ``candidates`` so the first ``min(k, n)`` items are this stage's choice."""
        ...


class RerankChain:
    """Apply stages in order, each on the previous stage's full output.

    Stage ``i > 0`` sees the previous stage's order as its relevance order: its candidates'
    scores are the input score values sorted in descending order and laid onto the new
    order (same score profile, new ranking). Without this a later stage would re-sort by
    the base scores and undo the earlier ones. The returned ``scores`` are every item's
    input score again. ``feasible`` is the AND of the stages', ``notes`` are concatenated
    (each prefixed with the stage name). The caller cuts the final list to ``k``.

    Parameters
    ----------
    stages : sequence of Reranker
    """

    name = "chain"

    def __init__(self, stages: Sequence[Reranker]) -> None:
        self.stages = tuple(stages)
        for stage in self.stages:
            if not callable(getattr(stage, "rerank", None)):
                msg = f"{stage!r} is not a Reranker (no rerank method)"
                raise ConfigError(msg)

    def __repr__(self) -> str:
        return f"RerankChain({list(self.stages)!r})"

    def __len__(self) -> int:
        return len(self.stages)

    def rerank(self, candidates: Candidates, k: int, features: ItemFeatures) -> Reranked:
        """Run every stage; see the class docstring."""
        order = np.argsort(candidates.items, kind="stable")
        known_items, known_scores = candidates.items[order], candidates.scores[order]
        items, scores = candidates.items, candidates.scores
        feasible, notes = True, []
        for i, stage in enumerate(self.stages):
            if i:
                base = _input_scores(items, scores, known_items, known_scores)
                scores = np.sort(base)[::-1]
            out = stage.rerank(Candidates(items, scores, candidates.history), k, features)
            items, scores = out.items, out.scores
            feasible = feasible and out.feasible
            notes.extend(f"{stage.name}: {note}" for note in out.notes)
        final = _input_scores(items, scores, known_items, known_scores)
        return Reranked(items, final, feasible, tuple(notes))


def _input_scores(
    items: NDArray[np.int32],
    fallback: NDArray[np.float32],
    known_items: NDArray[np.int32],
    known_scores: NDArray[np.float32],
) -> NDArray[np.float32]:
    """The chain input's score of each item (``fallback`` for items a stage inserted)."""
    if known_items.size == 0:
        return fallback
    pos = np.minimum(np.searchsorted(known_items, items), known_items.size - 1)
    return np.where(known_items[pos] == items, known_scores[pos], fallback).astype(np.float32)


def parse_rerank(
    spec: str | Mapping[str, Any] | None, **options: Mapping[str, Any]
) -> RerankChain | None:
    """Build a chain from a spec such as ``"mmr=0.3,calibration=0.5,provider=0.2"``.

    See :func:`lumenrec.rerank.spec.parse_rerank` (this is the same function).
    """
    from lumenrec.rerank.spec import parse_rerank as _parse

    return _parse(spec, **options)
