"""Everything a store holds, read straight from SQL, so a test can prove nothing changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from langchain_persistent_memory import MemoryStore
from langchain_persistent_memory.store.schema import changes, history, memories, meta


def db_fingerprint(store: MemoryStore) -> dict[str, Any]:
    """Rows (with embeddings), history, change-log head and meta: equal iff untouched."""
    with store.engine.connect() as conn:
        return {
            "memories": [tuple(r) for r in conn.execute(select(memories)
                                                        .order_by(memories.c.pk))],
            "history": [tuple(r) for r in conn.execute(select(history)
                                                       .order_by(history.c.id))],
            "head": conn.execute(select(func.max(changes.c.seq))).scalar(),
            "meta": dict(conn.execute(select(meta.c.key, meta.c.value)).all()),
        }
