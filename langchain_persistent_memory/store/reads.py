"""Reads that go straight to SQL (no partition): by id, history, listings, counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, func, select

from ..errors import MemoryNotFoundError
from ..models import Memory, MemoryEvent, ScoredMemory
from ..scopes import NAMESPACE_PREFIX
from ..validation import check_id, check_user_id
from .entity_rows import EntityRow, user_entities
from .filters import SearchFilters, build_filter_query
from .origins import of_events, of_memories
from .rows import MEMORY_COLUMNS, row_to_event, row_to_memory
from .schema import history, memories

__all__ = ["count", "entities", "get", "history_of", "hits_with_provenance", "list_memories",
           "table_counts", "user_ids", "with_origins"]


def get(engine: Engine, memory_id: str, user_id: str | None, with_embedding: bool,
        with_provenance: bool = False) -> Memory:
    memory_id = check_id(memory_id, "memory_id")
    user_id = None if user_id is None else check_user_id(user_id)
    cols = list(memories.c) if with_embedding else MEMORY_COLUMNS
    with engine.connect() as conn:
        row = conn.execute(select(*cols).where(memories.c.id == memory_id)).first()
        if row is None or (user_id is not None and row.user_id != user_id):
            raise MemoryNotFoundError(memory_id, user_id=user_id)
        memory = row_to_memory(row, with_embedding=with_embedding)
        if with_provenance:
            memory = with_origins(conn, [memory])[0]
    return memory


def with_origins(conn: Connection, found: list[Memory]) -> list[Memory]:
    """These memories with their provenance filled in (an opt-in: it is one more query)."""
    known = of_memories(conn, [m.id for m in found])
    return [m.model_copy(update={"provenance": known.get(m.id)}) for m in found]


def history_of(engine: Engine, memory_id: str, user_id: str | None) -> list[MemoryEvent]:
    memory_id = check_id(memory_id, "memory_id")
    user_id = None if user_id is None else check_user_id(user_id)
    with engine.connect() as conn:
        rows = conn.execute(select(history).where(history.c.memory_id == memory_id)
                            .order_by(history.c.id)).all()
        if not rows or (user_id is not None and rows[0].user_id != user_id):
            raise MemoryNotFoundError(memory_id, user_id=user_id)
        known = of_events(conn, [r.id for r in rows])
    return [row_to_event(r).model_copy(update={"provenance": known.get(r.id)}) for r in rows]


def list_memories(engine: Engine, user_id: str, include_superseded: bool, limit: int | None,
                  offset: int, filters: dict[str, Any]) -> list[Memory]:
    query = build_filter_query(check_user_id(user_id), SearchFilters.of(
        include_superseded=include_superseded, **filters), columns=MEMORY_COLUMNS)
    query = query.order_by(memories.c.created_at.desc(), memories.c.pk.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [row_to_memory(r) for r in conn.execute(query)]


def count(engine: Engine, user_id: str | None, include_superseded: bool) -> int:
    query = select(func.count()).select_from(memories)
    if user_id is not None:
        query = query.where(memories.c.user_id == check_user_id(user_id))
    if not include_superseded:
        query = query.where(memories.c.valid_to.is_(None))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


_USERS_ONLY = ~memories.c.user_id.startswith(NAMESPACE_PREFIX, autoescape=True)


def user_ids(engine: Engine) -> list[str]:
    """Users only: LangGraph namespaces are another scope kind (see ``scopes``)."""
    with engine.connect() as conn:
        rows = conn.execute(select(memories.c.user_id).distinct().where(_USERS_ONLY)
                            .order_by(memories.c.user_id))
        return [r[0] for r in rows]


def table_counts(engine: Engine) -> dict[str, int]:
    """Current and superseded memories, users and history events, for ``stats()``."""
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(memories)).scalar_one()
        current = conn.execute(select(func.count()).select_from(memories)
                               .where(memories.c.valid_to.is_(None))).scalar_one()
        users = conn.execute(select(func.count(memories.c.user_id.distinct()))
                             .where(_USERS_ONLY)).scalar_one()
        events = conn.execute(select(func.count()).select_from(history)).scalar_one()
    return {"memories": int(current), "superseded": int(total - current),
            "users": int(users), "history_events": int(events)}


def entities(engine: Engine, user_id: str, include_superseded: bool) -> list[EntityRow]:
    user_id = check_user_id(user_id)
    with engine.connect() as conn:
        return user_entities(conn, user_id, include_superseded=include_superseded)


def hits_with_provenance(engine: Engine, hits: list[ScoredMemory]) -> list[ScoredMemory]:
    """Search hits with each memory's provenance filled in (one query)."""
    with engine.connect() as conn:
        filled = with_origins(conn, [hit.memory for hit in hits])
    return [ScoredMemory(memory, hit.score, hit.cosine, hit.keyword_match)
            for memory, hit in zip(filled, hits)]
