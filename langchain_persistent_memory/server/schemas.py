"""Request bodies of the REST API. Unknown fields are refused (422), wrong JSON types too;
what a value means (blank text, importance range, id length …) is checked by the store
itself, so the service and the library reject exactly the same input (400)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from ..models import Provenance

__all__ = ["AddBody", "AddItem", "BatchBody", "DeleteBody", "MessageIn", "PatchBody",
           "ProvenanceIn", "SearchBody", "TurnBody"]

Number = StrictFloat | StrictInt


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProvenanceIn(_Body):
    """Where a write came from, as the client declares it (default: a direct API call).

    The client may name the path it took (``pipeline``, ``tool``, ``api`` or ``import``; the
    CLI and UI write locally), but only a pipeline write may claim ``trust: "user"`` (the
    user's own words): the service can't check another client's claim, so it refuses it."""

    origin: Literal["pipeline", "tool", "api", "import"] = "api"
    roles: list[StrictStr] = Field(default_factory=list, max_length=8)
    positions: list[StrictInt] = Field(default_factory=list, max_length=64)
    message_ids: list[StrictStr] = Field(default_factory=list, max_length=64)
    evidence: StrictStr | None = None
    session_id: StrictStr | None = None
    agent_id: StrictStr | None = None
    model: StrictStr | None = None
    prompt_version: StrictStr | None = None
    trust: Literal["user", "low"] | None = None

    @model_validator(mode="after")
    def _user_trust_is_the_pipelines(self) -> ProvenanceIn:
        if self.trust == "user" and self.origin != "pipeline":
            raise ValueError(f"trust 'user' is refused for origin {self.origin!r}: only a "
                             "pipeline write rests on the user's own words")
        return self

    def stored(self) -> Provenance:
        return Provenance(**self.model_dump())


class AddItem(_Body):
    content: StrictStr
    category: StrictStr | None = None
    importance: Number = 0.5
    metadata: dict[str, Any] | None = None
    session_id: StrictStr | None = None
    agent_id: StrictStr | None = None
    valid_from: datetime | None = None
    provenance: ProvenanceIn | None = None


class AddBody(AddItem):
    """``POST /v1/memories``."""

    user_id: StrictStr


class BatchBody(_Body):
    """``POST /v1/memories/batch``: many memories, one embedding call, one transaction."""

    user_id: StrictStr
    items: list[AddItem] = Field(min_length=1, max_length=1000)


class PatchBody(_Body):
    """``PATCH /v1/memories/{id}``: refine in place, or ``supersede`` (the old row is kept
    with ``valid_to``, a new memory is returned)."""

    user_id: StrictStr
    content: StrictStr | None = None
    category: StrictStr | None = None
    importance: Number | None = None
    metadata: dict[str, Any] | None = None
    supersede: StrictBool = False
    valid_from: datetime | None = None
    provenance: ProvenanceIn | None = None


class DeleteBody(_Body):
    """Optional body of ``DELETE /v1/memories/{id}``: where the delete came from."""

    provenance: ProvenanceIn | None = None


class SearchBody(_Body):
    """``POST /v1/search``: the arguments of ``MemoryStore.search``."""

    user_id: StrictStr
    query: StrictStr
    k: StrictInt = 5
    include_superseded: StrictBool = False
    min_score: Number | None = None
    # filters
    category: StrictStr | list[StrictStr] | None = None
    agent_id: StrictStr | None = None
    session_id: StrictStr | None = None
    metadata: dict[str, Any] | None = None
    since: datetime | None = None
    until: datetime | None = None
    # ranking options (retrieval.SearchOptions)
    mode: StrictStr | None = None
    fusion: StrictStr | None = None
    dense_weight: Number | None = None
    candidates: StrictInt | None = None
    recency_half_life_days: Number | None = None
    recency_weight: Number | None = None
    importance_weight: Number | None = None
    context_weight: Number | None = None
    answer_weight: Number | None = None
    question_discount: Number | None = None
    date_boost: Number | None = None
    entity_weight: Number | None = None
    hop_weight: Number | None = None
    time_boost: Number | None = None
    topic_weight: Number | None = None
    topic_focus: Number | None = None
    detail_weight: Number | None = None
    mmr: StrictBool | None = None
    mmr_lambda: Number | None = None
    dedupe_threshold: Number | None = None

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``search``: only what the caller sent (an explicit
        ``dedupe_threshold: null`` turns dedupe off, an absent one keeps the default)."""
        return self.model_dump(exclude_unset=True, exclude={"user_id", "query"})


class MessageIn(_Body):
    role: StrictStr
    content: StrictStr
    id: StrictStr | None = None  # the message's id, kept in the provenance of its facts


class TurnBody(_Body):
    """``POST /v1/turns``: a conversation turn for the pipeline."""

    user_id: StrictStr
    messages: list[MessageIn] = Field(min_length=1, max_length=200)
    session_id: StrictStr | None = None
    agent_id: StrictStr | None = None
    timestamp: datetime | None = None
