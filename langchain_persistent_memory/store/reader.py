"""The hot reads of a search, on one dedicated connection in autocommit mode.

A search needs at most four statements: the user's version (is my partition fresh?), the
user's rows and their entity links when the partition must be (re)loaded, and the rows of
the final hits. Each is
one autocommit statement on a kept driver connection: no pool checkout, no BEGIN/ROLLBACK
around it, and on PostgreSQL psycopg prepares them after a few runs (a ROLLBACK would not
reset that here: there is none). Every statement names the user.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine

from ..errors import StoreClosedError
from ..models import Memory
from .rows import MEMORY_COLUMNS, raw_memory, to_utc
from .schema import memories, memory_entities, users

__all__ = ["EntityLinks", "LoadedRow", "Reader"]

_MMAP_BYTES = 1 << 31  # SQLite caps it at its compile-time maximum (2 GB by default)
_ROW_NAMES = [c.name for c in MEMORY_COLUMNS]

# A memory's entity links as stored in ``lpm_memory_entities``: (entity key, is subject,
# the aliases this memory gives it)
EntityLinks = tuple[tuple[str, bool, tuple[str, ...]], ...]
# (pk, session_id, content, valid_from, importance, current, content_hash, vector, links)
LoadedRow = tuple[int, str | None, str, datetime, float, bool, str, np.ndarray, EntityLinks]


class Reader:
    """Raw autocommit reads for SQLite files and PostgreSQL (general path otherwise)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._lock = threading.Lock()
        self._closed = False
        self._raw: Any = None
        db = engine.url.database
        in_memory = self._sqlite and (db in (None, "", ":memory:")
                                      or str(db).startswith("file::memory:"))
        if not in_memory:  # in-memory SQLite has one shared connection: use the pool's
            self._raw = self._connect()
        mark = "?" if self._sqlite else "%s"
        self._version_sql = f"SELECT version FROM {users.name} WHERE user_id = {mark}"
        self._load_sql = (f"SELECT pk, session_id, content, valid_from, importance, "
                          f"valid_to IS NULL, content_hash, embedding FROM {memories.name} "
                          f"WHERE user_id = {mark}")
        self._links_sql = (f"SELECT memory_pk, entity_key, subject, aliases FROM "
                           f"{memory_entities.name} WHERE user_id = {mark}")
        self._hash_sql = (f"SELECT content_hash, embedding FROM {memories.name} WHERE "
                          f"user_id = {mark} AND valid_to IS NULL AND content_hash ")
        self._rows_sql = f"SELECT {', '.join(_ROW_NAMES)} FROM {memories.name} WHERE "
        self._mark = mark

    def _connect(self) -> Any:
        raw = self._engine.raw_connection()  # with the engine's connect-time settings
        driver: Any = raw.driver_connection
        if self._sqlite:
            # Rows of random users are mostly outside the page cache: through a memory map
            # they come from the OS page cache without a read() call each.
            driver.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
        else:
            driver.autocommit = True
            driver.prepare_threshold = 1
        return raw

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            if self._closed:
                raise StoreClosedError("this MemoryStore is closed")
            if self._raw is None:
                with self._engine.connect() as conn:
                    return list(conn.exec_driver_sql(sql, tuple(params)).all())
            try:
                return self._run(sql, params)
            except Exception:
                if self._sqlite or not self._raw.driver_connection.closed:
                    raise
                # The server closed the connection (restart, idle timeout): a new one, once.
                with contextlib.suppress(Exception):
                    self._raw.invalidate()
                self._raw = self._connect()
                return self._run(sql, params)

    def _run(self, sql: str, params: Sequence[Any]) -> list[Any]:
        cur = self._raw.driver_connection.cursor()
        try:
            return list(cur.execute(sql, params).fetchall())
        finally:
            cur.close()

    def version(self, user_id: str) -> int | None:
        """The user's data version (None: the user has no data)."""
        rows = self._fetch(self._version_sql, (user_id,))
        return int(rows[0][0]) if rows else None

    def load(self, user_id: str) -> tuple[int | None, list[LoadedRow]]:
        """The user's version, then every row of the user with its entity links.

        In that order, as separate statements: a write committed after the version was read
        leaves rows or links newer than the version, which the next freshness check catches;
        the other order could keep stale rows under a new version for good.
        """
        version = self.version(user_id)
        if version is None:
            return None, []
        rows = self._fetch(self._load_sql, (user_id,))
        links: dict[int, list[tuple[str, bool, tuple[str, ...]]]] = {}
        for pk, key, subject, aliases in sorted(self._fetch(self._links_sql, (user_id,)),
                                                key=lambda r: (r[0], r[1])):
            if isinstance(aliases, str):  # SQLite returns the JSON text
                aliases = json.loads(aliases)
            links.setdefault(int(pk), []).append((key, bool(subject), tuple(aliases or ())))
        return version, [(int(pk), session, content, to_utc(when), float(importance),
                          bool(current), digest, np.frombuffer(blob, dtype="<f4"),
                          tuple(links.get(int(pk), ())))
                         for pk, session, content, when, importance, current, digest, blob
                         in rows]

    def vectors_by_hash(self, user_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors of the user's current memories with these content hashes."""
        if self._sqlite:
            rows = self._fetch(self._hash_sql + f"IN ({', '.join('?' * len(hashes))})",
                               [user_id, *hashes])
        else:
            rows = self._fetch(self._hash_sql + "= ANY(%s)", (user_id, hashes))
        return {h: np.frombuffer(blob, dtype="<f4") for h, blob in rows}

    def memories(self, user_id: str, pks: list[int]) -> dict[int, Memory]:
        """The rows of these keys that belong to ``user_id``, as memories."""
        if not pks:
            return {}
        if self._sqlite:
            # By key only: SQLite might pick the per-user index and scan a big user's rows.
            sql = self._rows_sql + f"pk IN ({', '.join('?' * len(pks))})"
            rows = self._fetch(sql, pks)
        else:
            rows = self._fetch(self._rows_sql + "pk = ANY(%s) AND user_id = %s",
                               (pks, user_id))
        return {int(row[0]): raw_memory(row) for row in rows if row[2] == user_id}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._raw is not None:
                with contextlib.suppress(Exception):  # closing must never raise
                    self._raw.close()
                self._raw = None

