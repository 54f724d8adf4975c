"""The MCP server's tools: search, add, update, delete and list one user's memories.

The user is never a tool argument: a model cannot pick whose memory it reads or writes.
Over stdio the user is fixed by ``lpm mcp --user-id``; over HTTP it comes from the
``X-User-Id`` header the client's configuration sets, checked together with the API key
(see :mod:`.mcp_http`). Errors come back as tool errors with the store's message.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .. import __version__
from ..errors import PersistentMemoryError
from ..models import Memory, Provenance
from ..store import MemoryStore

__all__ = ["Resolver", "build_mcp"]

Resolver = Callable[[Context], Awaitable[tuple[MemoryStore, str]]]
"""Finds the store and the user of a tool call (from the transport, never the model)."""

INSTRUCTIONS = (
    "Long-term memory of the current user. Search it before answering questions about the "
    "user; add durable facts the user states about themselves (preferences, plans, "
    "relationships); update or delete a memory when the user corrects or retracts it.")


def _brief(memory: Memory) -> dict[str, Any]:
    data: dict[str, Any] = {"id": memory.id, "content": memory.content,
                            "created_at": memory.created_at.isoformat()}
    if memory.category:
        data["category"] = memory.category
    if memory.valid_to is not None:
        data["valid_to"] = memory.valid_to.isoformat()
    return data


# An MCP client's model called a tool: an agent's tool write, by the MCP agent.
_FROM_MCP = Provenance(origin="tool", agent_id="mcp")


def build_mcp(resolve: Resolver) -> MCPServer:
    """An MCP server whose tools act on the user ``resolve`` finds for each call."""
    server: MCPServer = MCPServer("langchain-persistent-memory", version=__version__,
                                  instructions=INSTRUCTIONS)

    async def scoped(ctx: Context) -> tuple[MemoryStore, str]:
        try:
            return await resolve(ctx)
        except PersistentMemoryError as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    async def search_memories(query: str, ctx: Context, k: int = 5) -> builtins.list[Any]:
        """Find the user's memories most relevant to `query`, best first."""
        store, user = await scoped(ctx)
        try:
            hits = await store.asearch(query, user_id=user, k=k)
        except PersistentMemoryError as exc:
            raise ToolError(str(exc)) from None
        return [{**_brief(m), "score": round(float(s), 4)} for m, s in hits]

    @server.tool()
    async def add_memory(content: str, ctx: Context,
                         category: str | None = None) -> dict[str, Any]:
        """Remember one durable fact about the user, in their own words."""
        store, user = await scoped(ctx)
        try:
            memory = await store.aadd(content, user_id=user, category=category,
                                      provenance=_FROM_MCP)
        except PersistentMemoryError as exc:
            raise ToolError(str(exc)) from None
        return _brief(memory)

    @server.tool()
    async def update_memory(memory_id: str, content: str, ctx: Context) -> dict[str, Any]:
        """Replace a memory that stopped being true; the old version stays in history."""
        store, user = await scoped(ctx)
        try:
            memory = await store.asupersede(memory_id, content, user_id=user,
                                            provenance=_FROM_MCP)
        except PersistentMemoryError as exc:
            raise ToolError(str(exc)) from None
        return _brief(memory)

    @server.tool()
    async def delete_memory(memory_id: str, ctx: Context) -> dict[str, Any]:
        """Forget one memory (the user retracted it or asked to forget it)."""
        store, user = await scoped(ctx)
        try:
            memory = await store.adelete(memory_id, user_id=user, reason="mcp",
                                         provenance=_FROM_MCP)
        except PersistentMemoryError as exc:
            raise ToolError(str(exc)) from None
        return {"deleted": memory.id}

    @server.tool()
    async def list_memories(ctx: Context, limit: int = 20,
                            category: str | None = None) -> builtins.list[Any]:
        """The user's most recent memories, newest first."""
        store, user = await scoped(ctx)
        filters = {} if category is None else {"category": category}
        try:
            found = await store.alist(user, limit=max(1, min(limit, 200)), **filters)
        except PersistentMemoryError as exc:
            raise ToolError(str(exc)) from None
        return [_brief(m) for m in found]

    return server
