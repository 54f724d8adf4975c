"""Conversions between SQL rows and the public data types (no I/O)."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import Row

from ..models import EventType, Memory, MemoryEvent
from .schema import history, memories

__all__ = [
    "MEMORY_COLUMNS",
    "SQLITE_MEMORY_SELECT",
    "construct_memory",
    "decode_vector",
    "encode_vector",
    "row_to_event",
    "row_to_memory",
    "select_by_pks_sql",
    "sqlite_rows_to_memories",
]

# Everything but the embedding blob, which only export and rebuild need.
MEMORY_COLUMNS = [c for c in memories.c if c.name != "embedding"]


def encode_vector(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def decode_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


def row_to_memory(row: Row[Any] | Any, *, with_embedding: bool = False) -> Memory:
    """Build a Memory without re-validating data that was validated on the way in."""
    mapping = row._mapping
    embedding = None
    if with_embedding and "embedding" in mapping:
        embedding = decode_vector(mapping["embedding"]).tolist()
    return Memory.model_construct(
        id=mapping["id"],
        user_id=mapping["user_id"],
        content=mapping["content"],
        agent_id=mapping["agent_id"],
        session_id=mapping["session_id"],
        category=mapping["category"],
        importance=mapping["importance"],
        created_at=mapping["created_at"],
        updated_at=mapping["updated_at"],
        valid_from=mapping["valid_from"],
        valid_to=mapping["valid_to"],
        superseded_by=mapping["superseded_by"],
        metadata=mapping["metadata"] or {},
        content_hash=mapping["content_hash"],
        embedding=embedding,
    )


# The same columns read with a raw SQLite cursor (the per-search hot path): the values come
# back as SQLite stores them, so the conversions SQLAlchemy's types would do happen here.
# No user_id term: SQLite might pick the per-user index and scan all of a big
# user's rows; the caller checks the owner instead.
SQLITE_MEMORY_SELECT = (f"SELECT {', '.join(c.name for c in MEMORY_COLUMNS)} "
                        f"FROM {memories.name} WHERE pk IN ")


@functools.lru_cache(maxsize=64)
def select_by_pks_sql(count: int) -> str:
    """:data:`SQLITE_MEMORY_SELECT` for ``count`` pks (built once per count)."""
    return SQLITE_MEMORY_SELECT + f"({', '.join('?' * count)})"
assert [c.name for c in MEMORY_COLUMNS] == [  # the order sqlite_rows_to_memories unpacks
    "pk", "id", "user_id", "agent_id", "session_id", "content", "category", "importance",
    "created_at", "updated_at", "valid_from", "valid_to", "superseded_by", "metadata",
    "content_hash"]


@functools.lru_cache(maxsize=4096)
def _utc(text: str) -> datetime:
    """Parsed once per distinct text: a row's created/updated/valid_from are usually one
    instant, and a batch's rows share it (parsing was most of a search's row cost).
    Datetimes are immutable, so sharing one is safe."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def sqlite_rows_to_memories(rows: list[tuple[Any, ...]],
                            user_id: str | None = None) -> dict[int, Memory]:
    """Memories by pk from raw SQLite rows of :data:`SQLITE_MEMORY_SELECT`, only those of
    ``user_id`` if given.

    It runs for every search hit: rows are unpacked by position in one loop.
    """
    out: dict[int, Memory] = {}
    for (pk, memory_id, owner, agent_id, session_id, content, category, importance, created,
         updated, valid_from, valid_to, superseded_by, meta, digest) in rows:
        if user_id is not None and owner != user_id:
            continue
        out[pk] = construct_memory({
            "id": memory_id, "user_id": owner, "content": content, "agent_id": agent_id,
            "session_id": session_id, "category": category, "importance": importance,
            "created_at": _utc(created), "updated_at": _utc(updated),
            "valid_from": _utc(valid_from),
            "valid_to": None if valid_to is None else _utc(valid_to),
            "superseded_by": superseded_by,
            "metadata": json.loads(meta) if meta and meta != "{}" else {},
            "content_hash": digest, "embedding": None,
        })
    return out


_MEMORY_FIELDS = set(Memory.model_fields)


def construct_memory(fields: dict[str, Any]) -> Memory:
    """``Memory.model_construct`` for a dict holding every field, at a fraction of its cost
    (it runs for each search hit and each added memory): stored data is already valid."""
    memory = Memory.__new__(Memory)
    object.__setattr__(memory, "__dict__", fields)
    object.__setattr__(memory, "__pydantic_fields_set__", _MEMORY_FIELDS.copy())
    object.__setattr__(memory, "__pydantic_extra__", None)
    object.__setattr__(memory, "__pydantic_private__", None)
    return memory


def row_to_event(row: Row[Any] | Any) -> MemoryEvent:
    m = row._mapping
    return MemoryEvent.model_construct(
        id=m["id"], memory_id=m["memory_id"], user_id=m["user_id"], event=EventType(m["event"]),
        old_content=m["old_content"], new_content=m["new_content"], created_at=m["created_at"],
        metadata=m["metadata"] or {},
    )


HISTORY_COLUMNS = list(history.c)
