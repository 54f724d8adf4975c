"""Tables and migrations: the SQL source of truth.

``lpm_users`` holds one version per user, bumped by every write in its own transaction: a
process checks it before using its in-memory partition of that user (see ``partitions``),
and the row lock it takes serialises writes of one user only. ``MIGRATIONS`` upgrades an
older database in place; the applied version lives in ``lpm_meta``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ..errors import EmbeddingMismatchError, SchemaVersionError

__all__ = [
    "SCHEMA_VERSION",
    "add_meta",
    "entities",
    "first_version",
    "history",
    "memories",
    "memory_entities",
    "meta",
    "metadata_obj",
    "migrate",
    "prepare_database",
    "provenance",
    "read_meta",
    "users",
    "write_meta",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Store naive UTC, return aware UTC: the same on SQLite (no tz) and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if when.tzinfo is None:  # str: raw SQLite text (e.g. from a hand-written query)
            return when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")
PKType = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrement needs INTEGER

metadata_obj = MetaData()

meta = Table(
    "lpm_meta",
    metadata_obj,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

_USER_INDEX = "ix_lpm_memories_user_hash"

memories = Table(
    "lpm_memories",
    metadata_obj,
    # Integer key: doubles as the vector id inside the FAISS partitions.
    Column("pk", PKType, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("user_id", String(256), nullable=False),
    Column("agent_id", String(256)),
    Column("session_id", String(256)),
    Column("content", Text, nullable=False),
    Column("category", String(128)),
    Column("importance", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_to", UTCDateTime),
    Column("superseded_by", String(36)),
    Column("metadata", JSONType, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    # One index serves a user's listings (user, valid_to) and identical-text lookups
    # (+ content_hash). A global content_hash index cost more than the row itself: every
    # add landed on a random page of it, so a 100-row commit rewrote ~100 index pages.
    Index(_USER_INDEX, "user_id", "valid_to", "content_hash"),
)

history = Table(
    "lpm_history",
    metadata_obj,
    Column("id", PKType, primary_key=True, autoincrement=True),
    Column("memory_id", String(36), nullable=False, index=True),
    Column("user_id", String(256), nullable=False, index=True),
    Column("event", String(16), nullable=False),
    Column("old_content", Text),
    Column("new_content", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("metadata", JSONType, nullable=False),
)

users = Table(
    "lpm_users",
    metadata_obj,
    Column("user_id", String(256), primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# Entities a user's memories name (issue #16): one row per user and folded key, and one
# link per memory and entity. Both are functions of the memories' text (the local extractor,
# ``entities.extract_entities``), written in the memory's own transaction and removed with it.
entities = Table(
    "lpm_entities",
    metadata_obj,
    Column("user_id", String(256), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
)

memory_entities = Table(
    "lpm_memory_entities",
    metadata_obj,
    Column("memory_pk", BigInteger, primary_key=True),
    Column("entity_key", String(256), primary_key=True),
    Column("user_id", String(256), nullable=False),
    Column("subject", Integer, nullable=False),  # 1: the memory is about it (its speaker)
    # v8: other names this memory gives the entity ("Mel", "sister"); NULL: none. Kept per
    # link, so an alias goes with the memory that gave it (delete, supersede, forget).
    Column("aliases", JSON(none_as_null=True).with_variant(JSONB(none_as_null=True),
                                                            "postgresql")),
    Index("ix_lpm_memory_entities_user_key", "user_id", "entity_key"),
)

# Where each history event's write came from (see models.Provenance): one row per event,
# keyed by the event's id; erased with the user's history.
provenance = Table(
    "lpm_provenance",
    metadata_obj,
    Column("event_id", PKType, primary_key=True, autoincrement=False),
    Column("memory_id", String(36), nullable=False, index=True),
    Column("user_id", String(256), nullable=False, index=True),
    Column("origin", String(16), nullable=False),
    Column("roles", JSONType, nullable=False),
    Column("positions", JSONType, nullable=False),
    Column("message_ids", JSONType),  # v7; NULL for events written before it
    Column("evidence", Text),
    Column("session_id", String(256)),
    Column("agent_id", String(256)),
    Column("model", String(256)),
    Column("prompt_version", String(64)),
    Column("trust", String(16)),
)

# v1-v3 only: the global change log and its keyword indexes, dropped by v4.
_changes = Table(
    "lpm_changes",
    MetaData(),
    Column("seq", PKType, primary_key=True, autoincrement=True),
    Column("user_id", String(256), nullable=False),
    Column("memory_pk", BigInteger, nullable=False),
    Column("op", String(8), nullable=False),
)

SCHEMA_VERSION = 8

Migration = Callable[[Connection], None]


def _v1(conn: Connection) -> None:
    metadata_obj.create_all(conn, tables=[memories, history])
    _changes.create(conn, checkfirst=True)


_FTS_TABLE = "lpm_fts"


def _v2(conn: Connection) -> None:
    """The v2-v3 keyword index (SQLite FTS5 through triggers, PostgreSQL a tsvector): the
    DDL stays so a v1 database upgrades through the same steps; v4 drops it."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {_FTS_TABLE} USING fts5(content, "
            "content='lpm_memories', content_rowid='pk', "
            "tokenize='porter unicode61 remove_diacritics 2')")
        conn.exec_driver_sql(f"INSERT INTO {_FTS_TABLE}({_FTS_TABLE}) VALUES ('rebuild')")
    else:
        conn.exec_driver_sql(
            "ALTER TABLE lpm_memories ADD COLUMN IF NOT EXISTS content_tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content)) STORED")


def _v3(conn: Connection) -> None:
    """Identical-text lookups become per user: (user_id, valid_to, content_hash) replaces
    the (user_id, valid_to) and the global content_hash indexes."""
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_lpm_memories_hash")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_lpm_memories_user")
    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {_USER_INDEX} "
                         "ON lpm_memories (user_id, valid_to, content_hash)")
    if conn.dialect.name == "sqlite":
        _write_sqlite_statistics(conn)


# What SQLite's planner may assume about lpm_memories: ~1000 rows per user, one per
# text. It keeps no statistics unless ANALYZE runs, and without them it guesses 10 rows
# per user, so "these 50 ids of this user" scanned all of a big user's rows through the
# user index instead of looking the ids up in the unique one (100k rows: ~100 ms). A
# later ANALYZE replaces these with measured figures.
_SQLITE_STATISTICS = {_USER_INDEX: "1000000 1000 1000 1",
                      "sqlite_autoindex_lpm_memories_1": "1000000 1"}  # the unique id


def _write_sqlite_statistics(conn: Connection) -> None:
    conn.exec_driver_sql("ANALYZE lpm_meta")  # creates sqlite_stat1 if it is missing
    conn.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'lpm_memories'")
    for index, stat in _SQLITE_STATISTICS.items():
        conn.exec_driver_sql("INSERT INTO sqlite_stat1 (tbl, idx, stat) "
                             "VALUES ('lpm_memories', ?, ?)", (index, stat))
    conn.exec_driver_sql("ANALYZE sqlite_schema")  # this connection reloads them too


def _v4(conn: Connection) -> None:
    """Per-user keyword statistics and versions replace the global keyword index and the
    global change log: the FTS5 table and its triggers (or the tsvector column) and
    ``lpm_changes`` go, ``lpm_users`` gets a version for every user with memories."""
    if conn.dialect.name == "sqlite":
        for trigger in ("lpm_fts_ai", "lpm_fts_ad", "lpm_fts_au"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_FTS_TABLE}")
    else:
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_lpm_memories_tsv")
        conn.exec_driver_sql("ALTER TABLE lpm_memories DROP COLUMN IF EXISTS content_tsv")
    conn.exec_driver_sql("DROP TABLE IF EXISTS lpm_changes")
    users.create(conn, checkfirst=True)
    conn.exec_driver_sql(f"INSERT INTO {users.name} (user_id, version) "
                         f"SELECT DISTINCT user_id, {first_version()} FROM lpm_memories "
                         "WHERE true ON CONFLICT (user_id) DO NOTHING")


def first_version() -> int:
    """A new user's first version: microseconds since the epoch, so a user forgotten and
    then re-created starts above any version a process may still hold for it."""
    return time.time_ns() // 1000


def _v5_entities(conn: Connection) -> None:
    """Entity tables (issue #16), filled from the stored memories' text."""
    from .entity_rows import link_memories  # the extractor's writes; no cycle at import

    metadata_obj.create_all(conn, tables=[entities, memory_entities])
    conn.execute(memory_entities.delete())  # a rebuild: whatever was there is derived again
    conn.execute(entities.delete())
    rows = conn.execute(select(memories.c.pk, memories.c.user_id, memories.c.content)
                        .order_by(memories.c.user_id, memories.c.pk)).all()
    by_user: dict[str, list[tuple[int, str]]] = {}
    for pk, user_id, content in rows:
        by_user.setdefault(user_id, []).append((pk, content))
    for user_id, texts in by_user.items():
        link_memories(conn, user_id, texts)


def _v6_provenance(conn: Connection) -> None:
    """``lpm_provenance``: where every later history event's write came from. Events
    written before it have none (read back as ``provenance=None``)."""
    provenance.create(conn, checkfirst=True)


def _v7_message_ids(conn: Connection) -> None:
    """``lpm_provenance.message_ids``: the LangChain ids of the evidence's messages. Rows
    written before it keep NULL (read back as no ids). A database that v6 created with this
    release already has the column (v6 creates the table as defined here)."""
    if any(c["name"] == "message_ids" for c in inspect(conn).get_columns(provenance.name)):
        return
    kind = "JSONB" if conn.dialect.name != "sqlite" else "JSON"
    conn.exec_driver_sql(f"ALTER TABLE {provenance.name} ADD COLUMN message_ids {kind}")


def _v8_entity_aliases(conn: Connection) -> None:
    """``lpm_memory_entities.aliases``: the other names a memory gives an entity. Links
    written before it have none (NULL, read as ``[]``); a database that v5 created with
    this release already has the column."""
    if any(c["name"] == "aliases" for c in inspect(conn).get_columns(memory_entities.name)):
        return
    kind = "JSONB" if conn.dialect.name != "sqlite" else "JSON"
    conn.exec_driver_sql(f"ALTER TABLE {memory_entities.name} ADD COLUMN aliases {kind}")


# MIGRATIONS[i] upgrades a database from version i to i + 1. Append, never edit.
MIGRATIONS: list[Migration] = [_v1, _v2, _v3, _v4, _v5_entities, _v6_provenance,
                              _v7_message_ids, _v8_entity_aliases]
assert len(MIGRATIONS) == SCHEMA_VERSION


def read_meta(conn: Connection) -> dict[str, str]:
    return {row.key: row.value for row in conn.execute(select(meta.c.key, meta.c.value))}


def write_meta(conn: Connection, key: str, value: str) -> None:
    updated = conn.execute(meta.update().where(meta.c.key == key).values(value=value))
    if updated.rowcount == 0:
        conn.execute(meta.insert().values(key=key, value=value))


def add_meta(conn: Connection, key: str, value: str) -> None:
    """Set ``key`` unless it is set: concurrent first writers agree without a lock."""
    conn.execute(text(f"INSERT INTO {meta.name} (key, value) VALUES (:key, :value) "
                      "ON CONFLICT (key) DO NOTHING"), {"key": key, "value": value})


def prepare_database(conn: Connection, *, model: str, check_model: bool) -> int | None:
    """Migrate, refuse another model's vectors (if ``check_model``), return the dimension."""
    migrate(conn)
    stored = read_meta(conn)
    stored_model = stored.get("embedding_model")
    if check_model and stored_model and stored_model != model:
        raise EmbeddingMismatchError(
            f"this store's vectors were made by {stored_model!r}, but the embeddings "
            f"given are {model!r}. Open it with the original model, or migrate: "
            "MemoryStore(url, embeddings=new, check_embedding_model=False).reembed()",
            stored=stored_model, given=model)
    return int(stored["embedding_dim"]) if "embedding_dim" in stored else None


def migrate(conn: Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; return the version found before.

    On PostgreSQL, processes opening one database at once take turns (a transaction-level
    advisory lock, at open only: writes never take it).
    """
    if conn.dialect.name != "sqlite":
        conn.execute(text("SELECT pg_advisory_xact_lock(7305114001)"))
    metadata_obj.create_all(conn, tables=[meta])
    found = int(read_meta(conn).get("schema_version", "0"))
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"database schema version {found} is newer than this release supports "
            f"({SCHEMA_VERSION}); upgrade langchain-persistent-memory"
        )
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
        write_meta(conn, "schema_version", str(version + 1))
    return found
