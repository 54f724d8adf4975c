"""LlamaIndex adapters: a long-term ``BaseMemoryBlock`` for ``llama_index.core.memory.Memory``
and a ``BaseRetriever`` over one user's memories (extra ``[llamaindex]``).

The block reads with ``search`` and writes through a turn processor (in the background by
default), so LlamaIndex apps share memories with LangChain ones. Both take any
``MemoryBackend``: an in-process ``MemoryStore`` and ``MemoryManager``, or one ``MemoryClient``
of the memory service for both (turns then go to ``POST /v1/turns``).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import Field, field_validator

from ..backend import MemoryBackend, TurnProcessor
from ..models import ScoredMemory
from ..retrieval.render import render_memories
from ..validation import check_user_id
from ._common import memory_metadata

__all__ = ["LlamaIndexMemoryRetriever", "PersistentMemoryBlock"]

_ROLES = {"chatbot": "assistant", "model": "assistant"}


def _turn(messages: list[ChatMessage]) -> list[dict[str, str]]:
    """LlamaIndex chat messages as role/content dicts the pipeline understands."""
    turn = []
    for message in messages:
        role = message.role.value if hasattr(message.role, "value") else str(message.role)
        turn.append({"role": _ROLES.get(role, role), "content": message.content or ""})
    return turn


class PersistentMemoryBlock(BaseMemoryBlock[str]):
    """Long-term memory block: recalls relevant memories, hands flushed messages to the
    pipeline.

    Args:
        store / manager: the shared ``MemoryStore`` and ``MemoryManager``, or one
            ``MemoryClient`` of the memory service for both.
        user_id: whose memories this block reads and writes.
        k: memories recalled per call. max_tokens: budget of the rendered block.
        background: ``True`` submits flushed messages to the manager's background worker;
            ``False`` waits for them to be processed.
    """

    name: str = "long_term_memory"
    store: MemoryBackend
    manager: TurnProcessor
    user_id: str
    k: int = Field(default=5, ge=1, le=100)
    max_tokens: int = Field(default=600, ge=1)
    background: bool = True

    @field_validator("user_id")
    @classmethod
    def _valid_user(cls, value: str) -> str:
        return check_user_id(value)

    async def _aget(self, messages: list[ChatMessage] | None = None,
                    **block_kwargs: Any) -> str:
        query = next((m.content for m in reversed(messages or [])
                      if m.role.value == "user" and (m.content or "").strip()), None)
        if query is None:
            return ""
        hits = await self.store.asearch(query, user_id=self.user_id, k=self.k)
        return render_memories(hits, max_tokens=self.max_tokens)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        turn = _turn(messages)
        if self.background:
            self.manager.submit(turn, user_id=self.user_id)
        else:
            await self.manager.aprocess(turn, user_id=self.user_id)


class LlamaIndexMemoryRetriever(BaseRetriever):
    """A LlamaIndex retriever returning one user's memories as scored ``TextNode`` objects,
    from a ``MemoryStore`` or a ``MemoryClient``."""

    def __init__(self, store: MemoryBackend, *, user_id: str, k: int = 4,
                 **filters: Any) -> None:
        super().__init__()
        self.store = store
        self.user_id = check_user_id(user_id)
        self.k = k
        self.filters = filters

    @staticmethod
    def _node(hit: ScoredMemory) -> NodeWithScore:
        node = TextNode(id_=hit.memory.id, text=hit.memory.content,
                        metadata=memory_metadata(hit.memory))
        return NodeWithScore(node=node, score=hit.score)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.store.search(query_bundle.query_str, user_id=self.user_id, k=self.k,
                                 **self.filters)
        return [self._node(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await self.store.asearch(query_bundle.query_str, user_id=self.user_id, k=self.k,
                                        **self.filters)
        return [self._node(h) for h in hits]
