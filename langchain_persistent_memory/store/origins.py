"""Provenance reads: the ``lpm_provenance`` rows of history events and of memories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from ..models import EventType, Provenance
from .schema import history, provenance

__all__ = ["of_events", "of_memories"]

_FIELDS = [c for c in provenance.c if c.name not in ("event_id", "memory_id", "user_id")]


def _model(row: Any) -> Provenance:
    m = row._mapping
    return Provenance.model_construct(**{c.name: m[c.name] for c in _FIELDS})


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
