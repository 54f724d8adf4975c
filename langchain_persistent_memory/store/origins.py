"""Provenance: checked values for ``lpm_provenance`` and the reads of events' and memories'
provenance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from ..errors import InvalidInputError
from ..models import EventType, Provenance
from ..validation import check_content, check_id, check_optional_id
from .schema import history, provenance

__all__ = ["PROVENANCE_FIELDS", "of_events", "of_memories", "provenance_values"]

# The provenance columns besides the event, memory and user they belong to.
PROVENANCE_FIELDS = ("origin", "roles", "positions", "message_ids", "evidence", "session_id",
                     "agent_id", "model", "prompt_version", "trust")

_FIELDS = [provenance.c[name] for name in PROVENANCE_FIELDS]


def provenance_values(given: Provenance | None) -> dict[str, Any]:
    """A write's provenance as ``lpm_provenance`` values (a direct API call by default)."""
    p = given if given is not None else Provenance()
    if not isinstance(p, Provenance):
        raise InvalidInputError("provenance must be a Provenance", field="provenance")
    for name, limit in (("model", 256), ("prompt_version", 64), ("trust", 16)):
        value = getattr(p, name)
        if value is not None and len(value) > limit:
            raise InvalidInputError(f"provenance.{name} is longer than {limit} characters",
                                    field="provenance")
    evidence = None if p.evidence is None else check_content(p.evidence, max_chars=100_000)
    message_ids = [check_id(i, "provenance.message_ids") for i in p.message_ids]
    return {"origin": p.origin, "roles": list(p.roles), "positions": list(p.positions),
            "message_ids": message_ids, "evidence": evidence,
            "session_id": check_optional_id(p.session_id, "provenance.session_id"),
            "agent_id": check_optional_id(p.agent_id, "provenance.agent_id"),
            "model": p.model, "prompt_version": p.prompt_version, "trust": p.trust}


def _model(row: Any) -> Provenance:
    m = row._mapping
    values = {c.name: m[c.name] for c in _FIELDS}
    values["message_ids"] = values["message_ids"] or []  # NULL: written before schema v7
    return Provenance.model_construct(**values)


def of_events(conn: Connection, event_ids: Sequence[int]) -> dict[int, Provenance]:
    """Each event's provenance (events written before provenance was kept have none)."""
    found: dict[int, Provenance] = {}
    ids = list(event_ids)
    for start in range(0, len(ids), 500):
        rows = conn.execute(select(provenance.c.event_id, *_FIELDS)
                            .where(provenance.c.event_id.in_(ids[start:start + 500])))
        found.update((int(r.event_id), _model(r)) for r in rows)
    return found


def of_memories(conn: Connection, memory_ids: Sequence[str]) -> dict[str, Provenance]:
    """Each memory's provenance: that of the latest event that wrote it (its add, or the
    update that last changed it)."""
    found: dict[str, Provenance] = {}
    ids = list(memory_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        latest = (select(func.max(history.c.id))
                  .where(history.c.memory_id.in_(chunk),
                         history.c.event.in_([EventType.ADD.value, EventType.UPDATE.value]))
                  .group_by(history.c.memory_id))
        rows = conn.execute(select(provenance.c.memory_id, *_FIELDS)
                            .where(provenance.c.event_id.in_(latest)))
        found.update((str(r.memory_id), _model(r)) for r in rows)
    return found
