"""Data types shared by the store, the pipeline and the integrations.

Only data lives here: no I/O, no logic beyond small conveniences.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AddOp",
    "DeleteOp",
    "EventType",
    "Memory",
    "MemoryEvent",
    "Operation",
    "Origin",
    "Provenance",
    "ScoredMemory",
    "SupersedeOp",
    "UpdateOp",
]


Origin = Literal["pipeline", "tool", "api", "import", "cli", "ui"]


class Provenance(BaseModel):
    """Where a write came from: kept with every history event (``lpm_provenance``).

    ``origin`` names the path (a pipeline turn, an agent's tool call, a direct API call, an
    import, the CLI or the UI); ``roles``, ``positions`` (indexes in the message list the
    caller passed) and ``message_ids`` (their LangChain message ids, when they had one) name
    the turn's messages the ``evidence`` was found in; ``trust`` is ``"user"`` when the
    user's own words carry the fact, ``"low"`` when an application let other roles' text in.
    """

    model_config = ConfigDict(frozen=True)

    origin: Origin = "api"
    roles: list[str] = Field(default_factory=list)
    positions: list[int] = Field(default_factory=list)
    message_ids: list[str] = Field(default_factory=list)
    evidence: str | None = None
    session_id: str | None = None
    agent_id: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    trust: str | None = None

    def summary(self, width: int = 80) -> str:
        """One line for people (``lpm show``, the UI): origin, roles, positions, model, the
        evidence."""
        where = ", ".join(f"message {p}" for p in self.positions)
        parts = [self.origin, "/".join(self.roles), where, self.model or "",
                 f"session {self.session_id}" if self.session_id else "",
                 f"agent {self.agent_id}" if self.agent_id else ""]
        line = " · ".join(p for p in parts if p)
        if self.evidence:
            quoted = " ".join(self.evidence.split())
            line += f" · “{quoted[:width - 1] + '…' if len(quoted) > width else quoted}”"
        return line


class Memory(BaseModel):
    """One remembered fact, scoped to a user.

    ``valid_to`` is set when a newer memory superseded this one: the row is kept so history
    can say what used to be true and when it stopped being true.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    content: str
    agent_id: str | None = None
    session_id: str | None = None
    category: str | None = None
    importance: float = 0.5
    created_at: datetime
    updated_at: datetime
    valid_from: datetime
    valid_to: datetime | None = None
    superseded_by: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    content_hash: str
    embedding: list[float] | None = Field(default=None, repr=False)
    # Filled only on request (``get``/``search`` with ``with_provenance=True``): the
    # provenance of the event that last wrote this text.
    provenance: Provenance | None = None

    @property
    def is_current(self) -> bool:
        """True while no newer memory has superseded this one."""
        return self.valid_to is None


class _Hit(NamedTuple):
    memory: Memory
    score: float


class ScoredMemory(_Hit):
    """A search hit: unpacks as ``memory, score``. Higher scores are more relevant.

    ``score`` ranks the hits of one search (fused and re-weighted, relative to that
    search's candidates: a lone perfect hit and a weak best hit can score alike).
    ``cosine`` and ``keyword_match`` are absolute, for thresholds: the cosine similarity of
    the memory to the query (-1..1), and whether a word of the query matched it.
    """

    cosine: float | None
    keyword_match: bool

    def __new__(cls, memory: Memory, score: float, cosine: float | None = None,
                keyword_match: bool = False) -> ScoredMemory:
        hit = super().__new__(cls, memory, score)
        hit.cosine = cosine
        hit.keyword_match = keyword_match
        return hit

    def __repr__(self) -> str:
        return (f"ScoredMemory(memory={self.memory!r}, score={self.score!r}, "
                f"cosine={self.cosine!r}, keyword_match={self.keyword_match!r})")


class EventType(str, Enum):
    """What happened to a memory, as recorded in its history."""

    ADD = "ADD"
    UPDATE = "UPDATE"
    SUPERSEDE = "SUPERSEDE"
    DELETE = "DELETE"


class MemoryEvent(BaseModel):
    """One entry of a memory's history, oldest first."""

    model_config = ConfigDict(frozen=True)

    id: int
    memory_id: str
    user_id: str
    event: EventType
    old_content: str | None = None
    new_content: str | None = None
    created_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)
    provenance: Provenance | None = None  # None: written before provenance was recorded


class AddOp(BaseModel):
    """Store a new memory."""

    kind: Literal["add"] = "add"
    content: Any
    category: str | None = None
    importance: Any = 0.5
    metadata: Any = None
    agent_id: str | None = None
    session_id: str | None = None
    valid_from: datetime | None = None
    id: str | None = None
    embedding: list[float] | None = Field(default=None, repr=False)
    # names the fact mentions besides those found in its text: "Melanie", or
    # {"name": "Melanie", "aliases": ["Mel"]} with other names for it
    entities: Any = None
    provenance: Provenance | None = None


class UpdateOp(BaseModel):
    """Refine an existing memory in place (same fact, better wording or fields)."""

    kind: Literal["update"] = "update"
    memory_id: str
    content: Any = None
    category: str | None = None
    importance: Any = None
    metadata: Any = None
    entities: Any = None  # with new content: names it mentions besides the extracted ones
    provenance: Provenance | None = None


class SupersedeOp(BaseModel):
    """Replace a memory that stopped being true; the old row keeps ``valid_to``."""

    kind: Literal["supersede"] = "supersede"
    memory_id: str
    content: Any
    category: str | None = None
    importance: Any = None
    metadata: Any = None
    valid_from: datetime | None = None
    entities: Any = None  # names the new fact mentions besides the extracted ones
    provenance: Provenance | None = None


class DeleteOp(BaseModel):
    """Remove a memory (wrong, or the user asked to forget it)."""

    kind: Literal["delete"] = "delete"
    memory_id: str
    reason: str | None = None
    provenance: Provenance | None = None


Operation = AddOp | UpdateOp | SupersedeOp | DeleteOp
