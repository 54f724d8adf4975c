"""Conversions between SQL rows and the public data types (no I/O)."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import Row

from ..models import EventType, Memory, MemoryEvent
from .schema import memories

__all__ = [
    "MEMORY_COLUMNS",
    "construct_memory",
    "decode_vector",
    "encode_vector",
    "parse_utc",
    "raw_memory",
    "row_to_event",
    "row_to_memory",
    "to_utc",
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


assert [c.name for c in MEMORY_COLUMNS] == [  # the order reader.Reader.memories unpacks
    "pk", "id", "user_id", "agent_id", "session_id", "content", "category", "importance",
    "created_at", "updated_at", "valid_from", "valid_to", "superseded_by", "metadata",
    "content_hash"]


@functools.lru_cache(maxsize=4096)
def parse_utc(text: str) -> datetime:
    """Parsed once per distinct text: a row's created/updated/valid_from are usually one
    instant, and a batch's rows share it (parsing was most of a search's row cost).
    Datetimes are immutable, so sharing one is safe."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def raw_memory(row: tuple[Any, ...]) -> Memory:
    """A memory from a raw driver row of :data:`MEMORY_COLUMNS` (the pk is not part of it).

    SQLite gives text timestamps and JSON text, psycopg datetimes and dicts: both are
    handled, so the hot reads skip SQLAlchemy's result machinery on either backend.
    """
    (_, memory_id, owner, agent_id, session_id, content, category, importance, created,
     updated, valid_from, valid_to, superseded_by, meta, digest) = row
    if isinstance(meta, str):
        meta = json.loads(meta) if meta != "{}" else {}
    return construct_memory({
        "id": memory_id, "user_id": owner, "content": content, "agent_id": agent_id,
        "session_id": session_id, "category": category, "importance": importance,
        "created_at": to_utc(created), "updated_at": to_utc(updated),
        "valid_from": to_utc(valid_from),
        "valid_to": None if valid_to is None else to_utc(valid_to),
        "superseded_by": superseded_by, "metadata": meta or {},
        "content_hash": digest, "embedding": None,
    })


def to_utc(value: Any) -> datetime:
    """An aware UTC datetime from SQLite text or a (naive UTC) driver datetime."""
    if isinstance(value, str):
        return parse_utc(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)  # type: ignore[no-any-return]
    return value.astimezone(timezone.utc)  # type: ignore[no-any-return]


_MEMORY_FIELDS = set(Memory.model_fields)


def construct_memory(fields: dict[str, Any]) -> Memory:
    """``Memory.model_construct`` for a dict holding every field, at a fraction of its cost
    (it runs for each search hit and each added memory): stored data is already valid."""
    fields.setdefault("provenance", None)  # filled only on request (see reads)
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

