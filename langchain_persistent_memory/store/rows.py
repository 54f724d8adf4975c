"""Conversions between SQL rows and the public data types (no I/O)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Row

from ..models import EventType, Memory, MemoryEvent
from .schema import history, memories

__all__ = ["MEMORY_COLUMNS", "decode_vector", "encode_vector", "row_to_event", "row_to_memory"]

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


def row_to_event(row: Row[Any] | Any) -> MemoryEvent:
    m = row._mapping
    return MemoryEvent.model_construct(
        id=m["id"], memory_id=m["memory_id"], user_id=m["user_id"], event=EventType(m["event"]),
        old_content=m["old_content"], new_content=m["new_content"], created_at=m["created_at"],
        metadata=m["metadata"] or {},
    )


HISTORY_COLUMNS = list(history.c)
