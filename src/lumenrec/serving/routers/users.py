"""``POST /users`` (profiles) and ``DELETE /users/{user_id}`` (erasure, idempotent)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from lumenrec.serving.routers._deps import ServiceDep, WriteAccess
from lumenrec.serving.schemas import UserId, UsersIn

__all__ = ["router"]

router = APIRouter(tags=["users"], dependencies=[WriteAccess])


@router.post("/users")
def post_users(body: UsersIn, service: ServiceDep) -> dict:
    """Insert or replace profiles (text + attributes); used for users the model does not know."""
    return {"updated": service.upsert_users([u.model_dump() for u in body.users])}


@router.delete("/users/{user_id}", status_code=204)
def delete_user(
    user_id: Annotated[UserId, Path(description="External user id.")], service: ServiceDep
) -> Response:
    """Erase the user's events, profile and cached lists; their training row is ignored until
    the next retrain drops it. An audit row keeps only a salted hash of the id. Repeat: 204."""
    service.delete_user(user_id)
    return Response(status_code=204)
