"""Dependencies shared by the routers: the service and the write-key check (documented in OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.responses import Response
from fastapi.security import APIKeyHeader

from lumenrec.serving.auth import API_KEY_HEADER
from lumenrec.serving.service import Service

__all__ = ["ServiceDep", "WriteAccess", "fast_json", "get_service", "require_write"]

from lumenrec.serving._json import dumps as _dumps


def fast_json(body: Any, status_code: int = 200) -> Response:
    """A JSON response built without FastAPI's response-model pass (for hot read paths)."""
    return Response(_dumps(body), status_code=status_code, media_type="application/json")


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
