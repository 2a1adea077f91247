"""The one error → HTTP mapping of the service; every error body is ``{"detail": ...}``.

=========================  ======  =====================================================
exception                  status  meaning
=========================  ======  =====================================================
RequestValidationError     422     field errors: ``[{"loc", "msg", "type"}]`` (no input echo)
UnknownIdError             404     unknown user (strict), item or model version
DataError, ConfigError     422     well-formed request the service cannot apply
ArtifactError              409     a model version was rejected; the old one keeps serving
ServiceError               its own limits (413), conflicts (409)
NotFittedError             503     no model loaded yet
StoreError                 503     event store unavailable (disk full, read-only)
anything else              500     ``{"detail": "internal error", "request_id"}`` (middleware)
=========================  ======  =====================================================
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lumenrec.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    NotFittedError,
    UnknownIdError,
)
from lumenrec.serving.store import StoreError

__all__ = ["ServiceError", "install_error_handlers"]

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An HTTP-level refusal with a status and a one-line detail (e.g. 413 batch too large)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _json(status: int, detail: object, request: Request) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _json(422, errors, request)

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, exc: UnknownIdError) -> JSONResponse:
        return _json(404, str(exc), request)

    @app.exception_handler(NotFittedError)
    async def _not_ready(request: Request, exc: NotFittedError) -> JSONResponse:
        return _json(503, str(exc), request)

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        return _json(503, str(exc), request)

    @app.exception_handler(ArtifactError)
    async def _artifact(request: Request, exc: ArtifactError) -> JSONResponse:
        return _json(409, str(exc), request)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        return _json(422, str(exc), request)

    @app.exception_handler(ConfigError)
    async def _config(request: Request, exc: ConfigError) -> JSONResponse:
        return _json(422, str(exc), request)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return _json(exc.status, exc.detail, request)
