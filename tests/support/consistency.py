"""Checks that a store's derived data agrees with SQL: users' partitions and the history.

Used by the crash, concurrency and fuzz tests and by the soak/load benchmarks, so every one of
them asserts the same thing: the index is exactly a function of the rows in ``lpm_memories``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from langchain_persistent_memory import MemoryStore
from langchain_persistent_memory.entities import entity_key
from langchain_persistent_memory.store.keyword import analyse
from langchain_persistent_memory.store.schema import history, memories, memory_entities

__all__ = ["RowState", "history_mismatches", "index_mismatches", "rows_by_id"]


@dataclass(frozen=True)
class RowState:
    """What a test can expect of one memory row without knowing its timestamps."""

    user_id: str
    content: str
    current: bool


def rows_by_id(store: MemoryStore) -> dict[str, RowState]:
    """Every memory (current and superseded) as id -> RowState, straight from SQL."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(memories.c.id, memories.c.user_id, memories.c.content,
                                   memories.c.valid_to.is_(None))).all()
    return {r[0]: RowState(r[1], r[2], bool(r[3])) for r in rows}


def index_mismatches(store: MemoryStore) -> list[str]:
    """Differences between every user's partition and SQL: ids, current flags, exact
    vectors, keyword statistics and entity links (subject, mentions and aliases).

    Each partition is taken as a search would take it (checked fresh, loaded if missing),
    so a partition this process updated in place is compared as it is.
    """
    with store.engine.connect() as conn:
        rows = conn.execute(select(memories.c.pk, memories.c.user_id,
                                   memories.c.valid_to.is_(None), memories.c.content,
                                   memories.c.embedding)).all()
        link_rows = conn.execute(select(memory_entities.c.memory_pk,
                                        memory_entities.c.entity_key,
                                        memory_entities.c.subject,
                                        memory_entities.c.aliases)).all()
    links: dict[int, tuple[set[str], set[str]]] = {}
    named: dict[int, set[tuple[str, str]]] = {}  # pk -> (alias key, entity key)
    for pk, key, subject, aliases in link_rows:
        links.setdefault(int(pk), (set(), set()))[0 if subject else 1].add(key)
        named.setdefault(int(pk), set()).update((entity_key(a), key) for a in aliases or ())
    sql: dict[str, dict[int, tuple[bool, np.ndarray, int]]] = {}
    for pk, user, cur, content, blob in rows:
        sql.setdefault(user, {})[int(pk)] = (bool(cur), np.frombuffer(blob, dtype="<f4"),
                                             analyse(content)[0])
    problems: list[str] = []
    for user, expected in sorted(sql.items()):
        part = store.partitions.get(user)
        snap = {} if part is None else part.snapshot()
        held = {} if part is None else part.entity_links()
        held_aliases = {} if part is None else part.alias_keys()
        for pk in sorted(set(expected) - set(snap)):
            problems.append(f"pk {pk} of {user} in SQL but not in the partition")
        for pk in sorted(set(snap) - set(expected)):
            problems.append(f"pk {pk} of {user} in the partition but not in SQL")
        for pk in sorted(set(expected) & set(snap)):
            (s_cur, s_vec, s_len), (i_cur, i_vec, i_len) = expected[pk], snap[pk]
            if s_cur != i_cur:
                problems.append(f"pk {pk} current={i_cur} in the partition, {s_cur} in SQL")
            elif not np.array_equal(s_vec, i_vec):
                problems.append(f"pk {pk} vector differs from SQL")
            elif s_len != i_len:
                problems.append(f"pk {pk} keyword statistics differ from SQL")
            subjects, others = links.get(pk, (set(), set()))
            subject, mentions = held[pk]
            if {subject} - {None} != subjects or set(mentions) != others:
                problems.append(f"pk {pk} entity links differ from SQL")
            if set(held_aliases.get(pk, ())) != named.get(pk, set()):
                problems.append(f"pk {pk} entity aliases differ from SQL")
    for user in store.partitions.loaded_users():
        if user not in sql and store.partitions.get(user) is not None:
            problems.append(f"partition of {user}, who has no rows in SQL")
    return problems


def history_mismatches(store: MemoryStore) -> list[str]:
    """Every row has history, and its latest event describes the row's current text.

    A row whose content changed without its event (or the reverse) is a half-applied write.
    """
    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(
            select(memories.c.id, memories.c.content, memories.c.valid_to))}
        events: dict[str, list[tuple[str, str | None, str | None]]] = {}
        for e in conn.execute(select(history.c.memory_id, history.c.event,
                                     history.c.old_content, history.c.new_content)
                              .order_by(history.c.id)):
            events.setdefault(e.memory_id, []).append((e.event, e.old_content, e.new_content))
    problems: list[str] = []
    for memory_id, row in rows.items():
        evs = events.get(memory_id)
        if not evs:
            problems.append(f"{memory_id} has no history")
            continue
        kind, old, new = evs[-1]
        if row.valid_to is not None:
            if kind != "SUPERSEDE" or old != row.content:
                problems.append(f"{memory_id} superseded but last event is {kind}")
        elif new != row.content:
            problems.append(f"{memory_id} content differs from its last {kind} event")
    return problems
