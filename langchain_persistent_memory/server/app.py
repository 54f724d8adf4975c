"""``create_app``: the FastAPI application behind ``lpm serve`` (REST under ``/v1``, MCP at
``/mcp``, OpenAPI docs at ``/docs``).

uvicorn starts it with :func:`app_from_env` in every worker process, so all settings come
from the environment (``lpm serve`` sets it from its flags).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from starlette.routing import Route

from .. import __version__
from ..store import MemoryStore, parse_budget
from .config import ServiceConfig
from .guards import BodyLimit, RateLimiter
from .handlers import install_handlers
from .jobs import JobRunner
from .routes import router
from .state import ServiceState
from .tenants import TenantStores

__all__ = ["app_from_env", "create_app", "load_chat_model"]

log = logging.getLogger("langchain_persistent_memory.server")


def load_chat_model(spec: str | None) -> BaseChatModel | None:
    """``provider:name`` through LangChain's ``init_chat_model``; ``None``: raw mode."""
    if not spec:
        return None
    from langchain.chat_models import init_chat_model

    model: BaseChatModel = init_chat_model(spec, temperature=0)
    return model


def create_app(config: ServiceConfig, *, embeddings: Embeddings | None = None,
               llm: BaseChatModel | None = None, mcp: bool = True) -> FastAPI:
    """Build the app. ``embeddings``/``llm`` default to what ``config`` names.

    Args:
        config: settings (see :class:`ServiceConfig`).
        embeddings: one model shared by every tenant's store.
        llm: the chat model that processes turns.
        mcp: also serve MCP over streamable HTTP at ``/mcp``.
    """
    from ..cli.config import load_embeddings

    model = embeddings if embeddings is not None else load_embeddings(config.embeddings)
    chat = llm if llm is not None else load_chat_model(config.model)
    if not config.auth_required:
        log.warning("no API keys configured (LPM_API_KEYS): every caller is the 'default' "
                    "tenant; serve on a loopback address only")

    # One process-wide memory budget shared by the tenants' stores, not one budget each:
    # the server's memory stays bounded however many tenants it serves.
    budget = parse_budget(None) // max(1, len(config.tenants))

    def open_store(url: str) -> MemoryStore:
        return MemoryStore(url, embeddings=model, memory_budget=budget)

    tenants = TenantStores(config.db, config.tenants, open_store)
    runner = JobRunner(tenants, chat, concurrency=config.job_concurrency)
    state = ServiceState(config, tenants, runner, RateLimiter(config.rate_limit))
    mcp_app: Any = None
    if mcp:
        from .mcp_http import mount_mcp

        mcp_app = mount_mcp(state)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if mcp_app is not None:
                await stack.enter_async_context(mcp_app.lifespan_context())
            runner.start()
            try:
                yield
            finally:
                await runner.stop()
                tenants.close()

    app = FastAPI(title="langchain-persistent-memory", version=__version__,
                  description="Long-term memory as a service: REST API and MCP.",
                  lifespan=lifespan)
    app.state.lpm = state
    install_handlers(app)
    app.include_router(router)
    if mcp_app is not None:
        app.router.routes.append(Route("/mcp", endpoint=mcp_app.asgi))
    app.add_middleware(BodyLimit, limit=config.max_body_bytes,
                       import_limit=config.max_import_bytes)
    return app


def app_from_env() -> FastAPI:
    """The app as configured by ``LPM_*`` variables (uvicorn's ``--factory`` entry)."""
    return create_app(ServiceConfig.from_env())
