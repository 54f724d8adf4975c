"""``MemoryMiddleware``: long-term memory for ``langchain.agents.create_agent`` (extra
``[agents]``).

Before every model call it puts the memories relevant to the user's latest message into the
system message; after the agent finishes it submits the turn to the ``MemoryManager`` in the
background, so answering never waits for extraction. The user comes from the runtime context
(``context.user_id``) or the run config (``configurable`` / ``metadata``), else the
constructor's ``user_id``; with none of them the run fails with a clear error.

A turn in which the agent itself changed memories (``save_memory``, ``update_memory`` or
``forget_memory`` succeeded) is not submitted again: the agent already decided what to keep,
and a second extraction would pay another model call for the same facts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
    ToolCallRequest,
)
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.store.base import InvalidNamespaceError
from langgraph.types import Command

from ..backend import MemoryBackend, TurnProcessor
from ..errors import PersistentMemoryError
from ..models import ScoredMemory
from ..retrieval.render import render_memories
from ..validation import check_user_id
from ._common import require_user_id, user_id_from_config, user_id_from_context
from .tools import WRITE_TOOLS, create_memory_tools

__all__ = ["MemoryMiddleware", "MemoryToolErrorMiddleware"]


def _config() -> dict[str, Any]:
    try:
        return dict(get_config())
    except RuntimeError:  # called outside a graph run
        return {}


def _latest_user_text(messages: Sequence[BaseMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text.strip()
    return ""


def _with_memories(system: SystemMessage | None, text: str) -> SystemMessage:
    if system is None:
        return SystemMessage(content=text)
    if isinstance(system.content, str):
        return SystemMessage(content=f"{system.content}\n\n{text}" if system.content else text)
    return SystemMessage(content=[*system.content, {"type": "text", "text": text}])


_MEMORY_ERRORS = (PersistentMemoryError, InvalidNamespaceError)


def _error_message(request: ToolCallRequest, exc: Exception) -> ToolMessage:
    return ToolMessage(content=f"{type(exc).__name__}: {exc}", status="error",
                       tool_call_id=request.tool_call["id"], name=request.tool_call["name"])


class MemoryToolErrorMiddleware(AgentMiddleware):
    """Turn memory errors raised by any tool into ``ToolMessage`` errors.

    ``create_agent`` re-raises tool exceptions other than argument validation, so a tool
    that is not ours (e.g. LangMem's, over :class:`PersistentStore`) would end the run on an
    unknown filter operator or a namespace built from a bad user id. With this middleware
    the model sees the error and can correct itself.
    """

    def wrap_tool_call(self, request: ToolCallRequest,
                       handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]]
                       ) -> ToolMessage | Command[Any]:
        try:
            return handler(request)
        except _MEMORY_ERRORS as exc:
            return _error_message(request, exc)

    async def awrap_tool_call(
            self, request: ToolCallRequest,
            handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]]
    ) -> ToolMessage | Command[Any]:
        try:
            return await handler(request)
        except _MEMORY_ERRORS as exc:
            return _error_message(request, exc)


class MemoryMiddleware(MemoryToolErrorMiddleware):
    """Recall before each model call, remember after the agent finishes (and, like
    :class:`MemoryToolErrorMiddleware`, report memory errors of tools to the model).

    Args:
        store / manager: the shared ``MemoryStore`` and ``MemoryManager`` (or one
            ``MemoryClient`` of the memory service for both).
        user_id: default user for single-user apps (a per-run context/config wins).
        k: memories searched per model call. max_tokens: budget of the injected block.
        background: submit finished turns to the manager's worker (``False``: wait).
        include_tools: also give the agent the memory tools (search/save/update/forget).
        count_tokens: a chat model or ``str -> int`` used to measure the budget.
    """

    def __init__(self, store: MemoryBackend, manager: TurnProcessor, *,
                 user_id: str | None = None, k: int = 5, max_tokens: int = 800,
                 background: bool = True, include_tools: bool = False,
                 count_tokens: Any = None) -> None:
        super().__init__()
        self.store = store
        self.manager = manager
        self.default_user_id = None if user_id is None else check_user_id(user_id)
        self.k = k
        self.max_tokens = max_tokens
        self.background = background
        self.count_tokens = count_tokens
        self.tools = create_memory_tools(store, user_id=user_id) if include_tools else []

    def _user_id(self, runtime: Runtime[Any] | None) -> str:
        return require_user_id(user_id_from_context(getattr(runtime, "context", None)),
                               user_id_from_config(_config()),
                               self.default_user_id,
                               where="MemoryMiddleware: set context.user_id, "
                               "config['configurable']['user_id'] or user_id=")

    def _inject(self, request: ModelRequest, hits: list[ScoredMemory]) -> ModelRequest:
        text = render_memories(hits, max_tokens=self.max_tokens, count_tokens=self.count_tokens)
        if not text:
            return request
        return request.override(system_message=_with_memories(request.system_message, text))

    def wrap_model_call(self, request: ModelRequest,
                        handler: Callable[[ModelRequest], ModelResponse]) -> ModelResponse:
        user_id = self._user_id(request.runtime)
        query = _latest_user_text(request.messages)
        hits = self.store.search(query, user_id=user_id, k=self.k) if query else []
        return handler(self._inject(request, hits))

    async def awrap_model_call(
            self, request: ModelRequest,
            handler: Callable[[ModelRequest], Awaitable[ModelResponse]]) -> ModelResponse:
        user_id = self._user_id(request.runtime)
        query = _latest_user_text(request.messages)
        hits = await self.store.asearch(query, user_id=user_id, k=self.k) if query else []
        return await handler(self._inject(request, hits))

    def _turn(self, state: AgentState) -> list[BaseMessage]:
        """The last user message and the agent's text replies after it; nothing when the
        agent already changed memories in this turn with its own tools."""
        messages = list(state.get("messages", []))
        start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)),
                    default=None)
        if start is None:
            return []
        if any(isinstance(m, ToolMessage) and m.name in WRITE_TOOLS and m.status != "error"
               for m in messages[start:]):
            return []
        return [m for m in messages[start:]
                if isinstance(m, HumanMessage) or (isinstance(m, AIMessage) and m.text)]

    def _session(self) -> str | None:
        thread = (_config().get("configurable") or {}).get("thread_id")
        return None if thread is None else str(thread)

    def _hand_over(self, state: AgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """The turn to remember, or None; in background mode it is submitted right here."""
        turn = self._turn(state)
        if not turn:
            return None
        job: dict[str, Any] = {"messages": turn, "user_id": self._user_id(runtime),
               "session_id": self._session()}
        if self.background:
            self.manager.submit(**job)
            return None
        return job

    def forget_user(self, user_id: str) -> int:
        """Erase ``user_id``, their queued and running turns included (see
        :meth:`MemoryManager.forget_user`); returns the memories removed."""
        return self.manager.forget_user(user_id)

    async def aforget_user(self, user_id: str) -> int:
        return await self.manager.aforget_user(user_id)

    def after_agent(self, state: AgentState, runtime: Runtime[Any]) -> None:
        job = self._hand_over(state, runtime)
        if job is not None:
            self.manager.process(**job)

    async def aafter_agent(self, state: AgentState, runtime: Runtime[Any]) -> None:
        job = self._hand_over(state, runtime)
        if job is not None:
            await self.manager.aprocess(**job)
