"""Admin: ``POST /admin/reload`` (hot swap / publish a version), ``POST /admin/retrain``, versions."""

from __future__ import annotations

from fastapi import APIRouter

from lumenrec.serving.routers._deps import ServiceDep, WriteAccess
from lumenrec.serving.schemas import ReloadIn, ReloadOut, RetrainOut

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[WriteAccess])


@router.post("/reload", response_model=ReloadOut)
def reload(service: ServiceDep, body: ReloadIn | None = None) -> dict:
    """Load a version (default: the registry's current one), make it current and swap it in.

    404 for an unknown version; 409 when it is corrupt or incompatible — the old model keeps
    serving and ``/health/ready`` reports ``last_reload_error``.
    """
    return service.reload(None if body is None else body.version)


@router.post("/retrain", response_model=RetrainOut)
def retrain(service: ServiceDep) -> dict:
    """Refit the serving configuration on its data plus stored feedback (deleted users and
    items removed), publish the result as a new version and swap it in."""
    return service.retrain()


@router.get("/versions")
def versions(service: ServiceDep) -> dict:
    """Published versions, the current pointer and the version serving."""
    registry = service.registry
    return {
        "versions": [] if registry is None else registry.versions(),
        "current": None if registry is None else registry.current(),
        "serving": None if service.pipeline is None else service.pipeline.version,
    }
