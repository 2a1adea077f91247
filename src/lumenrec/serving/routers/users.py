"""``POST /users`` (profiles) and ``DELETE /users/{user_id}`` (erasure, idempotent)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from lumenrec.serving.routers._deps import ServiceDep, WriteAccess
from lumenrec.serving.schemas import UserId, UsersIn

__all__ = ["router"]

router = APIRouter(tags=["users"], dependencies=[WriteAccess])


@router.post("/users")
def post_users(body: UsersIn, service: ServiceDep) -> dict:
    """Insert or replace profiles (text + attributes); used for users the model does not know."""
    return {"updated": service.upsert_users([u.model_dump() for u in body.users])}


@router.delete("/users/{user_id}")
def delete_user(
    user_id: Annotated[UserId, Path(description="External user id.")], service: ServiceDep
) -> dict:
    """Erase the user: events, profile, controls, served-list logs and cached lists at once,
    and their effect on the model: exact models (popularity, ItemKNN, EASE, the content
    profile; ALS item factors re-solved without them) publish a version without the user that
    is served at once; SGD/neural parts answer ``model_effect: "pending_retrain"`` with
    ``pending_retrain.retrain_due_by``. An audit row keeps only a salted hash of the id.
    Repeating it (or an unknown user) answers with ``model_effect: "none"``."""
    return service.delete_user(user_id)
