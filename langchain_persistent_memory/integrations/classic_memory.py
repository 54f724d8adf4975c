"""``PersistentMemory``: long-term memory for classic chains (``ConversationChain``,
``LLMChain``) through ``langchain_classic.base_memory.BaseMemory`` (extra ``[classic]``).

Loading searches the store for memories relevant to the current input and renders them
within a token budget, followed by a short-term window of the last turns of this
conversation (so "what did I just say?" works, as with ``ConversationBufferWindowMemory``);
saving hands the turn to the ``MemoryManager``, in the background by default so the chain's
latency does not grow with extraction.
"""

from __future__ import annotations

from typing import Any

from langchain_classic.base_memory import BaseMemory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from ..backend import MemoryBackend, TurnProcessor
from ..errors import InvalidInputError
from ..retrieval.render import render_memories
from ..validation import check_user_id

__all__ = ["PersistentMemory"]


class PersistentMemory(BaseMemory):
    """Memories relevant to the input, as text (or a system message) under ``memory_key``.

    Args:
        store / manager: the shared ``MemoryStore`` and ``MemoryManager`` (or one
            ``MemoryClient`` of the memory service for both).
        user_id: whose memories are read and written.
        k: memories searched per call. max_tokens: budget of the rendered text.
        memory_key: prompt variable that receives the memories (default ``history``).
        input_key / output_key: which chain input/output form the turn (default: the only
            input that is not a memory variable; the only output).
        return_messages: a list with one ``SystemMessage`` instead of a string.
        background: submit turns to the manager's worker (``False``: wait for them).
        count_tokens: a chat model or ``str -> int`` used to measure the budget.
        window_turns: recent turns of this conversation kept verbatim beside the long-term
            memories (``0`` turns the short-term window off).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: MemoryBackend
    manager: TurnProcessor
    user_id: str
    k: int = Field(default=5, ge=1, le=100)
    max_tokens: int = Field(default=800, ge=1)
    memory_key: str = "history"
    input_key: str | None = None
    output_key: str | None = None
    return_messages: bool = False
    background: bool = True
    count_tokens: Any = None
    window_turns: int = Field(default=5, ge=0, le=100)
    human_prefix: str = "Human"
    ai_prefix: str = "AI"

    _window: list[tuple[str, str]] = PrivateAttr(default_factory=list)

    @field_validator("user_id")
    @classmethod
    def _valid_user(cls, value: str) -> str:
        return check_user_id(value)

    @property
    def memory_variables(self) -> list[str]:
        return [self.memory_key]

    def _input_text(self, inputs: dict[str, Any]) -> str:
        key = self.input_key
        if key is None:
            keys = [k for k in inputs if k not in (self.memory_key, "stop")]
            if len(keys) != 1:
                raise InvalidInputError(
                    f"PersistentMemory needs input_key= when a chain has several inputs "
                    f"({sorted(keys)})", field="input_key")
            key = keys[0]
        if key not in inputs:
            raise InvalidInputError(f"input {key!r} is missing", field="input_key")
        return str(inputs[key])

    def _output_text(self, outputs: dict[str, Any]) -> str:
        if self.output_key is not None:
            return str(outputs[self.output_key])
        if len(outputs) != 1:
            raise InvalidInputError(f"PersistentMemory needs output_key= when a chain has "
                                    f"several outputs ({sorted(outputs)})", field="output_key")
        return str(next(iter(outputs.values())))

    def _variables(self, hits: list[Any]) -> dict[str, Any]:
        text = render_memories(hits, max_tokens=self.max_tokens, count_tokens=self.count_tokens)
        if self.return_messages:
            recent: list[BaseMessage] = []
            for said, answered in self._window:
                recent += [HumanMessage(content=said), AIMessage(content=answered)]
            return {self.memory_key: ([SystemMessage(content=text)] if text else []) + recent}
        lines = [line for said, answered in self._window
                 for line in (f"{self.human_prefix}: {said}", f"{self.ai_prefix}: {answered}")]
        parts = [text] if text else []
        if lines:
            parts.append("Recent conversation:\n" + "\n".join(lines))
        return {self.memory_key: "\n\n".join(parts)}

    def _remember_recent(self, turn: list[tuple[str, str]]) -> None:
        if self.window_turns:
            self._window = [*self._window, (turn[0][1], turn[1][1])][-self.window_turns:]

    def load_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        query = self._input_text(inputs)
        hits = self.store.search(query, user_id=self.user_id, k=self.k) if query.strip() \
            else []
        return self._variables(hits)

    async def aload_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        query = self._input_text(inputs)
        hits = await self.store.asearch(query, user_id=self.user_id, k=self.k) \
            if query.strip() else []
        return self._variables(hits)

    def _turn(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> list[tuple[str, str]]:
        return [("user", self._input_text(inputs)), ("assistant", self._output_text(outputs))]

    def save_context(self, inputs: dict[str, Any], outputs: dict[str, str]) -> None:
        turn = self._turn(inputs, outputs)
        self._remember_recent(turn)
        if self.background:
            self.manager.submit(turn, user_id=self.user_id)
        else:
            self.manager.process(turn, user_id=self.user_id)

    async def asave_context(self, inputs: dict[str, Any], outputs: dict[str, str]) -> None:
        turn = self._turn(inputs, outputs)
        self._remember_recent(turn)
        if self.background:
            self.manager.submit(turn, user_id=self.user_id)
        else:
            await self.manager.aprocess(turn, user_id=self.user_id)

    def clear(self) -> None:
        """Erase this user's memories, their queued turns and the short-term window
        (:meth:`MemoryManager.forget_user`: nothing comes back afterwards)."""
        self._window = []
        self.manager.forget_user(self.user_id)
