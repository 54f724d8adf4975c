"""``lpm mcp``: the MCP tools over stdio for one configured user of one database."""

from __future__ import annotations

import anyio

from ..cli.config import load_embeddings
from ..store import MemoryStore
from .mcp_tools import build_mcp

__all__ = ["run_stdio"]


def run_stdio(url: str, embeddings: str | None, user_id: str) -> None:
    """Serve until the client closes stdin; every tool call acts on ``user_id`` only."""
    store = MemoryStore(url, embeddings=load_embeddings(embeddings))

    async def resolve(_: object) -> tuple[MemoryStore, str]:
        return store, user_id

    try:
        anyio.run(build_mcp(resolve).run_stdio_async)
    finally:
        store.close()
