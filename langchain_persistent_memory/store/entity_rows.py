"""Entity rows in SQL: written with the memories that name them, removed with them.

Every function runs inside the caller's transaction, so a memory and its entity links commit
or roll back together, and a purge leaves no entity name of the user behind. Links come from
the memory's text (``entities.extract_entities``) plus the names a chat model gave for it
that the text contains; the partitions read them back from here, so ranking uses both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select, text

from ..entities import Entity, entity_key, extract_entities
from ..errors import InvalidInputError
from .reader import EntityLinks
from .schema import entities, memories, memory_entities

__all__ = ["EntityRow", "check_names", "count_links", "link_memories", "memory_links",
           "purge_entities", "unlink_memories", "user_entities"]

_MAX_NAME = 256
_MAX_GIVEN = 24


def check_names(value: object) -> tuple[str, ...]:
    """An operation's ``entities``: None or a list of short names (each found in its text
    when linked; see :func:`link_memories`)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > _MAX_GIVEN or not all(
            isinstance(v, str) and 0 < len(v.strip()) <= _MAX_NAME for v in value):
        raise InvalidInputError(f"entities must be a list of at most {_MAX_GIVEN} non-empty "
                                f"names of at most {_MAX_NAME} characters", field="entities")
    return tuple(" ".join(v.split()) for v in value)


@dataclass(frozen=True)
class EntityRow:
    """One entity of a user: its name, kind, and the ids of the memories naming it."""

    key: str
    name: str
    kind: str
    memory_ids: tuple[str, ...]
    subject_of: int  # how many of them are about it (it is their speaker)


def memory_links(content: str, given: tuple[str, ...] = ()) -> list[Entity]:
    """The entities one memory links to: the local extractor's, then the ``given`` names
    (the chat model's answer) the text contains that the extractor missed. Pure: what
    :func:`link_memories` writes for a memory is exactly this."""
    found = [e._replace(key=e.key[:_MAX_NAME], name=e.name[:_MAX_NAME])
             for e in extract_entities(content)]
    keys = {e.key for e in found}
    lowered = content.lower()
    for name in given:
        key = entity_key(name)[:_MAX_NAME]
        if key and key not in keys and name.lower() in lowered:
            keys.add(key)
            found.append(Entity(name[:_MAX_NAME], key, "name"))
    return found


def link_memories(conn: Connection, user_id: str, texts: Iterable[tuple[int, str]],
                  given: dict[int, tuple[str, ...]] | None = None) -> dict[int, EntityLinks]:
    """Record the entities each ``(pk, text)`` names (new entities of the user included)
    and return each pk's links, for the writing process's own partition.

    ``given`` adds names per pk from elsewhere (the chat model's answer); a name the text
    does not contain is ignored, so a link always points at words of the memory.
    """
    links: list[dict[str, object]] = []
    named: dict[str, tuple[str, str]] = {}
    out: dict[int, EntityLinks] = {}
    for pk, content in texts:
        found = memory_links(content, (given or {}).get(pk, ()))
        out[pk] = tuple((e.key, e.subject) for e in found)
        for entity in found:
            named.setdefault(entity.key, (entity.name, entity.kind))
            links.append({"memory_pk": pk, "entity_key": entity.key, "user_id": user_id,
                          "subject": int(entity.subject)})
    if not links:
        return out
    conn.execute(text(f"INSERT INTO {entities.name} (user_id, key, name, kind) "
                      "VALUES (:user_id, :key, :name, :kind) ON CONFLICT DO NOTHING"),
                 [{"user_id": user_id, "key": key, "name": name, "kind": kind}
                  for key, (name, kind) in named.items()])
    conn.execute(memory_entities.insert(), links)
    people = sorted({str(link["entity_key"]) for link in links if link["subject"]})
    if people:  # first named in passing, later a speaker: a person after all
        conn.execute(entities.update().where(
            entities.c.user_id == user_id, entities.c.key.in_(people),
            entities.c.kind != "person").values(kind="person"))
    return out


def unlink_memories(conn: Connection, user_id: str, pks: list[int]) -> None:
    """Remove the links of ``pks`` and the user's entities no memory names any more."""
    if not pks:
        return
    keys = [r[0] for r in conn.execute(
        select(memory_entities.c.entity_key).distinct()
        .where(memory_entities.c.user_id == user_id, memory_entities.c.memory_pk.in_(pks)))]
    if not keys:
        return
    conn.execute(delete(memory_entities).where(memory_entities.c.user_id == user_id,
                                               memory_entities.c.memory_pk.in_(pks)))
    still = select(memory_entities.c.entity_key).where(
        memory_entities.c.user_id == user_id, memory_entities.c.entity_key.in_(keys))
    conn.execute(delete(entities).where(entities.c.user_id == user_id,
                                        entities.c.key.in_(keys), entities.c.key.not_in(still)))


def purge_entities(conn: Connection, user_id: str) -> None:
    """Every entity and link of a user (``forget_user``)."""
    conn.execute(delete(memory_entities).where(memory_entities.c.user_id == user_id))
    conn.execute(delete(entities).where(entities.c.user_id == user_id))


def user_entities(conn: Connection, user_id: str, *, include_superseded: bool = False
                  ) -> list[EntityRow]:
    """The user's entities, most often named first, each with the memories behind it."""
    query = (select(entities.c.key, entities.c.name, entities.c.kind, memories.c.id,
                    memory_entities.c.subject)
             .join(memory_entities, (memory_entities.c.user_id == entities.c.user_id)
                   & (memory_entities.c.entity_key == entities.c.key))
             .join(memories, memories.c.pk == memory_entities.c.memory_pk)
             .where(entities.c.user_id == user_id)
             .order_by(entities.c.key, memories.c.pk))
    if not include_superseded:
        query = query.where(memories.c.valid_to.is_(None))
    grouped: dict[str, tuple[str, str, list[str], int]] = {}
    for key, name, kind, memory_id, subject in conn.execute(query):
        entry = grouped.setdefault(key, (name, kind, [], 0))
        entry[2].append(memory_id)
        grouped[key] = (name, kind, entry[2], entry[3] + int(subject))
    rows = [EntityRow(key, name, kind, tuple(ids), subjects)
            for key, (name, kind, ids, subjects) in grouped.items()]
    rows.sort(key=lambda r: (-len(r.memory_ids), r.key))
    return rows


def count_links(conn: Connection, user_id: str) -> int:
    """How many memory-entity links a user has (for checks and ``lpm graph``)."""
    return int(conn.execute(select(func.count()).select_from(memory_entities)
                            .where(memory_entities.c.user_id == user_id)).scalar_one())
