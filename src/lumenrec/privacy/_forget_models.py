"""Per-model erasure: exact unlearning where a model has it, per-user rows dropped and the
model marked ``pending_retrain`` where its weights (SGD/neural) still hold the user."""

from __future__ import annotations

from typing import Any

import numpy as np

from lumenrec.errors import DataError
from lumenrec.privacy._forget_rows import (
    check_forget_users,
    drop_rows,
    drop_user_arrays,
    finish_forget,
)
from lumenrec.types import IndexArray

__all__ = ["EXACT", "HALFSTEP", "PENDING", "PER_USER_ARRAYS", "forget_in_model"]

EXACT = "exact"
HALFSTEP = "item_halfstep"
PENDING = "pending_retrain"

#: Per-user arrays (one row per training user) of models without exact unlearning: their
#: rows are dropped at once; the shared weights keep the user's influence until a retrain.
PER_USER_ARRAYS: dict[str, tuple[str, ...]] = {
    "BPR": ("user_factors_",),
    "LightGCN": ("user_factors_",),
    "MultVAE": ("user_latent_",),
    "SASRec": ("user_vectors_", "sequences_"),
    "DebiasedMF": ("user_factors_", "user_bias_"),
    "TextAdapter": ("user_factors_",),
}
#: ContentRecommender is exact: item vectors come from text (no interaction enters them) and a
#: user's vector is built from that user's own rows only.
_CONTENT_ARRAYS = ("user_embeddings_", "history_weights_")


def forget_in_model(model: Any, users: IndexArray) -> dict[str, str]:
    """Forget dense ``users`` in ``model`` (in place); return each part's effect.

    Parameters
    ----------
    model : BaseRecommender
        A fitted model (a hybrid is handled component by component).
    users : array-like of shape (n,), int
        Dense user indices.

    Returns
    -------
    dict of str to str
        ``{"model": effect}`` or, for a hybrid, ``{"<component>": effect, ...,
        "fusion": effect}``; an effect is ``"exact"``, ``"item_halfstep"`` (ALS: exact item
        factors given the other users' factors) or ``"pending_retrain"``.
    """
    idx = check_forget_users(model, users)
    components = getattr(model, "components", None)
    if components is not None:
        return _forget_hybrid(model, idx)
    return {"model": _forget_single(model, idx)}


def _forget_single(model: Any, idx: IndexArray) -> str:
    kind = getattr(type(model), "_unlearning", None)
    if kind is not None and hasattr(model, "forget_users"):
        model.forget_users(idx)
        return str(kind)
    name = type(model).__name__
    if name == "ContentRecommender":
        drop_user_arrays(model, idx, _CONTENT_ARRAYS)
        finish_forget(model, idx)
        return EXACT
    names = PER_USER_ARRAYS.get(name)
    if names is None:  # an unknown model: every array named user_* with one row per user
        names = tuple(n for n in getattr(model, "_fitted_arrays", ()) if n.startswith("user_"))
    _drop_pair_arrays(model, idx)
    drop_user_arrays(model, idx, names)
    finish_forget(model, idx)
    return PENDING


def _drop_pair_arrays(model: Any, idx: IndexArray) -> None:
    """Arrays with one entry per training pair in ``seen_``'s CSR order (DebiasedMF)."""
    seen = model.seen_
    for name in ("propensities_",):
        value = getattr(model, name, None)
        if isinstance(value, np.ndarray) and value.ndim == 1 and len(value) == seen.nnz:
            keep = np.ones(seen.nnz, bool)
            for u in idx:
                keep[seen.indptr[u] : seen.indptr[u + 1]] = False
            setattr(model, name, np.ascontiguousarray(value[keep]))


def _forget_hybrid(model: Any, idx: IndexArray) -> dict[str, str]:
    effects: dict[str, str] = {}
    for name, comp in model.components.items():
        if comp.n_users_ != model.n_users_:
            msg = (
                f"hybrid component {name!r} has {comp.n_users_} users, the hybrid {model.n_users_}"
            )
            raise DataError(msg)
        effects[name] = forget_in_model(comp, idx)["model"]
    rows = model.seen_[idx]
    removed = np.bincount(rows.indices, minlength=model.n_items_).astype(np.float32)
    model.item_counts_ = (model.item_counts_ - removed).astype(np.float32)
    model.user_counts_ = drop_rows(model.user_counts_, idx)
    finish_forget(model, idx)
    # learned fusion weights were fitted on (a sample of) every user's held-out events
    effects["fusion"] = PENDING if model.fusion == "learned" else EXACT
    return effects


def overall_effect(effects: dict[str, str]) -> str:
    """The weakest effect of the parts: pending < item_halfstep < exact."""
    order = {PENDING: 0, HALFSTEP: 1, EXACT: 2}
    return min(effects.values(), key=lambda e: order.get(e, 0))
