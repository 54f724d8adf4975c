"""The answers the chat model is asked for: operations, extracted facts, merge plans.

Kept deliberately loose (plain strings, optional fields) so every provider's tool calling or
JSON-schema mode accepts them. They are sent to the model as JSON schemas only; what comes
back is read leniently (:mod:`.recover`) and checked strictly (:mod:`.extract`,
:mod:`.reconcile`), with error messages the model can act on in its one repair attempt.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["EVIDENCE", "ExtractedFacts", "Fact", "MemoryAction", "MemoryMerge", "MemoryOperations",
           "MergePlan"]

EVIDENCE = ("The user's own words this rests on, quoted exactly from a user message of the "
            "conversation; required for ADD, UPDATE and SUPERSEDE")

OpName = Literal["ADD", "UPDATE", "SUPERSEDE", "DELETE", "NONE"]


class MemoryAction(BaseModel):
    """One change to the user's long-term memories."""

    op: OpName = Field(description="ADD a new fact; UPDATE refines an existing memory (same "
                       "fact, more detail); SUPERSEDE replaces a memory that stopped being true; "
                       "DELETE removes one (user asked to forget, or it was wrong); NONE: "
                       "already known")
    handle: str | None = Field(default=None, description="Handle of the existing memory "
                               "(m1, m2, ...) for UPDATE, SUPERSEDE, DELETE and NONE; null for ADD")
    content: str | None = Field(default=None, description="The fact as one short "
                                "self-contained sentence about the user, with absolute dates; "
                                "required for ADD, UPDATE and SUPERSEDE")
    category: str | None = Field(default=None, description="One word, e.g. preference, "
                                 "personal, work, tool, skill, plan, decision, relationship, "
                                 "health, location")
    importance: float | None = Field(default=None, description="0 (trivia) to 1 (essential)")
    valid_from: str | None = Field(default=None, description="YYYY-MM-DD when the fact became "
                                   "true, if the conversation says or implies it")
    evidence: str | None = Field(default=None, description=EVIDENCE)
    entities: list[str] | None = Field(default=None, description="Names of people, places, "
                                       "organisations, titles the fact mentions, as written "
                                       "in it; a name the user also used, in parentheses: "
                                       "\"Anna (my sister)\"")


class MemoryOperations(BaseModel):
    """The changes to make to the user's memories after this conversation turn."""

    operations: list[MemoryAction] = Field(description="Empty when nothing is worth keeping")


class Fact(BaseModel):
    """A fact about the user worth remembering."""

    content: str = Field(description="One short self-contained sentence with absolute dates")
    category: str | None = Field(default=None, description="One word category")
    importance: float | None = Field(default=None, description="0 (trivia) to 1 (essential)")
    valid_from: str | None = Field(default=None, description="YYYY-MM-DD when it became true")
    evidence: str | None = Field(default=None, description=EVIDENCE)


class ExtractedFacts(BaseModel):
    """Facts from this conversation turn worth keeping (two-call mode, first call)."""

    facts: list[Fact] = Field(description="Empty when nothing is worth keeping")
    forget: list[str] = Field(default_factory=list, description="What the user asks to "
                              "forget or says is wrong, one short phrase each")


class MemoryMerge(BaseModel):
    """One memory that replaces several near-duplicate ones."""

    sources: list[str] = Field(description="Handles (m1, m2, ...) of the memories merged")
    content: str = Field(description="The merged fact, one self-contained sentence")
    category: str | None = None
    importance: float | None = None


class MergePlan(BaseModel):
    """How to merge a group of related memories; memories not named stay as they are."""

    merges: list[MemoryMerge] = Field(description="Empty when nothing should be merged")
