"""Reconciliation: the model's operations checked against this turn's memories, then turned
into store operations carrying their provenance.

The model refers to existing memories only by short handles (``m1``, ``m2``…) shown in this
turn, all of them the user's own; so no answer can read or touch another user's memories.
Stored memories are shown quoted and neutralised: a memory cannot pose as an instruction or
forge another memory line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import ExtractionError
from ..models import AddOp, DeleteOp, Memory, Operation, SupersedeOp, UpdateOp
from ..models import Provenance as StoredProvenance
from ..untrusted import neutralise, quote
from ..validation import content_hash
from .checks import (
    Limits,
    PlannedOp,
    check_category,
    check_date,
    check_entity_names,
    check_fact,
    check_importance,
    check_items,
)
from .extract import Checked, Evidence, ground
from .recover import recover_items
from .results import MemoryChange

__all__ = ["PROMPT_VERSION", "Provenance", "changes", "describe_memories", "to_store_ops",
           "validate_operations"]

PROMPT_VERSION = "2026-11-aliases-1"
_OPS = {"ADD", "UPDATE", "SUPERSEDE", "DELETE", "NONE"}
_NEEDS_HANDLE = {"UPDATE", "SUPERSEDE", "DELETE"}
_NEEDS_CONTENT = {"ADD", "UPDATE", "SUPERSEDE"}


def describe_memories(handles: dict[str, Memory]) -> str:
    """Existing memories as ``[m1] (category, since 2026-01-01) «content»`` lines."""
    if not handles:
        return "(none)"
    lines = []
    for handle, memory in handles.items():
        label = ", ".join(x for x in (memory.category,
                                      f"since {memory.valid_from:%Y-%m-%d}") if x)
        lines.append(f"[{handle}] ({neutralise(label)}) {quote(memory.content)}")
    return "\n".join(lines)


def _operation(item: dict[str, Any], where: str, handles: dict[str, Memory],
               touched: dict[str, str], turn_time: datetime, limits: Limits) -> PlannedOp:
    op = item.get("op")
    op = op.strip().upper() if isinstance(op, str) else op
    if op not in _OPS:
        raise ExtractionError(f"{where}: 'op' must be one of {sorted(_OPS)}, got {op!r:.40}")
    handle = item.get("handle")
    if handle is not None and not isinstance(handle, str):
        raise ExtractionError(f"{where}: 'handle' must be a string such as 'm1'")
    handle = handle.strip() if handle else None
    if op in _NEEDS_HANDLE and not handle:
        raise ExtractionError(f"{where}: {op} needs the handle of an existing memory")
    if op == "ADD":
        handle = None
    if handle is not None:
        if handle not in handles:
            known = ", ".join(handles) or "none"
            raise ExtractionError(f"{where}: unknown handle {handle[:40]!r} "
                                  f"(the handles of this turn are: {known})")
        if op != "NONE" and touched.get(handle, "NONE") != "NONE":
            raise ExtractionError(f"{where}: {handle} already has a {touched[handle]} "
                                  "operation; use one operation per memory")
        touched[handle] = op if op != "NONE" else touched.get(handle, "NONE")
    content = check_fact(item.get("content"), where, limits) if op in _NEEDS_CONTENT else None
    return PlannedOp(op=op, handle=handle, content=content,
                     category=check_category(item.get("category"), where, limits),
                     importance=check_importance(item.get("importance"), where),
                     valid_from=check_date(item.get("valid_from"), where, turn_time),
                     entities=check_entity_names(item.get("entities"), content))


def validate_operations(payload: Any, raw_text: str, handles: dict[str, Memory],
                        evidence: Evidence, *, turn_time: datetime, limits: Limits) -> Checked:
    """Check a :class:`MemoryOperations` answer against this turn's handles and words.

    Shape errors raise (the model gets one repair); an operation whose evidence is not the
    user's own words in this turn, or that a truncated answer cut off, is dropped.

    Raises:
        ExtractionError: anything wrong, with a message for the repair prompt.
    """
    items, cut = recover_items(payload, raw_text, "operations")
    dropped = [f"operations: {cut} item(s) cut off by a truncated answer"] if cut else []
    planned: list[PlannedOp] = []
    touched: dict[str, str] = {}
    for i, item in enumerate(check_items(items, "operations", limits)):
        where = f"operations[{i}]"
        op = _operation(item, where, handles, touched, turn_time, limits)
        if op.op in _NEEDS_CONTENT:
            grounded = ground(op, item, where, evidence, dropped)
            if grounded is None:
                continue
            op = grounded
        planned.append(op)
    return Checked(planned, dropped)


# Keys the pipeline and the agent tools kept in metadata before the store had provenance:
# dropped on update.
_OLD_PROVENANCE_KEYS = ("source", "origin", "evidence", "evidence_role", "trust",
                        "prompt_version", "model")


@dataclass(frozen=True)
class Provenance:
    """Where the pipeline's writes of one turn come from (stored in ``lpm_provenance``)."""

    model: str | None
    agent_id: str | None
    session_id: str | None

    def metadata(self, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """The caller's metadata without the keys provenance replaced (``lpm_provenance``
        is where a memory's origin lives)."""
        return {k: v for k, v in (base or {}).items() if k not in _OLD_PROVENANCE_KEYS}

    def record(self, op: PlannedOp) -> StoredProvenance:
        """The op's provenance: the user's words it rests on, the message they were found in
        (role, position, id), model, prompt."""
        return StoredProvenance(
            origin="pipeline", roles=[op.evidence_role] if op.evidence_role else [],
            positions=[] if op.evidence_position is None else [op.evidence_position],
            message_ids=[op.evidence_message_id] if op.evidence_message_id else [],
            evidence=op.evidence, session_id=self.session_id, agent_id=self.agent_id,
            model=self.model, prompt_version=PROMPT_VERSION,
            trust="user" if op.evidence_role == "user" else "low")


def _store_entities(p: PlannedOp) -> list[Any]:
    """The op's entities as the store takes them: a name, or a name with its aliases."""
    return [name if not aliases else {"name": name, "aliases": list(aliases)}
            for name, aliases in p.entities]


def to_store_ops(plan: Sequence[PlannedOp], handles: dict[str, Memory], *, timestamp: datetime,
                 provenance: Provenance) -> tuple[list[Operation], list[MemoryChange]]:
    """Store operations for a validated plan, and the no-op changes (NONE, duplicates)."""
    known = {m.content_hash: m for m in handles.values()}
    ops: list[Operation] = []
    unchanged: list[MemoryChange] = []
    adding: set[str] = set()
    for p in plan:
        target = handles.get(p.handle) if p.handle else None
        if p.op == "NONE":
            if target is not None:
                unchanged.append(MemoryChange("none", target))
            continue
        if p.op == "ADD":
            assert p.content is not None
            h = content_hash(p.content)
            if h in adding:
                continue
            adding.add(h)
            if h in known:
                unchanged.append(MemoryChange("none", known[h], duplicate=True))
                continue
            ops.append(AddOp(content=p.content, category=p.category,
                             importance=0.5 if p.importance is None else p.importance,
                             agent_id=provenance.agent_id, session_id=provenance.session_id,
                             valid_from=p.valid_from or timestamp,
                             metadata=provenance.metadata(), provenance=provenance.record(p),
                             entities=_store_entities(p)))
        elif p.op == "UPDATE":
            assert target is not None
            if p.content == target.content and p.category in (None, target.category) \
                    and p.importance in (None, target.importance):
                unchanged.append(MemoryChange("none", target, duplicate=True))
                continue
            ops.append(UpdateOp(memory_id=target.id, content=p.content, category=p.category,
                                importance=p.importance,
                                metadata=provenance.metadata(dict(target.metadata)),
                                provenance=provenance.record(p),
                                entities=_store_entities(p)))
        elif p.op == "SUPERSEDE":
            assert target is not None
            ops.append(SupersedeOp(memory_id=target.id, content=p.content, category=p.category,
                                   importance=p.importance, metadata=provenance.metadata(),
                                   valid_from=p.valid_from or timestamp,
                                   provenance=provenance.record(p),
                                   entities=_store_entities(p)))
        else:  # DELETE
            assert target is not None
            ops.append(DeleteOp(memory_id=target.id, reason="forgotten by the memory pipeline",
                                provenance=StoredProvenance(
                                    origin="pipeline", session_id=provenance.session_id,
                                    agent_id=provenance.agent_id, model=provenance.model,
                                    prompt_version=PROMPT_VERSION)))
    return ops, unchanged


def changes(applied: Sequence[Any]) -> list[MemoryChange]:
    """The store's applied operations as the caller's :class:`MemoryChange` list."""
    return [MemoryChange("none" if a.duplicate_of_existing else a.kind, a.memory,
                         previous=a.previous, duplicate=a.duplicate_of_existing)
            for a in applied]
