"""Agent tools that search, save, update and forget a user's memories.

The user is never a tool argument: it comes from the agent's runtime context
(``context.user_id`` / ``context["user_id"]``) or config (``configurable`` / ``metadata``), so
a model cannot be talked into reading someone else's memories. Every memory id a tool
receives is checked against that user. Bad arguments and store errors come back as a
``ToolMessage`` with ``status="error"`` (the agent loop keeps running); unknown argument
names are rejected by the schemas (``extra="forbid"``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

from ..backend import MemoryBackend
from ..errors import InvalidInputError, PersistentMemoryError
from ..models import Provenance
from ..validation import check_id, check_user_id
from ._common import require_user_id, user_id_from_config, user_id_from_context

__all__ = ["WRITE_TOOLS", "create_memory_tools", "user_id_from_runtime"]

WRITE_TOOLS = frozenset({"save_memory", "update_memory", "forget_memory"})
"""Tools that change memories: a turn in which the agent used one was handled by the agent."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    runtime: ToolRuntime[Any, Any]  # injected by the agent, hidden from the model


class SearchArgs(_Args):
    query: str = Field(description="What to look for, in natural language.")
    k: int = Field(default=5, ge=1, le=20, description="How many memories to return.")
    category: str | None = Field(default=None, description="Only memories of this category.")


class SaveArgs(_Args):
    content: str = Field(description="The fact to remember, as one self-contained sentence.")
    category: str | None = Field(default=None, description="e.g. preference, fact, plan.")
    importance: float = Field(default=0.5, ge=0.0, le=1.0, description="0 trivial .. 1 vital.")


class UpdateArgs(_Args):
    memory_id: str = Field(description="The id shown by search_memories.")
    content: str = Field(description="The corrected or new text.")
    replaces_old_fact: bool = Field(
        default=False, description="True when the old fact stopped being true (history keeps "
        "it as a past fact); False to just reword or correct it.")


class ForgetArgs(_Args):
    memory_id: str = Field(description="The id shown by search_memories.")
    reason: str | None = Field(default=None, description="Why it should be forgotten.")


def user_id_from_runtime(runtime: ToolRuntime | Any, default: str | None = None) -> str:
    """The current user: runtime context first, then the run config, then ``default``."""
    return require_user_id(user_id_from_context(getattr(runtime, "context", None)),
                           user_id_from_config(getattr(runtime, "config", None)), default,
                           where="set it in the agent's context or config['configurable']")


def _thread_id(runtime: ToolRuntime | Any) -> str | None:
    """The run's thread (``config["configurable"]["thread_id"]``), recorded as the session
    of the tool's writes; None when the run has none or it is not a usable id."""
    config = getattr(runtime, "config", None) or {}
    thread = (config.get("configurable") or {}).get("thread_id")
    try:
        return None if thread is None else check_id(str(thread), "thread_id")
    except InvalidInputError:
        return None


def create_memory_tools(store: MemoryBackend, *, user_id: str | None = None,
                        agent_id: str | None = None) -> list[BaseTool]:
    """``search_memories``, ``save_memory``, ``update_memory`` and ``forget_memory``.

    Args:
        store: the ``MemoryStore`` (or service ``MemoryClient``) the tools read and write.
        user_id: fallback user for single-user apps, used when the run names none.
        agent_id: recorded on memories the tools save and in the provenance of every write
            (``origin="tool"``, with the run's thread id as the session).
    """
    default_user = None if user_id is None else check_user_id(user_id)

    def current_user(runtime: ToolRuntime) -> str:
        return user_id_from_runtime(runtime, default_user)

    def origin(runtime: ToolRuntime) -> Provenance:
        return Provenance(origin="tool", agent_id=agent_id, session_id=_thread_id(runtime))

    def search_memories(query: str, runtime: ToolRuntime, k: int = 5,
                        category: str | None = None) -> str:
        filters: dict[str, Any] = {"category": category} if category else {}
        hits = store.search(query, user_id=current_user(runtime), k=k, **filters)
        return json.dumps([{"id": hit.memory.id, "content": hit.memory.content,
                            "category": hit.memory.category, "score": round(hit.score, 3)}
                           for hit in hits], ensure_ascii=False)

    def save_memory(content: str, runtime: ToolRuntime, category: str | None = None,
                    importance: float = 0.5) -> str:
        memory = store.add(content, user_id=current_user(runtime), category=category,
                           importance=importance, agent_id=agent_id,
                           session_id=_thread_id(runtime), provenance=origin(runtime))
        return f"saved memory {memory.id}"

    def update_memory(memory_id: str, content: str, runtime: ToolRuntime,
                      replaces_old_fact: bool = False) -> str:
        user_id = current_user(runtime)
        if replaces_old_fact:
            memory = store.supersede(memory_id, content, user_id=user_id,
                                     provenance=origin(runtime))
            return f"memory {memory_id} is now a past fact; current: {memory.id}"
        store.update(memory_id, content=content, user_id=user_id, provenance=origin(runtime))
        return f"updated memory {memory_id}"

    def forget_memory(memory_id: str, runtime: ToolRuntime, reason: str | None = None) -> str:
        store.delete(memory_id, user_id=current_user(runtime), reason=reason,
                     provenance=origin(runtime))
        return f"forgot memory {memory_id}"

    specs: list[tuple[Callable[..., str], type[_Args], str]] = [
        (search_memories, SearchArgs, "Search what you remember about the current user. "
         "Returns memories with their ids, best match first."),
        (save_memory, SaveArgs, "Remember a new fact about the current user "
         "(a preference, a detail of their life, a plan)."),
        (update_memory, UpdateArgs, "Correct or replace a remembered fact, by id."),
        (forget_memory, ForgetArgs, "Forget a remembered fact, by id (e.g. the user asked)."),
    ]
    return [_tool(func, schema, description) for func, schema, description in specs]


def _tool(func: Callable[..., str], schema: type[_Args], description: str) -> BaseTool:
    """Wrap ``func`` so store errors become tool errors, with an async twin in a thread."""

    def run(**kwargs: Any) -> str:
        try:
            return func(**kwargs)
        except PersistentMemoryError as exc:
            raise ToolException(f"{type(exc).__name__}: {exc}") from exc

    async def arun(**kwargs: Any) -> str:
        return await asyncio.to_thread(run, **kwargs)

    return StructuredTool.from_function(func=run, coroutine=arun, name=func.__name__,
                                        description=description, args_schema=schema,
                                        handle_tool_error=True)
