"""Consolidation: near-duplicates are merged by one model call per cluster, history kept.

Why: over months a user's memory collects restatements of the same fact; merging them must
reduce clutter without losing what used to be stored.
"""

from __future__ import annotations

import re

import numpy as np
from langchain_core.messages import AIMessage, BaseMessage

from langchain_persistent_memory import ANY_USER, EventType, MemoryManager, MemoryStore
from langchain_persistent_memory.pipeline.consolidate import find_clusters
from tests.support.fake_chat import ScriptedChatModel, tool_call_message

TEA = ["The user likes green tea.", "The user likes green tea a lot.",
       "The user really likes green tea."]
OTHER = ["The user has a dog named Rex.", "The user works at Acme in Lisbon."]


def merge_all(messages: list[BaseMessage]) -> AIMessage:
    handles = re.findall(r"^\[(m\d+)\]", messages[-1].text, re.M)
    return tool_call_message("MergePlan", {"merges": [
        {"sources": handles, "content": "The user loves green tea.", "category": "preference"}]})


def test_find_clusters_groups_similar_rows_only():
    vectors = np.array([[1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0, 1], [0, 0.05, 1]],
                       dtype=np.float32)
    assert find_clusters(vectors, threshold=0.9, max_size=8) == [[0, 1], [3, 4]]
    assert find_clusters(vectors, threshold=0.9, max_size=1) == []
    assert find_clusters(vectors[:1], threshold=0.9, max_size=8) == []


def test_consolidate_merges_a_cluster_and_keeps_history(store: MemoryStore):
    tea_ids = [store.add(t, user_id="alice").id for t in TEA]
    for text in OTHER:
        store.add(text, user_id="alice")
    store.add("The user likes green tea.", user_id="bob")
    llm = ScriptedChatModel(default_response=merge_all)
    result = MemoryManager(store, llm).consolidate("alice", threshold=0.7)
    assert result.clusters == 1 and result.llm_calls == 1 and not result.errors
    prompt = llm.calls[0][-1].text
    assert all(t in prompt for t in TEA) and not any(t in prompt for t in OTHER)
    current = sorted(m.content for m in store.list("alice"))
    assert current == sorted([*OTHER, "The user loves green tea."])
    [merged] = result.of("supersede")
    first = store.get(merged.previous.id, user_id=ANY_USER)
    assert first.valid_to is not None and first.superseded_by == merged.memory_id
    for mid in tea_ids:  # every original is still readable in history
        assert store.history(mid, user_id=ANY_USER)[0].event == EventType.ADD
    assert len(result.of("delete")) == 2
    assert store.count("bob") == 1


def test_consolidate_without_clusters_makes_no_call(sqlite_store: MemoryStore):
    for text in OTHER:
        sqlite_store.add(text, user_id="alice")
    llm = ScriptedChatModel([])
    result = MemoryManager(sqlite_store, llm).consolidate("alice")
    assert result.clusters == 0 and llm.call_count == 0


def test_consolidate_rejects_bad_merges_and_leaves_data(sqlite_store: MemoryStore):
    for text in TEA:
        sqlite_store.add(text, user_id="alice")
    bad = tool_call_message("MergePlan", {"merges": [{"sources": ["m9"], "content": "x"}]})
    result = MemoryManager(sqlite_store, ScriptedChatModel([bad, bad])).consolidate(
        "alice", threshold=0.7)
    assert result.errors and "unknown handle" in result.errors[0]
    assert sorted(m.content for m in sqlite_store.list("alice")) == sorted(TEA)


async def test_aconsolidate(sqlite_store: MemoryStore):
    for text in TEA:
        sqlite_store.add(text, user_id="alice")
    llm = ScriptedChatModel(default_response=merge_all)
    result = await MemoryManager(sqlite_store, llm).aconsolidate("alice", threshold=0.7)
    assert [m.content for m in sqlite_store.list("alice")] == ["The user loves green tea."]
    assert result.llm_calls == 1
