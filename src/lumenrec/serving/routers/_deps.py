"""Dependencies shared by the routers: the service and the write-key check (documented in OpenAPI)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from lumenrec.serving.auth import API_KEY_HEADER
from lumenrec.serving.service import Service

__all__ = ["ServiceDep", "WriteAccess", "get_service", "require_write"]

_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Write API key.")


def get_service(request: Request) -> Service:
    """The app's :class:`~lumenrec.serving.service.Service`."""
    return request.app.state.service


def require_write(request: Request, _key: Annotated[str | None, Security(_api_key)]) -> None:
    """Allow only requests the guard middleware authenticated with the write key."""
    role = request.scope.get("state", {}).get("role")
    if role is None:
        raise HTTPException(
            401,
            "missing or invalid API key",
            headers={"WWW-Authenticate": 'APIKey header="X-API-Key"'},
        )
    if role != "write":
        raise HTTPException(403, "this API key is read-only")


ServiceDep = Annotated[Service, Depends(get_service)]
WriteAccess = Depends(require_write)
