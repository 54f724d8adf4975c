"""A user's single delete on PostgreSQL as one statement: the common delete in one round
trip, run in autocommit mode (no BEGIN/COMMIT)."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone

from sqlalchemy import Connection, text
from sqlalchemy.engine import Dialect

from ..errors import MemoryNotFoundError
from ..models import EventType
from .engine import driver_fetchone
from .rows import MEMORY_COLUMNS, raw_memory
from .schema import entities, first_version, history, memories, memory_entities, provenance, users
from .write_types import Applied, Change, Committed, PreparedOp

__all__ = ["delete_one_pg"]

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
                                          positions, message_ids, evidence, session_id,
                                          agent_id, model, prompt_version, trust)
           SELECT id, memory_id, user_id, :origin, CAST(:roles AS JSONB),
                  CAST(:positions AS JSONB), CAST(:message_ids AS JSONB), :evidence,
                  :session_id, :agent_id, :model, :prompt_version, :trust FROM logged),
links AS (DELETE FROM {memory_entities.name} WHERE user_id = :user_id
          AND memory_pk IN (SELECT pk FROM gone) RETURNING entity_key),
orphans AS (DELETE FROM {entities.name} e WHERE e.user_id = :user_id
            AND e.key IN (SELECT entity_key FROM links)
            AND NOT EXISTS (SELECT 1 FROM {memory_entities.name} l
                            WHERE l.user_id = :user_id AND l.entity_key = e.key
                            AND l.memory_pk NOT IN (SELECT pk FROM gone)))
SELECT v.version, gone.* FROM gone CROSS JOIN v""")


@functools.lru_cache(maxsize=4)
def _statement(dialect: Dialect) -> str:
    """The delete in the driver's parameter style (compiled once)."""
    return str(_PG_DELETE.compile(dialect=dialect))


def delete_one_pg(conn: Connection, user_id: str, op: PreparedOp,
                   now: datetime) -> tuple[list[Applied], Committed]:
    """A user's single delete on PostgreSQL (the common call) in one statement."""
    row = driver_fetchone(conn, _statement(conn.dialect), {
        "user_id": user_id, "first": first_version(), "id": op.memory_id,
        "event": EventType.DELETE.value, "now": now.astimezone(timezone.utc).replace(tzinfo=None),
        "meta": json.dumps({"reason": op.reason} if op.reason else {}),
        **op.provenance, **{key: json.dumps(op.provenance[key])
                            for key in ("roles", "positions", "message_ids")}})
    if row is None:  # no such memory of this user: nothing was written
        assert op.memory_id is not None
        raise MemoryNotFoundError(op.memory_id, user_id=user_id)
    before = raw_memory(tuple(row[1:]))
    return ([Applied("delete", before)],
            Committed({user_id: int(row[0])}, [Change(user_id, int(row[1]), "delete")]))

