"""GuardMiddleware: request ids, rate limits, API-key roles, body limits, metrics, error hygiene.

Order per request: request id → key role → token bucket (429 + Retry-After) → auth for writes
(401/403, before anything looks at the body, so a cross-site form post gets 401) → body size
(413) → Content-Type (415) → JSON syntax (400) → the app. Any exception escaping the app
becomes ``500 {"detail": "internal error", "request_id": ...}``, logged with the traceback
but never sent to the client.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Any

import anyio.to_thread

from lumenrec.serving.auth import KeyRing, RateLimiter
from lumenrec.serving.metrics import Metrics

__all__ = ["GuardMiddleware"]

log = logging.getLogger(__name__)

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_OPEN_PREFIXES = ("/health/", "/metrics", "/docs", "/openapi.json")
# GETs here check read access themselves (key header, session cookie or loopback; see
# serving/dashboard.py), since a browser cannot send X-API-Key; writes are unaffected
_SELF_GUARDED_READS = ("/dashboard",)
Scope = dict[str, Any]


class GuardMiddleware:
    """Pure ASGI middleware (see module docstring).

    Parameters
    ----------
    app : ASGI app
    keyring : KeyRing
    limiter : RateLimiter
    metrics : Metrics
    max_body_bytes : int
    require_read_key : bool
    """

    def __init__(
        self,
        app: Any,
        *,
        keyring: KeyRing,
        limiter: RateLimiter,
        metrics: Metrics,
        max_body_bytes: int,
        require_read_key: bool,
    ) -> None:
        self.app = app
        self.keyring = keyring
        self.limiter = limiter
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.require_read_key = require_read_key

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = {"code": 500, "started": False}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._guarded(scope, receive, send_wrapper, state)
        except Exception:
            log.exception("internal error (request_id=%s)", request_id)
            if not status["started"]:
                await _send_json(
                    send_wrapper, 500, {"detail": "internal error", "request_id": request_id}
                )
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                scope["method"], template, status["code"], time.perf_counter() - start
            )

    async def _guarded(self, scope: Scope, receive: Any, send: Any, state: dict) -> None:
        method = scope["method"]
        path = scope.get("path", "")
        headers = _headers(scope)
        presented = headers.get("x-api-key")
        role = None
        if presented:
            role = self.keyring.cached_role(presented)
            if role is None:
                role = await anyio.to_thread.run_sync(self.keyring.role, presented)
        state["role"] = role
        client = (
            "key:" + hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()[:16]
            if role
            else "addr:" + str((scope.get("client") or ("?", 0))[0])
        )
        wait = self.limiter.acquire(client)
        if wait > 0:
            self.metrics.inc("lumenrec_rate_limited_total")
            retry = RateLimiter.retry_after(wait)
            await _send_json(
                send,
                429,
                {"detail": f"rate limit exceeded; retry after {retry} s"},
                [(b"retry-after", str(retry).encode())],
            )
            return
        open_path = path.startswith(_OPEN_PREFIXES)
        needs_write = method in _WRITE_METHODS and not open_path
        needs_read = (
            self.require_read_key and not open_path and not path.startswith(_SELF_GUARDED_READS)
        )
        if (needs_write or needs_read) and role is None:
            detail = "invalid API key" if presented else "missing API key (send it as X-API-Key)"
            await _send_json(
                send, 401, {"detail": detail}, [(b"www-authenticate", b'APIKey header="X-API-Key"')]
            )
            return
        if needs_write and role != "write":
            await _send_json(send, 403, {"detail": "this API key is read-only"})
            return
        if method not in _WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        body = await self._read_body(receive, headers, send)
        if body is None:
            return
        if body:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json" and not ctype.endswith("+json"):
                shown = ctype[:60] or "none"
                await _send_json(
                    send, 415, {"detail": f"Content-Type must be application/json (got {shown})"}
                )
                return
            try:
                json.loads(body)
            except (ValueError, UnicodeDecodeError) as err:
                detail = f"request body is not valid JSON: {str(err)[:120]}"
                await _send_json(send, 400, {"detail": detail})
                return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Any, headers: dict[str, str], send: Any) -> bytes | None:
        limit = self.max_body_bytes
        too_big = {"detail": f"request body exceeds the limit of {_size(limit)}"}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, too_big)
            return None
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                await _send_json(send, 413, too_big)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n} bytes"


async def _send_json(
    send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
