"""``MemoryRetriever``: a LangChain retriever over one user's memories.

Scoping: the user comes from the call (``invoke(q, user_id=...)``), then the run config
(``configurable`` or ``metadata``), then the constructor. With none of them the call fails:
a retriever never searches "everyone". A retriever built for one user refuses a run config
naming another (:class:`ScopeConflictError`): a parent run's config must not switch whose
memories it answers with.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from pydantic import ConfigDict, Field

from ..backend import MemoryBackend
from ..errors import ScopeConflictError
from ..models import ScoredMemory
from ._common import memory_metadata, require_user_id, user_id_from_config

__all__ = ["MemoryRetriever", "memory_to_document"]


def memory_to_document(hit: ScoredMemory) -> Document:
    """One search hit as a ``Document``: text is the memory, metadata carries id and score."""
    return Document(page_content=hit.memory.content, id=hit.memory.id,
                    metadata=memory_metadata(hit.memory, hit.score))


class MemoryRetriever(BaseRetriever):
    """Retrieve a user's most relevant memories as ``Document`` objects.

    Args:
        store: the ``MemoryStore`` to search, or a ``MemoryClient`` of the memory service.
        user_id: default user; a call may override it (kwarg or config metadata).
        k: number of memories returned (overridable per call: ``invoke(q, k=2)``).
        filters: ``MemoryStore.search`` filters applied to every call (``category``,
            ``agent_id``, ``session_id``, ``metadata``, ``since``, ``until``,
            ``include_superseded``); per-call kwargs are merged on top.
        min_score: drop hits scoring below this.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: MemoryBackend
    user_id: str | None = None
    k: int = 4
    filters: dict[str, Any] = Field(default_factory=dict)
    min_score: float | None = None

    def invoke(self, input: str, config: RunnableConfig | None = None,
               **kwargs: Any) -> list[Document]:
        return super().invoke(input, config,
                              **_with_config_user(config, kwargs, self.user_id))

    async def ainvoke(self, input: str, config: RunnableConfig | None = None,
                      **kwargs: Any) -> list[Document]:
        return await super().ainvoke(input, config,
                                     **_with_config_user(config, kwargs, self.user_id))

    def _search_args(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        call = dict(kwargs)
        user_id = require_user_id(call.pop("user_id", None), self.user_id,
                                  where="MemoryRetriever: pass user_id= to the constructor, "
                                  "the call, or config metadata/configurable")
        return {"user_id": user_id, "k": call.pop("k", self.k),
                "min_score": call.pop("min_score", self.min_score), **self.filters, **call}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        hits = self.store.search(query, **self._search_args(kwargs))
        return [memory_to_document(hit) for hit in hits]

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        hits = await self.store.asearch(query, **self._search_args(kwargs))
        return [memory_to_document(hit) for hit in hits]


def _with_config_user(config: RunnableConfig | None, kwargs: dict[str, Any],
                      own: str | None) -> dict[str, Any]:
    """A per-call ``user_id`` from the run config, unless the call named one itself; a config
    naming another user than the retriever's own is refused."""
    user_id = user_id_from_config(config)
    if user_id is None or "user_id" in kwargs:
        return kwargs
    if own is not None and user_id != own:
        raise ScopeConflictError(
            f"this retriever answers for user {own!r}, but the run config names "
            f"{user_id!r}; build a retriever per user or pass user_id= to the call",
            expected=own, given=str(user_id))
    return {**kwargs, "user_id": user_id}
