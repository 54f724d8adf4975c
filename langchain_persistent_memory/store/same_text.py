"""Lookups by content hash among a user's current memories: identical texts are not added
twice (dedupe) and reuse their stored vector instead of calling the model."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, select

from ..models import Memory
from .rows import MEMORY_COLUMNS, raw_memory, row_to_memory
from .schema import memories

__all__ = ["current_by_hash", "existing_vectors", "same_text"]


def current_by_hash(conn: Connection, user_id: str, hashes: list[str],
                     columns: list[Any]) -> list[Any]:
    """``columns`` of the user's current memories whose content hash is one of ``hashes``.

    It runs before and inside every add, so on SQLite it goes through the driver's own
    cursor (SQLAlchemy's statement machinery cost more than SQLite's work). Hashes are
    sent in chunks that stay under every backend's bind-parameter limit.
    """
    names = ", ".join(c.name for c in columns)
    rows: list[Any] = []
    for start in range(0, len(hashes), 500):
        chunk = hashes[start:start + 500]
        if conn.dialect.name == "sqlite":
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            rows += cur.execute(
                f"SELECT {names} FROM {memories.name} WHERE user_id = ? AND valid_to IS NULL"
                f" AND content_hash IN ({', '.join('?' * len(chunk))})",
                [user_id, *chunk]).fetchall()
            cur.close()
        else:
            rows += conn.execute(_by_hash_statement(tuple(columns)),
                                 {"user_id": user_id, "hashes": chunk}).all()
    return rows


@functools.lru_cache(maxsize=8)
def _by_hash_statement(columns: tuple[Any, ...]) -> Any:
    """Built once per column set: constructing it costs more than running it on a small store."""
    return select(*columns).where(
        memories.c.user_id == bindparam("user_id"), memories.c.valid_to.is_(None),
        memories.c.content_hash.in_(bindparam("hashes", expanding=True)))


def same_text(conn: Connection, user_id: str, hashes: list[str]) -> list[Memory]:
    """The user's current memories with one of these content hashes."""
    rows = current_by_hash(conn, user_id, hashes, MEMORY_COLUMNS)
    if conn.dialect.name == "sqlite":  # raw values
        return [raw_memory(row) for row in rows]
    return [row_to_memory(row) for row in rows]



def existing_vectors(conn: Connection, user_id: str,
                     hashes: list[str]) -> dict[str, np.ndarray]:
    """Vectors stored for these content hashes among the user's current memories.

    Per user: an index that finds a text across all users costs every add a random page
    write (see ``schema``); ``MemoryStore`` also remembers recent vectors in process.
    """
    found: dict[str, np.ndarray] = {}
    for h, blob in current_by_hash(conn, user_id, hashes,
                                    [memories.c.content_hash, memories.c.embedding]):
        found.setdefault(h, np.frombuffer(blob, dtype="<f4"))
    return found

