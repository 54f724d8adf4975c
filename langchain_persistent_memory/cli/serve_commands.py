"""``lpm serve`` (REST + MCP over HTTP, run by uvicorn) and ``lpm mcp`` (MCP over stdio).

Both need the ``server`` extra. ``serve`` passes its settings to the worker processes
through ``LPM_*`` environment variables, checks them here first (bad keys, several workers
on SQLite, a public bind without keys) and refuses with one clear line.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from .common import fail, settings
from .config import USER_ERRORS, describe, resolve_database_url

__all__ = ["register"]

_FACTORY = "langchain_persistent_memory.server.app:app_from_env"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _need_server_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import mcp  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        fail(f"the service needs the server extra ({exc.name} is missing): "
             'pip install "langchain-persistent-memory[server]"')


def serve(ctx: typer.Context,
          db: Annotated[str | None, typer.Option(
              "--db", help="Database URL (default: the global --db / LPM_DATABASE_URL).")
          ] = None,
          host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
          workers: Annotated[int, typer.Option(
              min=1, help="Worker processes (more than one needs PostgreSQL).")] = 1,
          api_keys_file: Annotated[str | None, typer.Option(
              "--api-keys-file", help="File of tenant:key entries (also LPM_API_KEYS).")
          ] = None,
          model: Annotated[str | None, typer.Option(
              "--model", help="Chat model for POST /v1/turns as provider:name "
              "(init_chat_model); default: raw mode, user messages stored as they are.")
          ] = None,
          rate_limit: Annotated[float | None, typer.Option(
              "--rate-limit", min=0, help="Requests per second per tenant and worker "
              "(0: unlimited; default 100).")] = None,
          log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
          ) -> None:
    """Serve the memory REST API (docs at /docs) and MCP at /mcp."""
    _need_server_extra()
    from sqlalchemy.engine import make_url

    from ..server.config import ENV, ServiceConfig
    from ..server.mcp_http import HOST_ENV

    url = resolve_database_url(db or settings(ctx).db)
    env = {ENV["db"]: url, HOST_ENV: host}
    if settings(ctx).embeddings:
        env[ENV["embeddings"]] = str(settings(ctx).embeddings)
    if api_keys_file:
        env[ENV["api_keys_file"]] = os.path.abspath(api_keys_file)
    if model:
        env[ENV["model"]] = model
    if rate_limit is not None:
        env[ENV["rate_limit"]] = str(rate_limit)
    try:  # checked here, before any worker starts, so a mistake is one line
        config = ServiceConfig.from_env({**os.environ, **env})
    except USER_ERRORS as exc:
        fail(describe(exc))
    if workers > 1 and make_url(url).drivername.startswith("sqlite"):
        fail("several workers need PostgreSQL: SQLite allows one writing process. "
             "Use --workers 1, or --db postgresql+psycopg://...")
    if not config.auth_required:
        if not _is_loopback(host):
            fail(f"refusing to serve on {host} without API keys: anyone could read every "
                 "memory. Set LPM_API_KEYS=tenant:key (or --api-keys-file), or bind "
                 "127.0.0.1")
        typer.echo("Warning: no API keys configured; serving the 'default' tenant on "
                   f"{host} only.", err=True)
    import uvicorn

    os.environ.update(env)  # the worker processes read their settings from it
    typer.echo(f"lpm serve: http://{host}:{port} (docs at /docs, MCP at /mcp), "
               f"{workers} worker(s), tenants: {', '.join(config.tenants)}", err=True)
    uvicorn.run(_FACTORY, factory=True, host=host, port=port, workers=workers,
                log_level=log_level)


def mcp(ctx: typer.Context,
        user_id: Annotated[str, typer.Option(
            "--user-id", "-u", help="Whose memories the tools read and write.")],
        db: Annotated[str | None, typer.Option(
            "--db", help="Database URL (default: the global --db / LPM_DATABASE_URL).")
        ] = None) -> None:
    """Serve MCP over stdio for one user (for Claude Desktop and other MCP clients)."""
    _need_server_extra()
    from ..server.mcp_stdio import run_stdio
    from ..validation import check_user_id

    try:
        user = check_user_id(user_id)
        run_stdio(resolve_database_url(db or settings(ctx).db), settings(ctx).embeddings, user)
    except USER_ERRORS as exc:
        fail(describe(exc))


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(mcp)
