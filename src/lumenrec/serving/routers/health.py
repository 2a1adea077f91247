"""``GET /health/live``, ``GET /health/ready`` and ``GET /metrics`` (open, no key needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from lumenrec.serving.metrics import CONTENT_TYPE
from lumenrec.serving.routers._deps import ServiceDep
from lumenrec.serving.schemas import ReadyOut

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health/live")
def live() -> dict:
    """The process answers."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
def ready(service: ServiceDep) -> JSONResponse:
    """200 when a model is loaded (503 otherwise); ``last_reload_error`` names a rejected version."""
    from threadpoolctl import threadpool_info

    service.pin_threads()  # what a request thread of this service runs with
    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    pipeline = service.pipeline
    body = ReadyOut(
        ready=pipeline is not None,
        model_version=None if pipeline is None else pipeline.version,
        last_reload_error=service.last_reload_error,
        blas_threads=max(blas) if blas else None,
        retrieval=None if pipeline is None else pipeline.retrieval,
    )
    return JSONResponse(body.model_dump(), status_code=200 if pipeline is not None else 503)


@router.get("/metrics", response_class=Response)
def metrics(service: ServiceDep) -> Response:
    """Prometheus text format: request latency histogram, model version, feedback, fallbacks."""
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)
