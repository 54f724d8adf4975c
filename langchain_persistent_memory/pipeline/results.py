"""What one processed turn (or consolidation) did: the pipeline's public result types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..models import Memory

__all__ = ["Action", "ConsolidationResult", "MemoryChange", "ProcessResult", "TurnStatus"]

Action = Literal["add", "update", "supersede", "delete", "none"]
TurnStatus = Literal["applied", "raw", "empty", "duplicate", "nothing_memorable", "skipped"]


@dataclass(frozen=True)
class MemoryChange:
    """One operation of a turn, resolved to real memories.

    Attributes:
        action: ``add`` / ``update`` / ``supersede`` / ``delete``, or ``none`` when the fact
            was already known (``duplicate`` tells whether it matched word for word).
        memory: the resulting memory (the new one for add/supersede/update, the removed one for
            delete, the existing one for none).
        previous: the memory before an update, or the one a supersede replaced.
    """

    action: Action
    memory: Memory
    previous: Memory | None = None
    duplicate: bool = False

    @property
    def memory_id(self) -> str:
        return self.memory.id


@dataclass(frozen=True, kw_only=True)
class _Accounting:
    """LLM usage and time of one pipeline run; ``model_ms`` is time spent inside the model."""

    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: float = 0.0
    model_ms: float = 0.0

    @property
    def overhead_ms(self) -> float:
        """The pipeline's own time: everything but waiting for the chat model."""
        return max(0.0, self.duration_ms - self.model_ms)


@dataclass(frozen=True, kw_only=True)
class ProcessResult(_Accounting):
    """The outcome of :meth:`MemoryManager.process` for one turn.

    ``status``: ``applied`` (model output committed, possibly nothing to change), ``raw`` (no
    chat model: user messages stored as they are), ``empty`` (nothing said, no call),
    ``duplicate`` (every user message is already a memory, no call), ``nothing_memorable``
    (small talk or pure questions, no call) or ``skipped`` (the model's output stayed invalid
    after one repair; ``error`` says why, nothing was written).

    ``dropped`` lists operations left out of an applied turn (evidence not in the user's own
    words, cut off by a truncated answer); ``notes`` lists what was cut from the turn before
    the model saw it (``max_message_chars``, ``max_turn_chars``).
    """

    user_id: str = ""
    status: TurnStatus = "applied"
    operations: tuple[MemoryChange, ...] = ()
    error: str | None = None
    dropped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    def of(self, action: Action) -> list[MemoryChange]:
        """The operations of one kind, e.g. ``result.of("supersede")``."""
        return [op for op in self.operations if op.action == action]

    @property
    def added(self) -> list[Memory]:
        return [op.memory for op in self.of("add")]

    @property
    def changed(self) -> bool:
        """True when the store was written to."""
        return any(op.action != "none" for op in self.operations)


@dataclass(frozen=True, kw_only=True)
class ConsolidationResult(_Accounting):
    """The outcome of :meth:`MemoryManager.consolidate`.

    ``clusters`` groups of near-duplicates were found; each merged cluster is one
    transaction. ``errors`` names clusters left unchanged because the model's answer was
    unusable.
    """

    user_id: str = ""
    clusters: int = 0
    operations: tuple[MemoryChange, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)

    def of(self, action: Action) -> list[MemoryChange]:
        return [op for op in self.operations if op.action == action]
