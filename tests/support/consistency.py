"""Checks that a store's derived data agrees with SQL: the FAISS replica and the history.

Used by the crash, concurrency and fuzz tests and by the soak/load benchmarks, so every one of
them asserts the same thing: the index is exactly a function of the rows in ``lpm_memories``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from langchain_persistent_memory import MemoryStore
from langchain_persistent_memory.store.schema import history, memories

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
    """Differences between the FAISS replica and SQL: ids, partitions and exact vectors.

    Catches up first, as every search does, so it checks what a caller would search.
    """
    store._sync.catch_up()
    index = store._sync.index
    with store.engine.connect() as conn:
        rows = conn.execute(select(memories.c.pk, memories.c.user_id,
                                   memories.c.valid_to.is_(None), memories.c.embedding)).all()
    if index is None:
        return [f"no index but {len(rows)} rows"] if rows else []
    snap = index.snapshot()
    problems: list[str] = []
    sql = {int(pk): (user, bool(cur), np.frombuffer(blob, dtype="<f4"))
           for pk, user, cur, blob in rows}
    for pk in sorted(set(sql) - set(snap)):
        problems.append(f"pk {pk} in SQL but not in the index")
    for pk in sorted(set(snap) - set(sql)):
        problems.append(f"pk {pk} in the index but not in SQL")
    for pk in sorted(set(sql) & set(snap)):
        s_user, s_cur, s_vec = sql[pk]
        i_user, i_cur, i_vec = snap[pk]
        if (s_user, s_cur) != (i_user, i_cur):
            problems.append(f"pk {pk} partition {(i_user, i_cur)} != SQL {(s_user, s_cur)}")
        elif not np.array_equal(s_vec, i_vec):
            problems.append(f"pk {pk} vector differs from SQL")
    if index.size() != len(sql):
        problems.append(f"index size {index.size()} != {len(sql)} rows")
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
