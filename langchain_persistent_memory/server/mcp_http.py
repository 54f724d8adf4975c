"""MCP over streamable HTTP at ``/mcp`` inside the REST app, behind the same API keys.

An ASGI guard checks ``Authorization: Bearer <key>`` (→ tenant) and ``X-User-Id`` (→ user)
before the MCP SDK sees the request, answering 401/403/400 in the service's JSON error
shape; the tools then read the same two headers from their context. Stateless JSON mode:
any worker process can answer any call.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings

from ..errors import PersistentMemoryError, ServiceError
from ..store import MemoryStore
from ..validation import check_user_id
from ..wire import error_body
from .guards import Receive, Scope, Send, tenant_for
from .mcp_tools import build_mcp
from .state import ServiceState

__all__ = ["HOST_ENV", "USER_HEADER", "MCPMount", "mount_mcp"]

USER_HEADER = "x-user-id"
HOST_ENV = "LPM_SERVE_HOST"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class MCPMount:
    """The ASGI app to mount at ``/mcp`` and the lifespan the SDK's session manager needs."""

    asgi: Any
    manager: Any

    @asynccontextmanager
    async def lifespan_context(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield


def _identity(state: ServiceState, headers: dict[str, str]) -> tuple[str, str]:
    """(tenant, user) of an MCP request; the same key check as every REST route."""
    tenant = tenant_for(state.config, headers.get("authorization"))
    state.limiter.check(tenant)
    user = headers.get(USER_HEADER)
    if user is None:
        raise ServiceError(400, "missing_user",
                           "MCP over HTTP needs an X-User-Id header naming the user",
                           field="X-User-Id")
    return tenant, check_user_id(user)


def mount_mcp(state: ServiceState) -> MCPMount:
    """Build the MCP server over ``state``'s tenants and its guarded ASGI endpoint."""

    async def resolve(ctx: Context) -> tuple[MemoryStore, str]:
        headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
        tenant, user = _identity(state, headers)
        return await asyncio.to_thread(state.tenants.store, tenant), user

    server = build_mcp(resolve)
    host = os.environ.get(HOST_ENV, "127.0.0.1")
    security = None if host in _LOOPBACK else \
        TransportSecuritySettings(enable_dns_rebinding_protection=False)
    starlette_app = server.streamable_http_app(
        streamable_http_path="/", stateless_http=True, json_response=True,
        transport_security=security, host=host)
    sdk_endpoint = starlette_app.routes[0].app  # type: ignore[attr-defined]

    return MCPMount(_Guarded(state, sdk_endpoint), server.session_manager)


class _Guarded:
    """ASGI app (an object, so Starlette routes to it as ASGI): key and user first."""

    def __init__(self, state: ServiceState, endpoint: Any) -> None:
        self.state = state
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers") or []}
            try:
                _identity(self.state, headers)
            except PersistentMemoryError as exc:
                await _reject(send, exc)
                return
        await self.endpoint(scope, receive, send)


async def _reject(send: Send, exc: PersistentMemoryError) -> None:
    status = exc.status if isinstance(exc, ServiceError) else 400
    payload = json.dumps(error_body(exc)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
