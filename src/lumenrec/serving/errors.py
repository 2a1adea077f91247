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


#: LumenRec error class → HTTP status (most specific first).
_STATUS: dict[type[Exception], int] = {
    UnknownIdError: 404,
    NotFittedError: 503,
    StoreError: 503,
    ArtifactError: 409,
    DataError: 422,
    ConfigError: 422,
}


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _json(422, errors, request)

    # Starlette picks the handler of the nearest class in the exception's MRO, so
    # UnknownIdError (a DataError) gets 404 while other DataErrors get 422.
    async def _mapped(request: Request, exc: Exception) -> JSONResponse:
        status = next(code for cls, code in _STATUS.items() if isinstance(exc, cls))
        return _json(status, str(exc), request)

    for cls in _STATUS:
        app.add_exception_handler(cls, _mapped)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return _json(exc.status, exc.detail, request)
