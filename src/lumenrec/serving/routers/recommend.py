"""``GET /recommend/{user_id}`` and ``GET /similar/{item_id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from lumenrec.serving.routers._deps import ServiceDep, fast_json
from lumenrec.serving.schemas import K_MAX, ItemId, KParam, RecommendOut, SimilarOut, UserId

__all__ = ["router"]

router = APIRouter(tags=["recommendations"])

KQuery = Annotated[KParam, Query(ge=1, le=K_MAX, description=f"List length, 1–{K_MAX}.")]


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
) -> Response:
    """Top-k items for a user with each item's score, rank and route (``cf``/``text``/``popular``).

    Users unknown to the model are served by fold-in of their stored feedback, else their
    profile text (``fallback: "text"``), else popularity (``fallback: "popular"``).
    """
    # the hot path: the service builds exactly the documented shape, so it is serialised
    # directly (orjson when installed) instead of being validated again by the response model
    return fast_json(service.recommend(user_id, k, list(exclude or []), strict))


@router.get("/similar/{item_id}", response_model=SimilarOut)
def similar(
    service: ServiceDep,
    item_id: Annotated[ItemId, Path(description="External item id.")],
    k: KQuery = 10,
) -> dict:
    """Items most similar to ``item_id`` (collaborative view for warm items, else text)."""
    return service.similar(item_id, k)
