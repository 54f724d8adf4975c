"""The async twins of :class:`MemoryStore`'s methods, kept apart from the facade.

Each one shares its sync twin's steps: embedding calls use the model's async methods, SQL
work runs in a worker thread (``asyncio.to_thread``), so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np
from langchain_core.embeddings import Embeddings

from ..models import (
    AddOp,
    DeleteOp,
    Memory,
    MemoryEvent,
    Operation,
    ScoredMemory,
    SupersedeOp,
    UpdateOp,
)
from ..retrieval.options import SearchOptions
from ..scopes import AnyUser, by_id_scope
from ..validation import check_user_id
from .guard import aopen_only
from .op_builders import as_add_ops, build_op
from .reembed import Progress
from .search import search_args
from .transfer import Conflict, Source
from .write_types import Applied

if TYPE_CHECKING:
    from .memory_store import MemoryStore

__all__ = ["AsyncTwins"]


def _s(twins: AsyncTwins) -> MemoryStore:
    """The facade this mixin is part of."""
    return cast("MemoryStore", twins)


class AsyncTwins:
    """``a``-prefixed twins; mixed into :class:`MemoryStore`."""

    async def aclose(self) -> None:
        await asyncio.to_thread(_s(self).close)

    async def __aenter__(self) -> MemoryStore:
        return _s(self)

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aembed_query(self, query: str) -> np.ndarray:
        return await _s(self).embedder.aquery(query)

    @aopen_only
    async def aapply(self, ops: Sequence[Operation], *,
                     user_id: str | AnyUser | None = None) -> list[Applied]:
        return await _s(self).writer.aapply(ops, by_id_scope(user_id))

    async def aadd(self, content: str, *, user_id: str, **fields: Any) -> Memory:
        """Async :meth:`add` (same keyword arguments)."""
        op = build_op(AddOp, content=content, **fields)
        return (await _s(self).aapply([op], user_id=user_id))[0].memory

    async def aadd_many(self, items: Sequence[str | dict[str, Any] | AddOp], *,
                        user_id: str) -> list[Memory]:
        return [a.memory for a in await _s(self).aapply(as_add_ops(items), user_id=user_id)]

    async def aupdate(self, memory_id: str, *, user_id: str | AnyUser | None = None,
                      **fields: Any) -> Memory:
        """Async :meth:`update` (same keyword arguments)."""
        op = build_op(UpdateOp, memory_id=memory_id, **fields)
        return (await _s(self).aapply([op], user_id=user_id))[0].memory

    async def asupersede(self, memory_id: str, content: str, *,
                         user_id: str | AnyUser | None = None,
                         **fields: Any) -> Memory:
        """Async :meth:`supersede` (same keyword arguments)."""
        op = build_op(SupersedeOp, memory_id=memory_id, content=content, **fields)
        return (await _s(self).aapply([op], user_id=user_id))[0].memory

    async def adelete(self, memory_id: str, *, user_id: str | AnyUser | None = None,
                      **fields: Any) -> Memory:
        """Async :meth:`delete` (same keyword arguments)."""
        return (await _s(self).aapply([build_op(DeleteOp, memory_id=memory_id, **fields)],
                                  user_id=user_id))[0].memory

    @aopen_only
    async def aforget_user(self, user_id: str) -> int:
        """Async :meth:`forget_user`: managers' turns of the user running on this event loop
        are waited for on the loop, the erasure runs in a worker thread."""
        user_id = check_user_id(user_id)
        async with _s(self).forget_guards.ahold(user_id):
            return await asyncio.to_thread(_s(self).forget_user, user_id)

    async def aget(self, memory_id: str, **kwargs: Any) -> Memory:
        return await asyncio.to_thread(lambda: _s(self).get(memory_id, **kwargs))

    async def ahistory(self, memory_id: str, *,
                       user_id: str | AnyUser | None = None) -> list[MemoryEvent]:
        return await asyncio.to_thread(_s(self).history, memory_id, user_id=user_id)

    async def alist(self, user_id: str, **kwargs: Any) -> list[Memory]:
        return await asyncio.to_thread(lambda: _s(self).list(user_id, **kwargs))

    async def acount(self, user_id: str | None = None, *,
                     include_superseded: bool = False) -> int:
        return await asyncio.to_thread(_s(self).count, user_id,
                                       include_superseded=include_superseded)

    @aopen_only
    async def asearch(self, query: str, *, user_id: str, k: int = 5,
                      include_superseded: bool = False, min_score: float | None = None,
                      with_provenance: bool = False, **filters: Any) -> list[ScoredMemory]:
        options, filters = SearchOptions.split(filters)
        user_id, k, parsed, min_score = search_args(query, user_id, k, include_superseded,
                                                    filters, min_score)
        vector = await _s(self).aembed_query(query)
        hits = await asyncio.to_thread(_s(self).searcher.search, query, vector, user_id, k,
                                       parsed, min_score, options, _s(self).clock())
        if with_provenance:
            hits = await asyncio.to_thread(_s(self).with_provenance, hits)
        return hits

    async def aexport_jsonl(self, dest: str | os.PathLike[str] | IO[str], *,
                            user_id: str | None = None) -> int:
        return await asyncio.to_thread(_s(self).export_jsonl, dest, user_id=user_id)

    async def aimport_jsonl(self, src: Source, *, user_id: str | None = None,
                            on_conflict: Conflict = "error") -> int:
        return await asyncio.to_thread(_s(self).import_jsonl, src, user_id=user_id,
                                       on_conflict=on_conflict)

    async def areembed(self, embeddings: Embeddings | None = None, *,
                       batch_size: int = 256,
                       progress: Progress | None = None) -> int:
        return await asyncio.to_thread(_s(self).reembed, embeddings, batch_size=batch_size,
                                       progress=progress)

