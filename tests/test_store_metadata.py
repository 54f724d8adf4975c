"""Metadata of batched adds is stored as given and read back equal on every backend.

Why: validation hands the JSON text it checked to the bulk insert, which stores it instead
of dumping the metadata again; a misaligned or wrongly encoded text would silently attach
one memory's metadata to another, or make metadata filters miss.
"""

from __future__ import annotations

from typing import Any

from langchain_persistent_memory import MemoryStore

ITEMS: list[dict[str, Any]] = [
    {"content": "Plays chess", "metadata": {"source": "chat", "n": 1}},
    {"content": "Speaks Portuguese", "metadata": {"lang": "português", "tags": ["à", "b"]}},
    {"content": "Owns a cat", "metadata": {}},
    {"content": "Runs marathons", "metadata": {"ok": True, "pace": 4.5, "none": None,
                                               "nested": {"a": [1, {"b": "c"}]}}},
    {"content": "Drinks tea"},
    {"content": "Likes 東京", "metadata": {"city": "東京", "n": 2}},
    {"content": "Has a bike", "metadata": {"n": 3.5, "big": 2**60}},
]


def test_batched_metadata_reads_back_and_filters_alike(store: MemoryStore) -> None:
    added = store.add_many(ITEMS, user_id="alice")
    for item, memory in zip(ITEMS, added):
        expected = item.get("metadata", {})
        assert memory.metadata == expected
        assert store.get(memory.id, user_id="alice").metadata == expected
    by_content = {m.content: m.metadata for m in store.list("alice")}
    assert by_content == {i["content"]: i.get("metadata", {}) for i in ITEMS}
    assert [m.content for m in store.list("alice", metadata={"lang": "português"})] == [
        "Speaks Portuguese"]
    assert [m.content for m in store.list("alice", metadata={"city": "東京"})] == ["Likes 東京"]
    assert {m.content for m in store.list("alice", metadata={"n": 1})} == {"Plays chess"}


def test_metadata_is_copied_when_added(store: MemoryStore) -> None:
    given: dict[str, Any] = {"tags": ["a"], "inner": {"k": "v"}}
    memory = store.add("Collects stamps", user_id="alice", metadata=given)
    given["tags"].append("b")
    given["inner"]["k"] = "changed"
    given["new"] = 1
    assert memory.metadata == {"tags": ["a"], "inner": {"k": "v"}}
    assert store.get(memory.id, user_id="alice").metadata == {"tags": ["a"],
                                                              "inner": {"k": "v"}}
