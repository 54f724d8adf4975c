"""Entity rows in SQL: written with the memories that name them, removed with them.

Every function runs inside the caller's transaction, so a memory and its entity links commit
or roll back together, and a purge leaves no entity name of the user behind. Links come from
the memory's text (``entities.extract_entities``) plus the names a chat model gave for it
that the text contains; the partitions read them back from here, so ranking uses both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, text

from ..entities import ENTITY_KINDS, MAX_ALIASES, Entity, entity_key, extract_entities
from ..errors import InvalidInputError
from .bulk_insert import insert_rows
from .reader import EntityLinks
from .schema import entities, memories, memory_entities

__all__ = ["EntityRow", "GivenName", "check_links", "check_names", "count_links",
           "link_memories", "links_of", "memory_links", "purge_entities", "restore_links",
           "unlink_memories", "user_entities"]

_MAX_NAME = 256
_MAX_GIVEN = 24


class GivenName(str):
    """An entity name given with an operation, and the other names (aliases) given for it.

    A ``str`` so it travels wherever names do; ``aliases`` are matched in queries like
    the name."""

    aliases: tuple[str, ...]

    def __new__(cls, name: str, aliases: Iterable[str] = ()) -> GivenName:
        made = super().__new__(cls, name)
        made.aliases = tuple(aliases)
        return made


def _short_names(value: object, what: str, limit: int) -> list[str]:
    if not isinstance(value, list) or len(value) > limit or not all(
            isinstance(v, str) and 0 < len(v.strip()) <= _MAX_NAME for v in value):
        raise InvalidInputError(f"{what} must be a list of at most {limit} non-empty names "
                                f"of at most {_MAX_NAME} characters", field="entities")
    return [" ".join(v.split()) for v in value]


def check_names(value: object) -> tuple[str, ...]:
    """An operation's ``entities``: None or a list of short names, each a string or
    ``{"name": ..., "aliases": [...]}`` (each name found in its text when linked; see
    :func:`link_memories`)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > _MAX_GIVEN:
        raise InvalidInputError(f"entities must be a list of at most {_MAX_GIVEN} names",
                                field="entities")
    out: list[str] = []
    for item in value:
        if isinstance(item, dict):
            if set(item) - {"name", "aliases"}:
                raise InvalidInputError('an entity is a name or {"name": ..., "aliases": '
                                        '[...]}', field="entities")
            [name] = _short_names([item.get("name")], "an entity's name", 1)
            out.append(GivenName(name, _short_names(item.get("aliases", []),
                                                    "an entity's aliases", MAX_ALIASES)))
        else:
            [name] = _short_names([item], "an entity's name", 1)
            out.append(GivenName(name, getattr(item, "aliases", ())))
    return tuple(out)


@dataclass(frozen=True)
class EntityRow:
    """One entity of a user: its name, kind, and the ids of the memories naming it."""

    key: str
    name: str
    kind: str
    memory_ids: tuple[str, ...]
    subject_of: int  # how many of them are about it (it is their speaker)
    aliases: tuple[str, ...] = ()  # other names those memories give it ("Mel", "sister")


def _merged(old: tuple[str, ...], new: Iterable[str], key: str) -> tuple[str, ...]:
    """Aliases once each by folded key, never the entity's own key, at most MAX_ALIASES."""
    out = list(old)
    seen = {key, *map(entity_key, old)}
    for alias in new:
        folded = entity_key(alias)[:_MAX_NAME]
        if folded and folded not in seen and len(out) < MAX_ALIASES:
            seen.add(folded)
            out.append(alias[:_MAX_NAME])
    return tuple(out)


def _folded(content: str) -> str:
    """The text folded like keys, padded: a name is in it when `` {key} `` is (whole
    words, so "Ann" is not in "Anna")."""
    return f" {entity_key(content)} "


def memory_links(content: str, given: tuple[str, ...] = ()) -> list[Entity]:
    """The entities one memory links to: the local extractor's, then the ``given`` names
    (the chat model's answer) the text contains as whole words that the extractor missed,
    with the aliases given for them. Pure: what :func:`link_memories` writes for a memory is
    exactly this."""
    found = {e.key[:_MAX_NAME]: e._replace(key=e.key[:_MAX_NAME], name=e.name[:_MAX_NAME])
             if len(e.key) > _MAX_NAME or len(e.name) > _MAX_NAME else e
             for e in extract_entities(content)}
    if not given:  # the common case: folding the whole text is most of a link's cost
        return list(found.values())
    words = _folded(content)
    for name in given:
        key = entity_key(name)[:_MAX_NAME]
        aliases = getattr(name, "aliases", ())
        if key in found:
            found[key] = found[key]._replace(aliases=_merged(found[key].aliases, aliases, key))
        elif key and f" {key} " in words:
            found[key] = Entity(str(name)[:_MAX_NAME], key, "name",
                                aliases=_merged((), aliases, key))
    return list(found.values())


def _write_links(conn: Connection, user_id: str, found: Mapping[int, list[Entity]]
                 ) -> dict[int, EntityLinks]:
    """Insert each pk's links (and the user's entities they name that are new)."""
    columns: dict[str, list[Any]] = {"memory_pk": [], "entity_key": [], "subject": [],
                                     "aliases": []}
    named: dict[str, tuple[str, str]] = {}
    people: set[str] = set()
    out: dict[int, EntityLinks] = {}
    for pk, linked in found.items():
        out[pk] = tuple((e.key, e.subject, e.aliases) for e in linked)
        for entity in linked:
            named.setdefault(entity.key, (entity.name, entity.kind))
            columns["memory_pk"].append(pk)
            columns["entity_key"].append(entity.key)
            columns["subject"].append(int(entity.subject))
            columns["aliases"].append(list(entity.aliases) or None)
            if entity.subject:
                people.add(entity.key)
    if not named:
        return out
    conn.execute(text(f"INSERT INTO {entities.name} (user_id, key, name, kind) "
                      "VALUES (:user_id, :key, :name, :kind) ON CONFLICT DO NOTHING"),
                 [{"user_id": user_id, "key": key, "name": name, "kind": kind}
                  for key, (name, kind) in named.items()])
    columns["user_id"] = [user_id] * len(columns["memory_pk"])
    insert_rows(conn, memory_entities, columns)
    if people:  # first named in passing, later a speaker: a person after all
        conn.execute(entities.update().where(
            entities.c.user_id == user_id, entities.c.key.in_(sorted(people)),
            entities.c.kind != "person").values(kind="person"))
    return out


def link_memories(conn: Connection, user_id: str, texts: Iterable[tuple[int, str]],
                  given: dict[int, tuple[str, ...]] | None = None) -> dict[int, EntityLinks]:
    """Record the entities each ``(pk, text)`` names (new entities of the user included)
    and return each pk's links, for the writing process's own partition.

    ``given`` adds names per pk from elsewhere (the chat model's answer); a name the text
    does not contain is ignored, so a link always points at words of the memory.
    """
    return _write_links(conn, user_id, {pk: memory_links(content, (given or {}).get(pk, ()))
                                        for pk, content in texts})


def restore_links(conn: Connection, user_id: str, found: Mapping[int, list[Entity]]) -> None:
    """Write links exactly as given (an import: checked by :func:`check_links`)."""
    _write_links(conn, user_id, found)


def check_links(value: Any, content: str) -> list[Entity]:
    """An export line's ``entities``: a list of ``{"name", "kind", "subject", "aliases"}``
    whose names the memory's text contains (folded like keys); raises on anything else."""
    if not isinstance(value, list) or len(value) > 4 * _MAX_GIVEN:
        raise InvalidInputError("entities must be a list of entity links", field="entities")
    words = _folded(content)
    out: dict[str, Entity] = {}
    for item in value:
        if not isinstance(item, dict) or set(item) - {"name", "kind", "subject", "aliases"}:
            raise InvalidInputError('an entity link is {"name", "kind", "subject", '
                                    '"aliases"}', field="entities")
        [name] = _short_names([item.get("name")], "an entity's name", 1)
        kind, subject = item.get("kind", "name"), item.get("subject", False)
        if kind not in ENTITY_KINDS or not isinstance(subject, bool):
            raise InvalidInputError(f"an entity's kind is one of {list(ENTITY_KINDS)} and "
                                    "subject true or false", field="entities")
        key = entity_key(name)
        if not key or f" {key} " not in words or key in out:
            raise InvalidInputError(f"entity {name[:60]!r} is not named in its memory's "
                                    "text, or named twice", field="entities")
        aliases = _short_names(item.get("aliases", []), "an entity's aliases", MAX_ALIASES)
        out[key] = Entity(name, key, kind, subject, _merged((), aliases, key))
    return list(out.values())


def links_of(conn: Connection, user_id: str, pks: list[int]) -> dict[int, list[Entity]]:
    """The stored links of these memories of ``user_id`` (for export), by pk."""
    out: dict[int, list[Entity]] = {}
    if not pks:
        return out
    query = (select(memory_entities.c.memory_pk, entities.c.name, entities.c.key,
                    entities.c.kind, memory_entities.c.subject, memory_entities.c.aliases)
             .join(entities, (entities.c.user_id == memory_entities.c.user_id)
                   & (entities.c.key == memory_entities.c.entity_key))
             .where(memory_entities.c.user_id == user_id,
                    memory_entities.c.memory_pk.in_(pks))
             .order_by(memory_entities.c.memory_pk, entities.c.key))
    for pk, name, key, kind, subject, aliases in conn.execute(query):
        out.setdefault(int(pk), []).append(
            Entity(name, key, kind, bool(subject), tuple(aliases or ())))
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
                    memory_entities.c.subject, memory_entities.c.aliases)
             .join(memory_entities, (memory_entities.c.user_id == entities.c.user_id)
                   & (memory_entities.c.entity_key == entities.c.key))
             .join(memories, memories.c.pk == memory_entities.c.memory_pk)
             .where(entities.c.user_id == user_id)
             .order_by(entities.c.key, memories.c.pk))
    if not include_superseded:
        query = query.where(memories.c.valid_to.is_(None))
    grouped: dict[str, tuple[str, str, list[str], int, tuple[str, ...]]] = {}
    for key, name, kind, memory_id, subject, aliases in conn.execute(query):
        entry = grouped.setdefault(key, (name, kind, [], 0, ()))
        entry[2].append(memory_id)
        grouped[key] = (name, kind, entry[2], entry[3] + int(subject),
                        _merged(entry[4], aliases or (), key))
    rows = [EntityRow(key, name, kind, tuple(ids), subjects, aliases)
            for key, (name, kind, ids, subjects, aliases) in grouped.items()]
    rows.sort(key=lambda r: (-len(r.memory_ids), r.key))
    return rows


def count_links(conn: Connection, user_id: str) -> int:
    """How many memory-entity links a user has (for checks and ``lpm graph``)."""
    return int(conn.execute(select(func.count()).select_from(memory_entities)
                            .where(memory_entities.c.user_id == user_id)).scalar_one())
