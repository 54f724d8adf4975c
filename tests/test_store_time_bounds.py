"""since/until are inclusive, also at whole seconds.

Regression: SQLite's fast insert path once stored whole-second times without ".000000",
which sorted before the same instant bound by a filter and silently dropped the memory.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from langchain_persistent_memory import MemoryStore

MIDNIGHT = datetime(2023, 5, 8, tzinfo=timezone.utc)


def test_whole_second_bounds_are_inclusive(store: MemoryStore) -> None:
    store.add("said exactly at midnight", user_id="u", valid_from=MIDNIGHT)
    store.add_many([{"content": "batch said at midnight", "valid_from": MIDNIGHT},
                    {"content": "said a second later", "valid_from": MIDNIGHT
                     + timedelta(seconds=1)}], user_id="u")

    assert {m.content for m in store.list("u", since=MIDNIGHT, until=MIDNIGHT)} == {
        "said exactly at midnight", "batch said at midnight"}
    assert len(store.list("u", since=MIDNIGHT)) == 3
    hits = store.search("midnight", user_id="u", since=MIDNIGHT, until=MIDNIGHT, mode="dense")
    assert {h.memory.content for h in hits} == {"said exactly at midnight",
                                                "batch said at midnight"}
    assert all(m.valid_from == MIDNIGHT for m in store.list("u", until=MIDNIGHT))
