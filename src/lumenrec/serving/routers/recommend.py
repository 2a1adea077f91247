"""``GET /recommend/{user_id}`` and ``GET /similar/{item_id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from lumenrec.serving.routers._deps import ServiceDep
from lumenrec.serving.schemas import (
    K_MAX,
    ExplainOut,
    ItemId,
    KParam,
    RecommendOut,
    SimilarOut,
    UserId,
)

__all__ = ["router"]

router = APIRouter(tags=["recommendations"])

KQuery = Annotated[KParam, Query(ge=1, le=K_MAX, description=f"List length, 1–{K_MAX}.")]
RerankQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Re-rankers with weights in [0, 1], e.g. 'mmr=0.3,calibration=0.5'.",
    ),
]
LambdaQuery = Annotated[
    float | None,
    Query(ge=0, le=1, description="Shortcut for one re-ranker's weight in [0, 1]."),
]


def rerank_spec(
    rerank: str | None, diversity: float | None, calibration: float | None, fairness: float | None
) -> str | None:
    """One spec string from ``rerank`` and the diversity/calibration/fairness shortcuts."""
    parts = [rerank] if rerank else []
    for name, value in (("mmr", diversity), ("calibration", calibration), ("provider", fairness)):
        if value is not None:
            parts.append(f"{name}={value:g}")
    return ",".join(parts) or None


@router.get("/recommend/{user_id}", response_model=RecommendOut)
def recommend(
    service: ServiceDep,
    user_id: Annotated[UserId, Path(description="External user id (1–256 printable chars).")],
    k: KQuery = 10,
    exclude: Annotated[
        list[ItemId] | None, Query(max_length=K_MAX, description="Item ids never returned.")
    ] = None,
    strict: Annotated[
        bool, Query(description="404 for a user with no training row, feedback or profile.")
    ] = False,
    rerank: RerankQuery = None,
    diversity: LambdaQuery = None,
    calibration: LambdaQuery = None,
    fairness: LambdaQuery = None,
    explain: Annotated[bool, Query(description="Attach a reason to every item.")] = True,
    explore: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Exploration policy for this request, e.g. 'thompson' or "
            "'epsilon-greedy(epsilon=0.1)'; items then carry propensity and exploratory.",
        ),
    ] = None,
) -> Response:
    """Top-k items for a user with each item's score, rank and route (``cf``/``text``/``popular``).

    Users unknown to the model are served by fold-in of their stored feedback, else their
    profile text (``fallback: "text"``), else popularity (``fallback: "popular"``).
    """
    # the hot path: the service builds exactly the documented shape, so it is serialised
    # directly (orjson when installed) instead of being validated again by the response model
    spec = rerank_spec(rerank, diversity, calibration, fairness)
    body = service.recommend_json(user_id, k, list(exclude or []), strict, spec, explain, explore)
    return Response(body, media_type="application/json")


@router.get("/explain/{user_id}/{item_id}", response_model=ExplainOut)
def explain(
    service: ServiceDep,
    user_id: Annotated[UserId, Path(description="External user id.")],
    item_id: Annotated[ItemId, Path(description="A recommended item's id.")],
    k: KQuery = 10,
    rerank: RerankQuery = None,
) -> dict:
    """Why ``item_id`` is in the user's top-``k``: reason kind, evidence with shares, sentence.

    404 when the item is not in the user's current top-``k``.
    """
    return service.explain(user_id, item_id, k, rerank)


@router.get("/similar/{item_id}", response_model=SimilarOut)
def similar(
    service: ServiceDep,
    item_id: Annotated[ItemId, Path(description="External item id.")],
    k: KQuery = 10,
) -> dict:
    """Items most similar to ``item_id`` (collaborative view for warm items, else text)."""
    return service.similar(item_id, k)
