"""Erase one user's rows from every table (``forget_user``)."""

from __future__ import annotations

from sqlalchemy import Connection, delete

from .entity_rows import purge_entities
from .schema import history, memories, provenance, users

__all__ = ["purge_user"]


def purge_user(conn: Connection, user_id: str) -> int:
    """Delete every row of a user, its history and its version; return memories deleted.

    With the version row gone, every process's loaded partition of the user is stale on its
    next check and is dropped.
    """
    # The DELETE's own row count: two concurrent forgets of a user count each row once.
    count = conn.execute(delete(memories).where(memories.c.user_id == user_id)).rowcount
    conn.execute(delete(history).where(history.c.user_id == user_id))
    purge_entities(conn, user_id)
    conn.execute(delete(provenance).where(provenance.c.user_id == user_id))
    conn.execute(delete(users).where(users.c.user_id == user_id))
    return int(count)

