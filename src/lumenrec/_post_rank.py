"""The steps after ranking, shared by every route of :class:`~lumenrec.pipeline.RecommendPipeline`:
demote the neighbours of items a user said "not interested" to, run the request's
re-rankers, cut to ``k`` and attach a reason to every item."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from lumenrec.pipeline import RecommendPipeline

__all__ = ["Explore", "Picked", "Ranked", "finish_list", "parse_chain"]


@dataclass(frozen=True, slots=True)
class Ranked:
    """One user's list: ``items`` are ``{item_id, score, rank, route, reason}`` dicts, best first.

    ``fallback`` is None when the model (or fold-in of the user's feedback) ranked the list,
    ``"text"`` for a profile-text ranking and ``"popular"`` for popularity. ``rerank`` (when
    re-rankers ran) holds the stages, whether every constraint was met, and notes.
    """

    items: list[dict[str, Any]]
    fallback: str | None = None
    fold_in: bool = False
    known_user: bool = False
    rerank: dict[str, Any] | None = None
    served: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Explore:
    """An exploration policy applied to one request's candidates (the top ``n_candidates``)."""

    policy: Any
    rng: np.random.Generator
    n_candidates: int = 50


@dataclass(frozen=True, slots=True)
class Picked:
    """Candidates of one request before demotion, re-ranking and reasons.

    ``items``/``scores``/``routes`` are aligned arrays, best first; ``history`` is the row the
    list was folded in from, ``user`` the training row used, ``profile`` the profile text of a
    text-route user, ``setting`` True when personalisation is off by the user's choice.
    """

    items: np.ndarray
    scores: np.ndarray
    routes: np.ndarray
    fallback: str | None = None
    fold_in: bool = False
    known_user: bool = False
    history: sp.csr_matrix | None = None
    user: int | None = None
    profile: str | None = None
    setting: bool = False


def parse_chain(rerank: Any) -> Any:
    """None, a spec string/mapping (see :func:`lumenrec.rerank.parse_rerank`) or a chain."""
    if rerank is None or (isinstance(rerank, str | dict) and not rerank):
        return None
    if callable(getattr(rerank, "rerank", None)):
        return rerank
    from lumenrec.rerank import parse_rerank

    return parse_rerank(rerank)


def _history_items(pipeline: RecommendPipeline, picked: Picked) -> np.ndarray:
    if picked.history is not None and picked.history.nnz:
        return picked.history.indices.astype(np.int32)
    if picked.user is not None and picked.user >= 0:
        seen = pipeline.model.seen_
        return seen.indices[seen.indptr[picked.user] : seen.indptr[picked.user + 1]].astype(
            np.int32
        )
    return np.empty(0, np.int32)


def finish_list(
    pipeline: RecommendPipeline,
    picked: Picked,
    k: int,
    demote: set[int],
    chain: Any,
    explain: bool,
    explore: Explore | None = None,
) -> Ranked:
    """Demote, re-rank, let the exploration policy pick the slate, cut to ``k`` and explain
    (the pipeline's read lock is held)."""
    items = np.asarray(picked.items, np.int32)
    scores = np.asarray(picked.scores, np.float32)
    routes = np.asarray(picked.routes, object)
    if demote and len(items):
        order = np.argsort(np.isin(items, list(demote)), kind="stable")
        items, scores, routes = items[order], scores[order], routes[order]
    info = None
    if chain is not None and len(items):
        from lumenrec.rerank import Candidates

        route_of = dict(zip(items.tolist(), routes.tolist(), strict=True))
        cand = Candidates(items, scores, _history_items(pipeline, picked))
        out = chain.rerank(cand, k, pipeline.features())
        items = np.asarray(out.items, np.int32)
        scores = np.asarray(out.scores, np.float32)
        routes = np.array([route_of.get(int(i), "rule") for i in items], object)
        stages = getattr(chain, "stages", (chain,))
        info = {
            "stages": [str(getattr(s, "name", type(s).__name__)) for s in stages],
            "feasible": bool(out.feasible),
            "notes": list(out.notes),
        }
    served = None
    if explore is not None and len(items):
        items, scores, routes, served = _explore(
            pipeline, picked, explore, items, scores, routes, k
        )
    items, scores, routes = items[:k], scores[:k], routes[:k]
    listing = pipeline._listing(items, scores, routes)
    if explain and len(items):
        reasons = pipeline.explainer().explain(
            items, routes, user=picked.user, history=picked.history, profile_text=picked.profile
        )
        explainer = pipeline.explainer()

        def restate(reason: Any, **changes: Any) -> Any:
            """The reason with ``changes`` and its sentence written again for them."""
            changed = replace(reason, **changes)
            return replace(changed, sentence=explainer.sentences(changed, ""))

        if picked.setting:
            reasons = [restate(r, method="setting", evidence=()) for r in reasons]
        if served is not None:
            note = f"explored by {served['policy']}"
            reasons = [
                restate(r, kind="exploration", notes=(*r.notes, note)) if flag else r
                for r, flag in zip(reasons, served["exploratory"], strict=True)
            ]
        for entry, reason in zip(listing, reasons, strict=True):
            entry["reason"] = reason.to_dict()
    if served is not None:
        for entry, prop, flag in zip(
            listing, served["propensities"], served["exploratory"], strict=True
        ):
            entry["propensity"] = float(prop)
            entry["exploratory"] = bool(flag)
    return Ranked(listing, picked.fallback, picked.fold_in, picked.known_user, info, served)


def policy_context(pipeline: RecommendPipeline, picked: Picked, items: np.ndarray) -> Any:
    """The language-model context of a request: candidates' item embeddings and the user's
    vector (mean of their history items' embeddings, else their profile text's embedding)."""
    from lumenrec.explore import PolicyContext

    emb = getattr(pipeline.text_model(), "item_embeddings_", None)
    if emb is None or len(emb) < pipeline.n_items:
        return None
    history = _history_items(pipeline, picked)
    history = history[history < len(emb)]
    user = emb[history].mean(axis=0) if len(history) else None
    if user is None and picked.profile:
        encoder = pipeline.explainer()._text_encoder()
        user = None if encoder is None else np.asarray(encoder.encode([picked.profile]))[0]
    return PolicyContext(
        user_vector=None if user is None else np.asarray(user, np.float32),
        item_vectors=np.ascontiguousarray(emb[items], dtype=np.float32),
    )


def _explore(
    pipeline: RecommendPipeline,
    picked: Picked,
    explore: Explore,
    items: np.ndarray,
    scores: np.ndarray,
    routes: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    context = policy_context(pipeline, picked, items)
    slate = explore.policy.select(
        items, scores, min(k, len(items)), rng=explore.rng, context=context
    )
    where = {int(i): j for j, i in enumerate(items.tolist())}
    order = np.array([where[int(i)] for i in slate.items], dtype=np.int64)
    served = {
        "policy": explore.policy.name,
        "propensities": np.asarray(slate.propensities, np.float64),
        "exploratory": np.asarray(slate.exploratory, bool),
        "propensity_method": slate.method,
        "standard_error": float(slate.standard_error),
        "candidates": [
            [str(i), float(v)] for i, v in zip(pipeline.items.lookup(items), scores, strict=True)
        ],
        "context": context,
        "item_index": items[order],
    }
    return items[order], scores[order], routes[order], served
