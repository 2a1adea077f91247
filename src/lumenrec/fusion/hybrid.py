"""HybridRecommender: CF and text components fused per user, with automatic cold-start routing.

Routing, per (user, item):

- warm user, warm item → every component, fused (route ``"cf"``);
- cold item (no training interactions, or added later from text) or cold user (no history)
  → the text component alone (route ``"text"``): collaborative scores are undefined there;
- a user with neither history nor text → popularity (route ``"popular"``).

The hybrid is itself a Recommender: it evaluates, saves (components in sub-directories) and
serves like any single model.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from lumenrec._params import check_is_fitted
from lumenrec.errors import ArtifactError, ConfigError, DataError
from lumenrec.fusion.linear import WeightedSum
from lumenrec.fusion.normalize import NORMALIZERS, normalize_scores
from lumenrec.fusion.rrf import ReciprocalRankFusion
from lumenrec.models.base import BaseRecommender, SupportsFoldIn
from lumenrec.persistence import read_artifact, write_artifact
from lumenrec.types import IndexArray, PathLike, Recommendations, ScoreMatrix

if TYPE_CHECKING:
    import pandas as pd

    from lumenrec.data.dataset import Dataset

__all__ = ["FUSIONS", "HybridRecommender"]

log = logging.getLogger(__name__)
FUSIONS = ("weighted", "rrf", "learned")


class HybridRecommender(BaseRecommender):
    """Fuse named components; route cold users and items to the text component.

    Parameters
    ----------
    components : mapping of str to Recommender
        E.g. ``{"cf": EASE(), "text": ContentRecommender()}``.
    fusion : {"weighted", "rrf", "learned"}
        ``weighted``: :class:`~lumenrec.fusion.linear.WeightedSum` of per-user normalised
        scores; ``rrf``: reciprocal rank fusion; ``learned``: weights fitted on an inner
        validation split (each user's last event held out), then components refitted on all
        data.
    weights : mapping of str to float, optional
        Component weights for ``weighted``/``rrf`` (default equal).
    text : str or None
        Name of the component that scores cold users and items (must be able to score
        items without interactions); None disables routing.
    normalize : {"zscore", "minmax", "rank", "none"}
        Per-user normalisation before fusing.
    learn_users : int
        Validation users sampled for ``learned`` (bounds its cost).
    holdout : {"last", "random"}
        What ``learned`` holds out per user: the last event (sequential protocols such as
        leave-one-out) or a random ``holdout_fraction`` of their events, at least one
        (random-split protocols such as P1). Match the protocol you will be evaluated on.
    holdout_fraction : float
        Share of each user's events held out when ``holdout="random"``; more held-out
        events make the learned weights less noisy.
    learn_step : float
        Grid step of the weight simplex searched by ``learned``.

    Attributes
    ----------
    weights_ : dict of str to float
        The weights in use (learned ones for ``fusion="learned"``).
    item_counts_ : ndarray of shape (n_items_,), float32
        Training interactions per item (0 = cold item).

    Stability: experimental.
    """

    _fitted_arrays = ("item_counts_", "user_counts_")

    def __init__(
        self,
        components: Mapping[str, BaseRecommender],
        *,
        fusion: str = "weighted",
        weights: Mapping[str, float] | None = None,
        text: str | None = "text",
        normalize: str = "zscore",
        learn_users: int = 3000,
        holdout: str = "last",
        holdout_fraction: float = 0.2,
        learn_step: float = 0.05,
        random_state: int | None = None,
    ) -> None:
        self.components = dict(components)
        self.fusion = fusion
        self.weights = None if weights is None else dict(weights)
        self.text = text
        self.normalize = normalize
        self.learn_users = learn_users
        self.holdout = holdout
        self.holdout_fraction = holdout_fraction
        self.learn_step = learn_step
        self.random_state = random_state

    def _validate(self) -> None:
        if not self.components:
            msg = "components must name at least one model"
            raise ConfigError(msg)
        if self.fusion not in FUSIONS:
            msg = f"fusion must be one of {list(FUSIONS)} (got {self.fusion!r})"
            raise ConfigError(msg)
        if self.normalize not in NORMALIZERS:
            msg = f"normalize must be one of {list(NORMALIZERS)} (got {self.normalize!r})"
            raise ConfigError(msg)
        if self.text is not None and self.text not in self.components:
            msg = f"text={self.text!r} is not a component; components: {sorted(self.components)}"
            raise ConfigError(msg)
        if self.holdout not in ("last", "random"):
            msg = f"holdout must be 'last' or 'random' (got {self.holdout!r})"
            raise ConfigError(msg)
        if not (isinstance(self.holdout_fraction, float | int) and 0 < self.holdout_fraction < 1):
            msg = f"holdout_fraction must be in (0, 1) (got {self.holdout_fraction!r})"
            raise ConfigError(msg)
        if not (isinstance(self.learn_step, float | int) and 0 < self.learn_step <= 0.5):
            msg = f"learn_step must be a number in (0, 0.5] (got {self.learn_step!r})"
            raise ConfigError(msg)
        if self.weights is not None and set(self.weights) != set(self.components):
            msg = f"weights must name exactly the components {sorted(self.components)}"
            raise ConfigError(msg)

    # -- fitting ---------------------------------------------------------------------------
    def _fit(
        self, user_items: sp.csr_matrix, rng: np.random.Generator, data: Dataset | None
    ) -> None:
        self._validate()
        train: Any = data if data is not None else user_items
        if self.fusion == "learned":
            self.weights_ = self._learn_weights(train, user_items, rng)
        else:
            self.weights_ = self.weights or {name: 1.0 for name in self.components}
        for name, model in self.components.items():
            log.info("hybrid: fitting component %s", name)
            model.fit(train)
        self.item_counts_ = np.bincount(user_items.indices, minlength=user_items.shape[1]).astype(
            np.float32
        )
        self.user_counts_ = np.diff(user_items.indptr).astype(np.float32)

    def _learn_weights(
        self, train: Any, user_items: sp.csr_matrix, rng: np.random.Generator
    ) -> dict:
        from lumenrec.data.dataset import Dataset
        from lumenrec.fusion.stacker import fit_weights

        if not isinstance(train, Dataset):
            msg = "fusion='learned' needs a Dataset (event order defines the held-out events)"
            raise DataError(msg)
        held_pos = _held_out_events(train, self.holdout, self.holdout_fraction, rng)
        eligible = held_pos[np.diff(user_items.indptr)[train.user_idx[held_pos]] >= 3]
        if len(eligible) == 0:
            msg = "fusion='learned' needs users with at least 3 interactions"
            raise DataError(msg)
        keep = np.ones(train.n_events, bool)
        keep[eligible] = False
        inner = train.subset(keep)
        held = train.subset(~keep)
        users = np.unique(held.user_idx)
        if len(users) > self.learn_users:
            users = np.sort(rng.choice(users, self.learn_users, replace=False))
        scores = {}
        for name, model in self.components.items():
            fitted = model.clone().fit(inner)
            s = fitted.score(users)
            if name != self.text:
                mat = inner.matrix
                item_counts = np.bincount(mat.indices, minlength=mat.shape[1])
                s = _blank_cold(s, item_counts, np.diff(mat.indptr)[users])
            scores[name] = s
        weights, trials = fit_weights(
            scores,
            held.matrix[users],
            inner.matrix[users],
            normalize=self.normalize,
            step=float(self.learn_step),
        )
        self.learn_trials_ = trials
        log.info("hybrid: learned weights %s", weights)
        return weights

    # -- scoring ---------------------------------------------------------------------------
    def component_scores(
        self, users: IndexArray, items: IndexArray | None = None
    ) -> dict[str, ScoreMatrix]:
        """Each component's scores with the routing masks applied (NaN = not used)."""
        out = {}
        for name, model in self.components.items():
            n_known = model.n_items_
            if items is None:
                s = model.score(users)
                if n_known < self.n_items_:  # items added after fit: unknown to this component
                    s = np.hstack(
                        [s, np.full((len(users), self.n_items_ - n_known), np.nan, np.float32)]
                    )
            else:
                known = items < n_known
                s = np.full((len(users), len(items)), np.nan, np.float32)
                if known.any():
                    s[:, known] = model.score(users, items[known])
            if name != self.text:
                counts = self.item_counts_ if items is None else self.item_counts_[items]
                s = _blank_cold(s, counts, self.user_counts_[users])
            out[name] = s
        return out

    def _score_block(self, users: IndexArray, items: IndexArray | None) -> ScoreMatrix:
        # Normalisation is per user over the whole catalogue, so a score does not depend on
        # which other items were asked for: score the full row, then select.
        full = self._fuse_rows(users)
        return full if items is None else full[:, items]

    def _fuse_rows(self, users: IndexArray) -> ScoreMatrix:
        return self._fuse(self.component_scores(users))

    def _fuse(self, comp: dict[str, ScoreMatrix]) -> ScoreMatrix:
        """Fuse masked component scores (full catalogue rows); popularity for empty rows."""
        weights = {name: w for name, w in self.weights_.items() if name in comp}
        if self.fusion == "rrf":
            fused = ReciprocalRankFusion(weights=weights).fuse(comp)
            fused[np.all([np.isnan(s) for s in comp.values()], axis=0)] = np.nan
        else:
            fused = WeightedSum(weights, normalize=self.normalize).fuse(comp)
        empty = np.isnan(fused).all(axis=1)
        if empty.any():  # neither history nor text: popularity, on the same normalised scale
            fused[empty] = normalize_scores(self.item_counts_[None, :], self.normalize)[0]
        return fused

    def score_history(
        self, histories: sp.csr_matrix, items: IndexArray | None = None
    ) -> ScoreMatrix:
        """Fold-in: fuse the components that can score histories (users not in training).

        Parameters
        ----------
        histories : sparse matrix of shape (n, n_items_), float
        items : array of int, optional

        Returns
        -------
        ndarray of shape (n, len(items) or n_items_), float32
            Cold items are scored by the text component only, as in :meth:`score`.
        """
        check_is_fitted(self)
        hist = sp.csr_matrix(histories, dtype=np.float32)
        comp = {}
        for name, model in self.components.items():
            if not isinstance(model, SupportsFoldIn):
                continue
            s = np.full((hist.shape[0], self.n_items_), np.nan, np.float32)
            s[:, : model.n_items_] = model.score_history(hist[:, : model.n_items_])
            if name != self.text:
                s[:, self.item_counts_ == 0] = np.nan
            comp[name] = s
        if not comp:
            msg = "no component of this hybrid can score histories (fold-in)"
            raise ConfigError(msg)
        fused = self._fuse(comp)
        return fused if items is None else fused[:, np.asarray(items)]

    def item_routes(self) -> NDArray[np.object_]:
        """Route of each item for a user with history: ``"text"`` for cold items, else ``"cf"``."""
        return np.where(self.item_counts_ == 0, "text", "cf").astype(object)

    def recommend(self, users: IndexArray, k: int = 10, **kwargs: Any) -> Recommendations:
        """Top-k like every model, plus ``routes``: ``"cf"``, ``"text"`` or ``"popular"``."""
        recs = super().recommend(users, k, **kwargs)
        return dataclasses.replace(recs, routes=self.routes(recs.users, recs.items))

    def routes(self, users: IndexArray, items: np.ndarray) -> np.ndarray:
        """The route of each (user, item) pair; ``items`` is (n_users, k), -1 for padding."""
        routes = np.full(items.shape, "cf", dtype=object)
        cold_item = self.item_counts_[np.maximum(items, 0)] == 0
        cold_user = (self.user_counts_[users] == 0)[:, None]
        routes[cold_item | np.broadcast_to(cold_user, items.shape)] = "text"
        if self.text is not None:
            text_model = self.components[self.text]
            no_text = np.isnan(text_model.score(users, np.array([0], np.int32))[:, 0])
            routes[no_text & cold_user[:, 0]] = "popular"
        else:
            routes[np.broadcast_to(cold_user, items.shape)] = "popular"
        routes[items < 0] = None
        return routes

    # -- cold items ------------------------------------------------------------------------
    def add_items(self, items: pd.DataFrame | Sequence[str]) -> IndexArray:
        """Add new items (catalogue rows or texts), routed to the text component; no refit."""
        check_is_fitted(self)
        if self.text is None or not hasattr(self.components[self.text], "add_items"):
            msg = "adding items needs a text component that supports add_items"
            raise ConfigError(msg)
        new = self.components[self.text].add_items(items)
        self.item_counts_ = np.concatenate([self.item_counts_, np.zeros(len(new), np.float32)])
        return self._append_items(len(new))

    # -- persistence and plumbing ----------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            "components": self.components,
            "fusion": self.fusion,
            "weights": self.weights,
            "text": self.text,
            "normalize": self.normalize,
            "learn_users": self.learn_users,
            "holdout": self.holdout,
            "holdout_fraction": self.holdout_fraction,
            "learn_step": self.learn_step,
            "random_state": self.random_state,
        }

    def clone(self) -> Self:
        params = self.get_params()
        params["components"] = {n: c.clone() for n, c in self.components.items()}
        return type(self)(**params)

    def save(self, path: PathLike) -> None:
        check_is_fitted(self)
        params = {k: v for k, v in self.get_params().items() if k != "components"}
        state = {
            "n_users_": int(self.n_users_),
            "n_items_": int(self.n_items_),
            "weights_": self.weights_,
            "components": list(self.components),
        }
        arrays = {
            "item_counts_": self.item_counts_,
            "user_counts_": self.user_counts_,
            "seen_": self.seen_,
        }
        children = {
            f"component-{n}": (lambda p, m=m: m.save(p)) for n, m in self.components.items()
        }
        write_artifact(
            path, cls=type(self), params=params, arrays=arrays, state=state, children=children
        )

    @classmethod
    def load(cls, path: PathLike) -> Self:
        from pathlib import Path

        found, params, arrays, manifest = read_artifact(path)
        if found is not cls:
            msg = f"artifact at {path} holds a {found.__name__}, not a {cls.__name__}"
            raise ArtifactError(msg)
        state = manifest["state"]
        components = {}
        for name in state["components"]:
            child = Path(path) / f"component-{name}"
            child_cls, *_ = read_artifact(child)
            components[name] = child_cls.load(child)
        model = cls(components, **params)
        model.n_users_, model.n_items_ = int(state["n_users_"]), int(state["n_items_"])
        model.weights_ = state["weights_"]
        for name, value in arrays.items():
            setattr(model, name, value)
        return model

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={type(c).__name__}" for n, c in self.components.items())
        return f"HybridRecommender({parts}, fusion={self.fusion!r})"


def _blank_cold(scores: np.ndarray, item_counts: np.ndarray, user_counts: np.ndarray) -> np.ndarray:
    """NaN where collaborative scores are undefined: items or users without interactions."""
    out = np.array(scores, dtype=np.float32, copy=True)
    out[:, item_counts == 0] = np.nan
    out[user_counts == 0] = np.nan
    return out


def _held_out_events(
    data: Dataset, holdout: str, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Event positions to hold out: each user's last event (time order, else log order), or
    a random ``fraction`` of each user's events (at least one)."""
    n = data.n_events
    if holdout == "random":
        keys: tuple[np.ndarray, ...] = (rng.random(n), data.user_idx)
    elif data.timestamps is None:
        keys = (np.arange(n), data.user_idx)
    else:
        keys = (np.arange(n), data.timestamps, data.user_idx)
    order = np.lexsort(keys)
    users = data.user_idx[order]
    counts = np.bincount(users, minlength=data.n_users)
    starts = np.cumsum(counts) - counts
    from_end = starts[users] + counts[users] - 1 - np.arange(n)  # 0 = the user's last
    per_user = 1 if holdout == "last" else np.maximum(1, np.round(fraction * counts[users]))
    return np.sort(order[from_end < per_user])
