"""What the integrations need from "a memory": satisfied by ``MemoryStore`` and ``MemoryClient``.

Why a Protocol: an app that runs on many machines swaps its in-process store for a client
of the shared memory service without touching the retriever, tools, middleware or classic
memory built on it. Both sides keep the same method names, arguments, return types and
typed errors; these Protocols name the part the adapters rely on. No I/O here.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol, runtime_checkable

from .models import Memory, MemoryEvent, Provenance, ScoredMemory

__all__ = ["MemoryBackend", "TurnProcessor"]


@runtime_checkable
class MemoryBackend(Protocol):
    """Read and write one user's memories (``MemoryStore`` or ``MemoryClient``)."""

    def add(self, content: str, *, user_id: str, agent_id: str | None = None,
            session_id: str | None = None, category: str | None = None,
            importance: float = 0.5, metadata: dict[str, Any] | None = None,
            provenance: Provenance | None = None) -> Memory: ...

    def get(self, memory_id: str, *, user_id: str | None = None) -> Memory: ...

    def update(self, memory_id: str, *, content: str | None = None,
               category: str | None = None, importance: float | None = None,
               metadata: dict[str, Any] | None = None,
               user_id: str | None = None, provenance: Provenance | None = None) -> Memory: ...

    def supersede(self, memory_id: str, content: str, *, user_id: str | None = None,
                  category: str | None = None, importance: float | None = None,
                  metadata: dict[str, Any] | None = None,
                  provenance: Provenance | None = None) -> Memory: ...

    def delete(self, memory_id: str, *, user_id: str | None = None,
               reason: str | None = None, provenance: Provenance | None = None) -> Memory: ...

    def history(self, memory_id: str, *, user_id: str | None = None) -> list[MemoryEvent]: ...

    def list(self, user_id: str, *, include_superseded: bool = False,
             limit: int | None = None, offset: int = 0,
             **filters: Any) -> builtins.list[Memory]: ...

    def search(self, query: str, *, user_id: str, k: int = 5,
               include_superseded: bool = False, min_score: float | None = None,
               **filters: Any) -> builtins.list[ScoredMemory]: ...

    async def asearch(self, query: str, *, user_id: str, k: int = 5,
                      include_superseded: bool = False, min_score: float | None = None,
                      **filters: Any) -> builtins.list[ScoredMemory]: ...

    def forget_user(self, user_id: str) -> int: ...


@runtime_checkable
class TurnProcessor(Protocol):
    """Turns conversation into memories (``MemoryManager``, or ``MemoryClient`` via
    ``POST /v1/turns``)."""

    def submit(self, messages: Any, *, user_id: str, agent_id: str | None = None,
               session_id: str | None = None, timestamp: Any = None) -> Any: ...

    def process(self, messages: Any, *, user_id: str, agent_id: str | None = None,
                session_id: str | None = None, timestamp: Any = None) -> Any: ...

    async def aprocess(self, messages: Any, *, user_id: str, agent_id: str | None = None,
                       session_id: str | None = None, timestamp: Any = None) -> Any: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def forget_user(self, user_id: str) -> int: ...

    async def aforget_user(self, user_id: str) -> int: ...
