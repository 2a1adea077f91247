"""User controls: ``POST /users/{id}/not-interested``, ``PUT /users/{id}/settings`` (write key)
and ``GET /users/{id}/profile`` (the user's own view of what drives their list)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from lumenrec.serving.routers._deps import ServiceDep, WriteAccess
from lumenrec.serving.schemas import NotInterestedIn, SettingsIn, UserId

__all__ = ["router"]

router = APIRouter(tags=["user controls"])
UserPath = Annotated[UserId, Path(description="External user id.")]


@router.post("/users/{user_id}/not-interested", dependencies=[WriteAccess])
def not_interested(user_id: UserPath, body: NotInterestedIn, service: ServiceDep) -> dict:
    """The item is gone from the user's next list and its nearest neighbours are demoted; a
    category or brand removes all its items. Stored, so it survives a restart."""
    return service.not_interested(user_id, body.kind, body.value, body.undo)


@router.put("/users/{user_id}/settings", dependencies=[WriteAccess])
def settings(user_id: UserPath, body: SettingsIn, service: ServiceDep) -> dict:
    """Turn personalisation off (popular items for everyone) or back on."""
    return service.set_personalised(user_id, body.personalised)


@router.get("/users/{user_id}/profile")
def profile(user_id: UserPath, service: ServiceDep) -> dict:
    """History, interest summary, profile text, controls and the route of the next list."""
    return service.profile(user_id)
