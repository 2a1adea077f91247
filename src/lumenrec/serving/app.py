"""create_app(settings): the FastAPI application of ``lumenrec serve`` (state on ``app.state``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from lumenrec.pipeline import RecommendPipeline
from lumenrec.serving.auth import KeyRing, RateLimiter
from lumenrec.serving.errors import install_error_handlers
from lumenrec.serving.metrics import Metrics
from lumenrec.serving.middleware import GuardMiddleware
from lumenrec.serving.routers import ROUTERS
from lumenrec.serving.service import Service
from lumenrec.serving.settings import ServiceSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_DESCRIPTION = """Recommendations, feedback and catalogue updates over HTTP.

Writes (`POST`, `DELETE`, `/admin`) need the write API key in the `X-API-Key` header. Errors are
JSON `{"detail": ...}`; validation errors list the field path of each problem."""


def create_app(settings: ServiceSettings, *, pipeline: RecommendPipeline | None = None) -> FastAPI:
    """Build the app: routers, the error mapping and the guard middleware.

    The lifespan opens the event store and the model registry, loads the current model version,
    and pins BLAS thread pools to ``settings.blas_threads`` (restored at shutdown). Plain API
    keys are hashed here and dropped from the settings the app keeps.

    Parameters
    ----------
    settings : ServiceSettings
    pipeline : RecommendPipeline, optional
        An already loaded (and checked) current version, so the CLI can validate the model
        directory before binding without loading it twice.

    Returns
    -------
    FastAPI
    """
    from lumenrec import __version__

    keyring = KeyRing.from_settings(settings)
    kept = settings.model_copy(update={"api_key": None, "read_api_key": None})
    metrics = Metrics()
    service = Service(kept, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from threadpoolctl import ThreadpoolController

        service.start(pipeline)
        # after the model load, so libraries it pulled in (scipy's BLAS) are limited too
        controller = ThreadpoolController()
        limiter = controller.limit(limits=kept.blas_threads)
        service.pin_threads(controller)
        poller = None
        if kept.reload_interval_s > 0:
            poller = asyncio.create_task(_poll_pointer(service, kept.reload_interval_s))
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            service.stop()
            limiter.restore_original_limits()

    app = FastAPI(
        title="LumenRec",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = kept
    app.state.service = service
    app.state.metrics = metrics
    app.state.keyring = keyring
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(
        GuardMiddleware,
        keyring=keyring,
        limiter=RateLimiter(kept.rate_limit, kept.rate_burst),
        metrics=metrics,
        max_body_bytes=kept.max_body_bytes,
        require_read_key=kept.require_read_key,
    )
    return app


async def _poll_pointer(service: Service, interval: float) -> None:
    """Reload when the registry's ``current`` pointer names another version (opt-in)."""
    tried: str | None = None
    while True:
        await asyncio.sleep(interval)
        registry, pipeline = service.registry, service.pipeline
        if registry is None:
            continue
        try:
            current = registry.current()
        except Exception:  # a corrupt pointer is logged by the reload below
            current = None
        serving: Any = None if pipeline is None else pipeline.version
        if current and current != serving and current != tried:
            tried = current
            try:
                await asyncio.to_thread(service.reload, None)
            except Exception as err:
                log.error("automatic reload of %s failed: %s", current, err)
