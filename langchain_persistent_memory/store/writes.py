"""Execute validated operations inside one SQL transaction.

The transaction body writes rows and history events and bumps each touched user's version
(``lpm_users``) together: either all of one call's operations are committed or none are.
A call scoped to a user bumps that user's version first, so its row lock orders the
user's writers (PostgreSQL) without making anyone else's writes wait. Validation
(:mod:`.prepare`) happens before, outside the transaction.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, select, text, update

from ..errors import InvalidInputError, MemoryNotFoundError
from ..models import EventType, Memory
from .bulk_insert import as_stored_json, insert_rows
from .entity_rows import link_memories, unlink_memories
from .origins import PROVENANCE_FIELDS
from .pg_delete import delete_one_pg
from .rows import MEMORY_COLUMNS, construct_memory, encode_vector, row_to_memory
from .same_text import same_text
from .schema import first_version, history, memories, provenance, users
from .write_types import Applied, Change, Committed, PreparedOp

__all__ = ["bump_version", "execute_ops"]


_BUMP = text(f"INSERT INTO {users.name} (user_id, version) VALUES (:user_id, :first) "
             f"ON CONFLICT (user_id) DO UPDATE SET version = {users.name}.version + 1 "
             "RETURNING version")


def bump_version(conn: Connection, user_id: str) -> int:
    """Give the user a new version in this transaction (locking the user's row)."""
    return int(conn.execute(_BUMP, {"user_id": user_id, "first": first_version()})
               .scalar_one())


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
    [event_id] = insert_rows(conn, history, {
        "memory_id": [memory_id], "user_id": [user_id], "event": [event.value],
        "old_content": [old], "new_content": [new], "created_at": [now],
        "metadata": [meta or {}]})
    insert_rows(conn, provenance, _provenance_rows([event_id], [memory_id], user_id, [origin]))


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
        return delete_one_pg(conn, user_id, ops[0], now)
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
            [pk] = insert_rows(conn, memories, {**{k: [v] for k, v in values.items()},
                                            "embedding": [encode_vector(vec)]})
            links = link_memories(conn, row.user_id, [(pk, op.text)], {pk: op.names})
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
                True, op.digest, vec, links[pk])))
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



def _add_batch(conn: Connection, user_id: str, adds: list[tuple[int, PreparedOp]],
               results: list[Applied | None], vectors: dict[str, np.ndarray], now: datetime,
               dedupe: bool) -> list[Change]:
    """Insert many new memories with a few bulk statements (batched ingest is hot)."""
    known: dict[tuple[str, str | None], Memory] = {}
    if dedupe:
        hashes = sorted({op.digest for _, op in adds if op.digest is not None})
        for found in same_text(conn, user_id, hashes):
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
    pks = insert_rows(conn, memories, cols, encoded={"metadata": as_stored_json(dumped)})
    links = link_memories(conn, user_id, zip(pks, cols["content"]),
                          {pk: given for pk, given in zip(pks, names) if given})
    event_ids = insert_rows(conn, history, {
        "memory_id": cols["id"], "user_id": [user_id] * count,
        "event": [EventType.ADD.value] * count, "old_content": [None] * count,
        "new_content": cols["content"], "created_at": [now] * count, "metadata": [{}] * count,
    })
    insert_rows(conn, provenance, _provenance_rows(event_ids, cols["id"], user_id, origins))
    return [Change(user_id, pk, "add", (pk, v["session_id"], v["content"], v["valid_from"],
                                        v["importance"], True, v["content_hash"], vec,
                                        links[pk]))
            for pk, (v, vec) in zip(pks, fresh)]


# The memory columns an add writes, besides the generated key and the embedding.
_INSERTED = [c.name for c in memories.c if c.name not in ("pk", "embedding")]

