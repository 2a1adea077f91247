"""``POST /items`` (new or updated items, embedded at once) and ``DELETE /items/{item_id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from lumenrec.serving.routers._deps import ServiceDep, WriteAccess
from lumenrec.serving.schemas import ItemId, ItemsIn, ItemsOut

__all__ = ["router"]

router = APIRouter(tags=["items"], dependencies=[WriteAccess])


@router.post("/items", response_model=ItemsOut)
def post_items(body: ItemsIn, service: ServiceDep) -> dict:
    """Add or update items; new ones are embedded from their text and recommendable at once.

    Models that cannot add items without a refit list them under ``pending``.
    """
    return service.upsert_items([i.model_dump() for i in body.items])


@router.delete("/items/{item_id}", status_code=204)
def delete_item(
    item_id: Annotated[ItemId, Path(description="External item id.")], service: ServiceDep
) -> Response:
    """Never recommend the item again (tombstone; removed from the data at the next retrain)."""
    service.delete_item(item_id)
    return Response(status_code=204)
