"""``/dashboard``: what the service is doing and why it recommends what it does, in a browser.

Server-rendered HTML (:mod:`lumenrec.serving.dashboard_pages`) with the app's own stylesheet
and script (:mod:`lumenrec.serving.dashboard_assets`); nothing is fetched from anywhere else,
and every page carries a strict Content-Security-Policy.

Pages (all ``GET``; the dashboard itself changes nothing):

- ``/dashboard``: health, model version and registry history, live request/feedback rates
  and latency percentiles (the counters behind ``/metrics``), refreshed every 5 s;
- ``/dashboard/search?q=``: catalogue search by title words and by meaning (the query is
  embedded by the pipeline's text model and compared with the item embeddings);
- ``/dashboard/user?user_id=&k=&diversity=&calibration=&fairness=&explore=``: a user's
  history and recommendations with reasons and routes, under the per-request knobs of
  ``GET /recommend``, next to the plain list. Exploration is previewed: the list is drawn by
  the policy but neither logged nor learned from.

Read access: an ``X-API-Key`` header with the read or write key, or a session cookie from
``/dashboard/login`` (the page's login form sends the key once in that header; the cookie
holds a random token that only allows reading the dashboard), or, when reads do not require
a key (``require_read_key`` off), a request from a loopback address. Changes (the "not
interested" buttons) call the existing write endpoints with the write key typed on the page;
it is sent in a header, never put in a URL or a cookie.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from lumenrec.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    LumenError,
    NotFittedError,
    UnknownIdError,
)
from lumenrec.serving import dashboard_data as data
from lumenrec.serving import dashboard_pages as pages
from lumenrec.serving.dashboard_assets import DASHBOARD_CSS, DASHBOARD_JS
from lumenrec.serving.errors import ServiceError
from lumenrec.serving.settings import is_loopback
from lumenrec.serving.store import StoreError

__all__ = ["CSP", "DashboardState", "router"]

#: Content-Security-Policy of every dashboard answer: only the app's own script and styles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
COOKIE = "lumenrec_dashboard"
SESSION_TTL_S = 8 * 3600
MAX_SESSIONS = 256
QUERY_MAX = 200
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UnknownIdError, 404),
    (NotFittedError, 503),
    (StoreError, 503),
    (ArtifactError, 409),
    (DataError, 422),
    (ConfigError, 422),
)


class DashboardState:
    """Per-app dashboard state (``app.state.dashboard``): login sessions and the query encoder.

    Sessions are random tokens kept as SHA-256 digests with an expiry, at most
    ``MAX_SESSIONS`` (the oldest is dropped first); they live in memory, so a restart logs
    everyone out.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: OrderedDict[bytes, float] = OrderedDict()
        self._encoder: tuple[Any, Any] | None = None

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "replace")).digest()

    def open_session(self) -> str:
        """A new session token (valid for ``SESSION_TTL_S``)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[self._digest(token)] = time.monotonic() + SESSION_TTL_S
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return token

    def valid(self, token: str | None) -> bool:
        if not token or len(token) > 128:
            return False
        digest = self._digest(token)
        with self._lock:
            expiry = self._sessions.get(digest)
            if expiry is None:
                return False
            if expiry < time.monotonic():
                del self._sessions[digest]
                return False
            return True

    def close_session(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(self._digest(token), None)

    def encoder(self, text_model: Any) -> Any:
        """The text model's encoder, built once per text model (a reload builds a new one).

        The encoder is made from the model's spec without its embedding cache, so search
        queries are never written to disk.
        """
        with self._lock:
            if self._encoder is not None and self._encoder[0] is text_model:
                return self._encoder[1]
        spec = getattr(text_model, "encoder", None)
        if isinstance(spec, str):
            from lumenrec.encoders.factory import make_encoder

            encoder = make_encoder(spec)
        else:
            encoder = text_model.make_encoder()
        with self._lock:
            self._encoder = (text_model, encoder)
        return encoder


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.dashboard = DashboardState()
    yield


router = APIRouter(prefix="/dashboard", include_in_schema=False, lifespan=_lifespan)


# -- access ------------------------------------------------------------------------------------
def _state(request: Request) -> DashboardState:
    state = getattr(request.app.state, "dashboard", None)
    if state is None:
        msg = "the dashboard is not started (the app's lifespan has not run)"
        raise NotFittedError(msg)
    return state


def _access(request: Request) -> str | None:
    """How this request may read the dashboard (``key``, ``session``, ``loopback``) or None."""
    if request.scope.get("state", {}).get("role") in ("read", "write"):
        return "key"
    state = getattr(request.app.state, "dashboard", None)
    if state is not None and state.valid(request.cookies.get(COOKIE)):
        return "session"
    settings = request.app.state.settings
    host = request.client.host if request.client else ""
    if not settings.require_read_key and host and is_loopback(host):
        return "loopback"
    return None


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


def _denied(request: Request) -> HTMLResponse:
    presented = request.headers.get("x-api-key")
    reason = (
        "That API key is not valid."
        if presented
        else "Reading the dashboard needs the read key (or the write key)"
        + ("." if request.app.state.settings.require_read_key else ", or a loopback address.")
    )
    return _html(pages.login_page(reason), 401)


def _failure(err: Exception, access: str) -> HTMLResponse:
    """The service's error mapping, as an HTML page (never a 500 for a known error)."""
    if isinstance(err, ServiceError):
        return _html(pages.error_page(err.status, err.detail, access=access), err.status)
    status = next((code for cls, code in _STATUS if isinstance(err, cls)), 422)
    return _html(pages.error_page(status, str(err), access=access), status)


def _page(request: Request, build: Any) -> HTMLResponse:
    """Check read access, then render ``build(access)``; LumenRec errors become error pages."""
    access = _access(request)
    if access is None:
        return _denied(request)
    try:
        return _html(build(access))
    except (LumenError, ServiceError) as err:
        return _failure(err, access)


def _live_html(request: Request) -> str:
    metrics = request.app.state.metrics
    return pages.live_panel(metrics.live(), metrics.counters(), metrics.request_totals())


# -- routes ------------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    """Health, model registry, live rates and the entry forms."""

    def build(access: str) -> str:
        state = request.app.state
        return pages.overview_page(
            data.health(state.service, state.settings, state.metrics),
            data.registry_info(state.service),
            _live_html(request),
            access=access,
        )

    return _page(request, build)


@router.get("/live", response_class=HTMLResponse)
def live(request: Request) -> HTMLResponse:
    """The live panel alone (polled by the overview page)."""
    return _page(request, lambda _access: _live_html(request))


@router.get("/search", response_class=HTMLResponse)
def search(request: Request) -> HTMLResponse:
    """Catalogue search by title words and by meaning."""

    def build(access: str) -> str:
        query = " ".join((request.query_params.get("q") or "").split())
        if len(query) > QUERY_MAX or not query.isprintable():
            msg = f"q must be at most {QUERY_MAX} printable characters"
            raise DataError(msg)
        k = data.int_param(request.query_params.get("k"), "k", 20, data.K_LIMIT)
        state = _state(request)
        found = data.search_catalogue(request.app.state.service, state.encoder, query, k)
        return pages.search_page(found, access=access)

    return _page(request, build)


@router.get("/user", response_class=HTMLResponse)
def user(request: Request) -> HTMLResponse:
    """A user's history and recommendations (reasons, routes) under the per-request knobs."""

    def build(access: str) -> str:
        options = data.explore_options(request.app.state.settings)
        knobs = data.parse_knobs(request.query_params, options)
        view = None
        if knobs["user_id"]:
            view = data.user_view(request.app.state.service, knobs)
        return pages.user_page(knobs, options, view, access=access)

    return _page(request, build)


@router.get("/login")
def login(request: Request) -> Response:
    """Trade a key sent in the ``X-API-Key`` header for a read-only session cookie."""
    role = request.scope.get("state", {}).get("role")
    if role not in ("read", "write"):
        detail = "invalid API key" if request.headers.get("x-api-key") else "missing API key"
        return JSONResponse({"detail": detail}, status_code=401, headers=_HEADERS)
    token = _state(request).open_session()
    response = Response(status_code=204, headers=_HEADERS)
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_TTL_S,
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/logout")
def logout(request: Request) -> Response:
    """End the session (the cookie is cleared and its token forgotten)."""
    state = getattr(request.app.state, "dashboard", None)
    if state is not None:
        state.close_session(request.cookies.get(COOKIE))
    response = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
    return response


@router.get("/dashboard.css")
def stylesheet() -> Response:
    """The dashboard's stylesheet (public: it holds no data)."""
    return Response(DASHBOARD_CSS, media_type="text/css", headers=_asset_headers())


@router.get("/dashboard.js")
def script() -> Response:
    """The dashboard's script (public: it holds no data)."""
    return Response(DASHBOARD_JS, media_type="text/javascript", headers=_asset_headers())


def _asset_headers() -> dict[str, str]:
    return {**_HEADERS, "Cache-Control": "public, max-age=300"}
