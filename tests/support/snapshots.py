"""Everything a store holds, read straight from SQL, so a test can prove nothing changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from langchain_persistent_memory import MemoryStore
from langchain_persistent_memory.store.schema import history, memories, meta, users


def db_fingerprint(store: MemoryStore) -> dict[str, Any]:
    """Rows (with embeddings), history, users' versions and meta: equal iff untouched."""
    with store.engine.connect() as conn:
        return {
            "memories": [tuple(r) for r in conn.execute(select(memories)
                                                        .order_by(memories.c.pk))],
            "history": [tuple(r) for r in conn.execute(select(history)
                                                       .order_by(history.c.id))],
            "versions": dict(conn.execute(select(users.c.user_id, users.c.version)).all()),
            "meta": dict(conn.execute(select(meta.c.key, meta.c.value)).all()),
        }
