"""The write path: validate operations, then apply them in one SQL transaction.

Validation is pure and happens first, so bad input never reaches the database. The
transaction body writes rows and history events and bumps each touched user's version
(``lpm_users``) together: either all of one call's operations are committed or none are.
A call scoped to a user bumps that user's version first, so its row lock orders the
user's writers (PostgreSQL) without making anyone else's writes wait.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, text, update

from ..errors import InvalidInputError, MemoryNotFoundError
from ..models import (
    AddOp,
    DeleteOp,
    EventType,
    Memory,
    Operation,
    SupersedeOp,
    UpdateOp,
)
from ..validation import (
    check_content,
    check_embedding,
    check_id,
    check_importance,
    check_label,
    check_metadata,
    check_metadata_json,
    check_new_memory_id,
    check_optional_id,
    content_hash,
    to_utc,
)
from .entity_rows import check_names, link_memories, purge_entities, unlink_memories
from .origins import PROVENANCE_FIELDS, provenance_values
from .reader import LoadedRow
from .rows import MEMORY_COLUMNS, construct_memory, encode_vector, raw_memory, row_to_memory
from .schema import (
    entities,
    first_version,
    history,
    memories,
    memory_entities,
    provenance,
    users,
)

__all__ = ["Applied", "Change", "Committed", "PreparedOp", "bump_version", "execute_ops",
           "prepare_ops", "purge_user"]


@dataclass
class PreparedOp:
    """A validated operation; ``text`` is set when new content needs a vector, ``digest``
    is its content hash (computed once: every later step keys on it)."""

    kind: str
    memory_id: str | None = None
    text: str | None = None
    digest: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    vector: np.ndarray | None = None
    names: tuple[str, ...] = ()  # entity names given with the operation
    metadata_json: str | None = None  # an add's metadata as validation dumped it
    provenance: dict[str, Any] = field(default_factory=dict)  # lpm_provenance values


@dataclass
class Change:
    """What happened to one memory, for the in-memory partition of its user."""

    user_id: str
    pk: int
    op: str  # "add" (``row`` holds it), "delete", "retire" (now superseded), or "other"
    # (the partition reloads)
    row: LoadedRow | None = None


@dataclass
class Committed:
    """A transaction's effect on partitions: each touched user's new version, the changes."""

    versions: dict[str, int]
    changes: list[Change]


_BUMP = text(f"INSERT INTO {users.name} (user_id, version) VALUES (:user_id, :first) "
             f"ON CONFLICT (user_id) DO UPDATE SET version = {users.name}.version + 1 "
             "RETURNING version")


def bump_version(conn: Connection, user_id: str) -> int:
    """Give the user a new version in this transaction (locking the user's row)."""
    return int(conn.execute(_BUMP, {"user_id": user_id, "first": first_version()})
               .scalar_one())


@dataclass
class Applied:
    """What one operation did: the resulting memory (or the deleted one)."""

    kind: str
    memory: Memory
    previous: Memory | None = None
    duplicate_of_existing: bool = False


def prepare_ops(ops: list[Operation], *, max_chars: int) -> list[PreparedOp]:
    """Validate every operation before touching the database."""
    prepared: list[PreparedOp] = []
    for op in ops:
        if isinstance(op, AddOp):
            metadata, metadata_json = check_metadata_json(op.metadata)
            prepared.append(PreparedOp(
                kind="add", memory_id=check_new_memory_id(op.id),
                text=check_content(op.content, max_chars=max_chars),
                metadata_json=metadata_json,
                fields={
                    "category": check_label(op.category),
                    "importance": check_importance(op.importance),
                    "metadata": metadata,
                    "agent_id": check_optional_id(op.agent_id, "agent_id"),
                    "session_id": check_optional_id(op.session_id, "session_id"),
                    "valid_from": to_utc(op.valid_from, "valid_from"),
                },
                vector=None if op.embedding is None else check_embedding(op.embedding),
                names=check_names(op.entities),
            ))
        elif isinstance(op, UpdateOp):
            fields: dict[str, Any] = {}
            if op.category is not None:
                fields["category"] = check_label(op.category)
            if op.importance is not None:
                fields["importance"] = check_importance(op.importance)
            if op.metadata is not None:
                fields["metadata"] = check_metadata(op.metadata)
            text = None if op.content is None else check_content(op.content, max_chars=max_chars)
            if text is None and not fields:
                raise InvalidInputError("update needs at least one field to change")
            prepared.append(PreparedOp(kind="update", memory_id=check_id(op.memory_id, "id"),
                                       text=text, fields=fields,
                                       names=check_names(op.entities)))
        elif isinstance(op, SupersedeOp):
            fields = {"valid_from": to_utc(op.valid_from, "valid_from")}
            if op.category is not None:
                fields["category"] = check_label(op.category)
            if op.importance is not None:
                fields["importance"] = check_importance(op.importance)
            if op.metadata is not None:
                fields["metadata"] = check_metadata(op.metadata)
            prepared.append(PreparedOp(
                kind="supersede", memory_id=check_id(op.memory_id, "id"),
                text=check_content(op.content, max_chars=max_chars), fields=fields,
                names=check_names(op.entities),
            ))
        elif isinstance(op, DeleteOp):
            prepared.append(PreparedOp(kind="delete", memory_id=check_id(op.memory_id, "id"),
                                       reason=op.reason))
        else:
            raise InvalidInputError(f"unknown operation {op!r}")
    for done, op in zip(prepared, ops):
        done.provenance = provenance_values(op.provenance)
        if done.text is not None:
            done.digest = content_hash(done.text)
    return prepared


def _load_owned(conn: Connection, memory_id: str, user_id: str | None) -> Any:
    row = conn.execute(
        select(*MEMORY_COLUMNS).where(memories.c.id == memory_id)
    ).first()
    if row is None:
        raise MemoryNotFoundError(memory_id, user_id=user_id)
    if user_id is not None and row.user_id != user_id:
        # Same answer as a missing id: never confirm that another user's memory exists.
        raise MemoryNotFoundError(memory_id, user_id=user_id)
    return row


def _event(conn: Connection, memory_id: str, user_id: str, event: EventType, now: datetime,
           old: str | None, new: str | None, meta: dict[str, Any] | None,
           origin: dict[str, Any]) -> None:
    """One history event and its provenance."""
    [event_id] = _insert(conn, history, {
        "memory_id": [memory_id], "user_id": [user_id], "event": [event.value],
        "old_content": [old], "new_content": [new], "created_at": [now],
        "metadata": [meta or {}]})
    _insert(conn, provenance, _provenance_rows([event_id], [memory_id], user_id, [origin]))


def _provenance_rows(event_ids: list[int], memory_ids: list[str], user_id: str,
                     origins: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """``lpm_provenance`` columns for these events (one origin per event)."""
    columns: dict[str, list[Any]] = {"event_id": event_ids, "memory_id": memory_ids,
                                     "user_id": [user_id] * len(event_ids)}
    for name in PROVENANCE_FIELDS:
        columns[name] = [o[name] for o in origins]
    return columns



def new_memory_ids(count: int) -> list[str]:
    """``count`` UUIDv7-layout ids from one clock read and one ``urandom`` call.

    Time-ordered ids land at the end of the id indexes (``lpm_memories.id``,
    ``lpm_history.memory_id``) instead of on a random page each: a batch of 100 adds
    dirties a few index pages per commit rather than ~100.
    """
    stamp = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | 0b10 << 62
    noise = os.urandom(10 * count)
    ids: list[str] = []
    for start in range(0, 10 * count, 10):
        rand = int.from_bytes(noise[start:start + 10], "big")
        h = f"{stamp | (rand >> 62 & 0xFFF) << 64 | rand & ((1 << 62) - 1):032x}"
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def _memory_fields(user_id: str, text: str, fields: dict[str, Any], now: datetime,
                   memory_id: str, digest: str) -> dict[str, Any]:
    """Every field of a new :class:`Memory` (the embedding travels apart)."""
    return {
        "id": memory_id, "user_id": user_id, "content": text,
        "agent_id": fields.get("agent_id"), "session_id": fields.get("session_id"),
        "category": fields.get("category"), "importance": fields.get("importance", 0.5),
        "created_at": now, "updated_at": now, "valid_from": fields.get("valid_from") or now,
        "valid_to": None, "superseded_by": None, "metadata": fields.get("metadata") or {},
        "content_hash": digest, "embedding": None,
    }


def execute_ops(conn: Connection, *, user_id: str | None, ops: list[PreparedOp],
                vectors: dict[str, np.ndarray], now: datetime,
                dedupe: bool = True) -> tuple[list[Applied], Committed]:
    """Transaction body. ``user_id`` None is the admin scope (ops by id, any user)."""
    if (user_id is not None and len(ops) == 1 and ops[0].kind == "delete"
            and conn.dialect.name == "postgresql"):
        return _delete_one_pg(conn, user_id, ops[0], now)
    results: list[Applied | None] = [None] * len(ops)
    versions = {} if user_id is None else {user_id: bump_version(conn, user_id)}
    pending: list[Change] = []
    adds = [(i, op) for i, op in enumerate(ops) if op.kind == "add"]
    if adds:
        assert user_id is not None
        pending.extend(_add_batch(conn, user_id, adds, results, vectors, now, dedupe))

    for i, op in enumerate(ops):
        if op.kind == "add":
            continue
        if op.kind == "update":
            assert op.memory_id is not None
            row = _load_owned(conn, op.memory_id, user_id)
            before = row_to_memory(row)
            values = dict(op.fields)
            vec = None
            if op.text is not None and op.text != row.content:
                assert op.digest is not None
                vec = vectors[op.digest]
                values.update(content=op.text, content_hash=op.digest,
                              embedding=encode_vector(vec))
            values["updated_at"] = now
            conn.execute(update(memories).where(memories.c.pk == row.pk).values(**values))
            if vec is not None:
                unlink_memories(conn, row.user_id, [row.pk])
                link_memories(conn, row.user_id, [(row.pk, str(op.text))], {row.pk: op.names})
            _event(conn, row.id, row.user_id, EventType.UPDATE, now, row.content,
                   op.text if op.text is not None else row.content,
                   {k: v for k, v in op.fields.items() if k != "metadata"}, op.provenance)
            pending.append(Change(row.user_id, row.pk, "other"))
            after = before.model_copy(update={k: v for k, v in values.items()
                                              if k != "embedding"})
            results[i] = Applied("update", after, previous=before)

        elif op.kind == "supersede":
            assert op.memory_id is not None and op.text is not None and op.digest is not None
            row = _load_owned(conn, op.memory_id, user_id)
            if row.valid_to is not None:
                raise InvalidInputError(f"memory {row.id!r} is already superseded", field="id")
            before = row_to_memory(row)
            fields = {"category": row.category, "importance": row.importance,
                      "metadata": row.metadata, "agent_id": row.agent_id,
                      "session_id": row.session_id, **op.fields}
            vec = vectors[op.digest]
            values = _memory_fields(row.user_id, op.text, fields, now, new_memory_ids(1)[0],
                                    op.digest)
            [pk] = _insert(conn, memories, {**{k: [v] for k, v in values.items()},
                                            "embedding": [encode_vector(vec)]})
            link_memories(conn, row.user_id, [(pk, op.text)], {pk: op.names})
            ended = fields.get("valid_from") or now
            conn.execute(update(memories).where(memories.c.pk == row.pk).values(
                valid_to=ended, superseded_by=values["id"], updated_at=now))
            _event(conn, row.id, row.user_id, EventType.SUPERSEDE, now, row.content, op.text,
                   {"superseded_by": values["id"]}, op.provenance)
            _event(conn, values["id"], row.user_id, EventType.ADD, now, None, op.text,
                   {"supersedes": row.id}, op.provenance)
            pending.append(Change(row.user_id, row.pk, "retire"))
            pending.append(Change(row.user_id, pk, "add", (
                pk, values["session_id"], op.text, values["valid_from"], values["importance"],
                True, op.digest, vec)))
            results[i] = Applied("supersede", construct_memory(values), previous=before)

        elif op.kind == "delete":
            assert op.memory_id is not None
            row = _load_owned(conn, op.memory_id, user_id)
            before = row_to_memory(row)
            conn.execute(delete(memories).where(memories.c.pk == row.pk))
            unlink_memories(conn, row.user_id, [row.pk])
            _event(conn, row.id, row.user_id, EventType.DELETE, now, row.content, None,
                   {"reason": op.reason} if op.reason else {}, op.provenance)
            pending.append(Change(row.user_id, row.pk, "delete"))
            results[i] = Applied("delete", before)

    for touched in sorted({c.user_id for c in pending} - set(versions)):  # admin scope
        versions[touched] = bump_version(conn, touched)
    applied = [r for r in results if r is not None]
    return applied, Committed(versions, pending)


_ROW_NAMES = ", ".join(c.name for c in MEMORY_COLUMNS)
# One statement, one round trip: the row, its history event, the user's version (bumped only
# when the row was there, so a refused delete writes nothing even in autocommit mode).
_PG_DELETE = text(f"""
WITH gone AS (DELETE FROM {memories.name} WHERE id = :id AND user_id = :user_id
              RETURNING {_ROW_NAMES}),
v AS (INSERT INTO {users.name} (user_id, version) SELECT :user_id, :first FROM gone
      ON CONFLICT (user_id) DO UPDATE SET version = {users.name}.version + 1
      RETURNING version),
logged AS (INSERT INTO {history.name} (memory_id, user_id, event, old_content, new_content,
                                       created_at, metadata)
           SELECT id, user_id, :event, content, NULL, :now, CAST(:meta AS JSONB) FROM gone
           RETURNING id, memory_id, user_id),
origin AS (INSERT INTO {provenance.name} (event_id, memory_id, user_id, origin, roles,
                                          positions, evidence, session_id, agent_id, model,
                                          prompt_version, trust)
           SELECT id, memory_id, user_id, :origin, CAST(:roles AS JSONB),
                  CAST(:positions AS JSONB), :evidence, :session_id, :agent_id, :model,
                  :prompt_version, :trust FROM logged),
links AS (DELETE FROM {memory_entities.name} WHERE user_id = :user_id
          AND memory_pk IN (SELECT pk FROM gone) RETURNING entity_key),
orphans AS (DELETE FROM {entities.name} e WHERE e.user_id = :user_id
            AND e.key IN (SELECT entity_key FROM links)
            AND NOT EXISTS (SELECT 1 FROM {memory_entities.name} l
                            WHERE l.user_id = :user_id AND l.entity_key = e.key
                            AND l.memory_pk NOT IN (SELECT pk FROM gone)))
SELECT v.version, gone.* FROM gone CROSS JOIN v""")


def _delete_one_pg(conn: Connection, user_id: str, op: PreparedOp,
                   now: datetime) -> tuple[list[Applied], Committed]:
    """A user's single delete on PostgreSQL (the common call) in one statement."""
    row = conn.execute(_PG_DELETE, {
        "user_id": user_id, "first": first_version(), "id": op.memory_id,
        "event": EventType.DELETE.value, "now": now.astimezone(timezone.utc).replace(tzinfo=None),
        "meta": json.dumps({"reason": op.reason} if op.reason else {}),
        **op.provenance, "roles": json.dumps(op.provenance["roles"]),
        "positions": json.dumps(op.provenance["positions"])}).first()
    if row is None:  # no such memory of this user: nothing was written
        assert op.memory_id is not None
        raise MemoryNotFoundError(op.memory_id, user_id=user_id)
    before = raw_memory(tuple(row[1:]))
    return ([Applied("delete", before)],
            Committed({user_id: int(row[0])}, [Change(user_id, int(row[1]), "delete")]))


def _add_batch(conn: Connection, user_id: str, adds: list[tuple[int, PreparedOp]],
               results: list[Applied | None], vectors: dict[str, np.ndarray], now: datetime,
               dedupe: bool) -> list[Change]:
    """Insert many new memories with a few bulk statements (batched ingest is hot)."""
    known: dict[tuple[str, str | None], Memory] = {}
    if dedupe:
        hashes = sorted({op.digest for _, op in adds if op.digest is not None})
        for found in _same_text(conn, user_id, hashes):
            known.setdefault((found.content_hash, found.agent_id), found)
    explicit = [op.memory_id for _, op in adds if op.memory_id is not None]
    if explicit:
        taken = conn.execute(select(memories.c.id).where(memories.c.id.in_(explicit))).first()
        if taken is not None or len(set(explicit)) != len(explicit):
            raise InvalidInputError("a memory with that id already exists", field="id")

    fresh: list[tuple[dict[str, Any], np.ndarray]] = []
    names: list[tuple[str, ...]] = []
    dumped: list[str | None] = []
    origins: list[dict[str, Any]] = []
    ids = iter(new_memory_ids(sum(op.memory_id is None for _, op in adds)))
    for i, op in adds:
        assert op.text is not None and op.digest is not None
        h = op.digest
        key = (h, op.fields.get("agent_id"))
        if dedupe and key in known:
            results[i] = Applied("add", known[key], duplicate_of_existing=True)
            continue
        values = _memory_fields(user_id, op.text, op.fields, now, op.memory_id or next(ids), h)
        known[key] = construct_memory(values)
        results[i] = Applied("add", known[key])
        fresh.append((values, op.vector if op.vector is not None else vectors[h]))
        names.append(op.names)
        origins.append(op.provenance)
        dumped.append(op.metadata_json)
    if not fresh:
        return []
    count = len(fresh)
    cols = {name: [v[name] for v, _ in fresh] for name in _INSERTED}
    cols["embedding"] = [encode_vector(vec) for _, vec in fresh]
    pks = _insert(conn, memories, cols, encoded={"metadata": _as_stored_json(dumped)})
    link_memories(conn, user_id, zip(pks, cols["content"]),
                  {pk: given for pk, given in zip(pks, names) if given})
    event_ids = _insert(conn, history, {
        "memory_id": cols["id"], "user_id": [user_id] * count,
        "event": [EventType.ADD.value] * count, "old_content": [None] * count,
        "new_content": cols["content"], "created_at": [now] * count, "metadata": [{}] * count,
    })
    _insert(conn, provenance, _provenance_rows(event_ids, cols["id"], user_id, origins))
    return [Change(user_id, pk, "add", (pk, v["session_id"], v["content"], v["valid_from"],
                                        v["importance"], True, v["content_hash"], vec))
            for pk, (v, vec) in zip(pks, fresh)]


# The memory columns an add writes, besides the generated key and the embedding.
_INSERTED = [c.name for c in memories.c if c.name not in ("pk", "embedding")]


def _insert(conn: Connection, table: Table, columns: dict[str, list[Any]], *,
            encoded: dict[str, list[Any]] | None = None) -> list[int]:
    """Insert rows given column by column; return their generated keys in order.
    ``encoded`` (SQLite): values some rows already have as the column stores them (None:
    encode this row's value)."""
    if conn.dialect.name == "sqlite":
        return _sqlite_insert(conn, table, columns, encoded or {})
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    if len(rows) == 1:  # a single add, the common case: no batched RETURNING machinery
        key_row = conn.execute(insert(table), rows[0]).inserted_primary_key
        assert key_row is not None
        return [int(key_row[0])]
    key = next(iter(table.primary_key.columns))
    stmt = insert(table).returning(key, sort_by_parameter_order=True)
    return [int(k) for k in conn.execute(stmt, rows).scalars().all()]


def _sqlite_insert(conn: Connection, table: Table, columns: dict[str, list[Any]],
                   encoded: dict[str, list[Any]]) -> list[int]:
    """SQLite's fast path: multi-row ``INSERT ... VALUES`` on the transaction's own DBAPI
    connection.

    One statement for many rows, not ``executemany``: the FTS5 insert trigger flushes the
    keyword index's pending terms at the end of every statement, and once per row made
    it most of an add's cost. Writers hold the database lock (BEGIN IMMEDIATE) and the
    rows take ``max(pk) + 1, + 2, ...`` in order, so the statement's last rowid names them
    all. Values go through the columns' own SQLAlchemy bind processors, so they are stored
    exactly as the general path stores them.
    """
    names = list(columns)
    processors = _bind_processors(table, conn.dialect)
    bound = [_bound(processors[name], columns[name], encoded.get(name)) for name in names]
    width, total = len(names), len(bound[0])
    flat: list[Any] = [None] * (width * total)
    for j, values in enumerate(bound):
        flat[j::width] = values
    driver = conn.connection.driver_connection
    per = max(1, _max_params(driver) // width)
    row = f"({', '.join('?' * width)})"
    cur = driver.cursor()  # type: ignore[union-attr]
    keys: list[int] = []
    for start in range(0, total, per):
        n = min(per, total - start)
        cur.execute(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
                    f"{', '.join([row] * n)}", flat[start * width:(start + n) * width])
        last = cur.lastrowid
        keys.extend(range(last - n + 1, last + 1))
    cur.close()
    return keys


def _max_params(driver: Any) -> int:
    """Most ``?`` one SQLite statement may hold (32766 since SQLite 3.32, 999 before)."""
    getlimit = getattr(driver, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


@functools.lru_cache(maxsize=64)
def _bind_processors(table: Table, dialect: Any) -> dict[str, Any]:
    """Each column's bind processor, built once per table and dialect (per call it costs
    more than a single add's inserts)."""
    # dialect_impl: a TypeDecorator's own bind_processor wraps the generic type, which would
    # hand sqlite3 raw datetimes (stored without ".000000" at whole seconds, so they would
    # sort before the same instant bound by SQLAlchemy in a since/until filter).
    return {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.c}


def _bound(process: Any, values: list[Any], ready: list[Any] | None = None) -> list[Any]:
    """One column's values through its bind processor, except those ``ready``. A batch's
    timestamps are one object and its JSON columns mostly empty: such a column is converted
    once, not per row, and also through the sqlite3 adapter the driver would apply to each
    row (datetime -> text)."""
    if process is None:
        return values
    first = values[0]
    if all(v is first for v in values) or (
            type(first) in (dict, list) and all(type(v) is type(first) and not v
                                                  for v in values)):
        value = process(first)
        adapt = sqlite3.adapters.get((type(value), sqlite3.PrepareProtocol))
        return [value if adapt is None else adapt(value)] * len(values)
    if ready is None:
        return [process(v) for v in values]
    return [process(v) if done is None else done for v, done in zip(values, ready)]


def _as_stored_json(texts: list[str | None]) -> list[str | None]:
    """Validation's JSON texts where they equal what a JSON column stores on SQLite (the
    default ``json.dumps``, which escapes non-ASCII: so ASCII texts only)."""
    return [t if t is not None and t.isascii() else None for t in texts]


def _current_by_hash(conn: Connection, user_id: str, hashes: list[str],
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


def _same_text(conn: Connection, user_id: str, hashes: list[str]) -> list[Memory]:
    """The user's current memories with one of these content hashes."""
    rows = _current_by_hash(conn, user_id, hashes, MEMORY_COLUMNS)
    if conn.dialect.name == "sqlite":  # raw values
        return [raw_memory(row) for row in rows]
    return [row_to_memory(row) for row in rows]


def purge_user(conn: Connection, user_id: str) -> int:
    """Delete every row of a user, its history and its version; return memories deleted.

    With the version row gone, every process's loaded partition of the user is stale on its
    next check and is dropped.
    """
    count = conn.execute(select(func.count()).select_from(memories)
                         .where(memories.c.user_id == user_id)).scalar_one()
    conn.execute(delete(memories).where(memories.c.user_id == user_id))
    conn.execute(delete(history).where(history.c.user_id == user_id))
    purge_entities(conn, user_id)
    conn.execute(delete(provenance).where(provenance.c.user_id == user_id))
    conn.execute(delete(users).where(users.c.user_id == user_id))
    return int(count)


def existing_vectors(conn: Connection, user_id: str,
                     hashes: list[str]) -> dict[str, np.ndarray]:
    """Vectors stored for these content hashes among the user's current memories.

    Per user: an index that finds a text across all users costs every add a random page
    write (see ``schema``); ``MemoryStore`` also remembers recent vectors in process.
    """
    found: dict[str, np.ndarray] = {}
    for h, blob in _current_by_hash(conn, user_id, hashes,
                                    [memories.c.content_hash, memories.c.embedding]):
        found.setdefault(h, np.frombuffer(blob, dtype="<f4"))
    return found
