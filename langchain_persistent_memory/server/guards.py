"""What stands before every route: the API key (which decides the tenant), the tenant's
request rate, and the request's size.

Size is checked in a plain ASGI middleware, before FastAPI parses anything, so an oversized
body is refused with 413 without being held in memory beyond the limit.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..errors import ServiceError
from ..wire import error_body
from .config import DEFAULT_TENANT, ServiceConfig, key_digest

__all__ = ["BodyLimit", "RateLimiter", "tenant_for"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def tenant_for(config: ServiceConfig, authorization: str | None) -> str:
    """The tenant an ``Authorization`` header names.

    Raises:
        ServiceError: 401 without a Bearer key, 403 for a key nobody was given.
    """
    if not config.auth_required:
        return DEFAULT_TENANT
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ServiceError(401, "unauthorized",
                           "missing API key: send 'Authorization: Bearer <key>'")
    tenant = config.keys.get(key_digest(key.strip()))
    if tenant is None:
        raise ServiceError(403, "forbidden", "unknown API key")
    return tenant


class RateLimiter:
    """A token bucket per tenant, in this process: ``rate`` requests per second with bursts
    of twice that. With N worker processes a tenant gets up to N times the rate."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, tenant: str) -> None:
        """Take one token, or raise 429."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(tenant, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[tenant] = (tokens, now)
                raise ServiceError(429, "rate_limited",
                                   f"more than {self.rate:g} requests per second for this "
                                   "tenant; retry shortly")
            self._buckets[tenant] = (tokens - 1, now)


class BodyLimit:
    """ASGI middleware: 413 when a body exceeds its limit (``/v1/import`` has its own).

    The body is read here (up to the limit) and replayed to the app, so chunked uploads
    without a Content-Length are bounded too.
    """

    def __init__(self, app: ASGIApp, *, limit: int, import_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.import_limit = import_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.import_limit if scope["path"] == "/v1/import" else self.limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()
    return replayed


async def _too_large(send: Send, limit: int) -> None:
    error = ServiceError(413, "payload_too_large",
                         f"request body is larger than {limit:,} bytes")
    payload = json.dumps(error_body(error)).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
