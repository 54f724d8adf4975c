"""Retrieval of related memories with the real local embedding model.

Why: the one-call design depends on embedding the turn and finding the memories it may
change among many unrelated ones; word overlap is not enough ("NeoVim" never mentions
"VS Code"), so this runs the default all-MiniLM-L6-v2 model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage

from langchain_persistent_memory import LocalEmbeddings, MemoryManager, MemoryStore
from tests.support.fake_chat import ScriptedChatModel, tool_call_message

pytestmark = pytest.mark.integration

DISTRACTORS = [
    "The user has a dog named Rex.", "The user lives in Lisbon.", "The user plays the guitar.",
    "The user is allergic to peanuts.", "The user drinks coffee every morning.",
    "The user's sister is called Ana.", "The user runs 10 km on Sundays.",
    "The user prefers window seats on flights.", "The user is learning Japanese.",
    "The user's birthday is on 4 May.", "The user supports Benfica.",
    "The user is vegetarian.", "The user reads science fiction.",
    "The user has two children.", "The user dislikes cold weather.",
    "The user takes the train to work.", "The user grows tomatoes on the balcony.",
    "The user's favourite colour is green.", "The user studied physics.",
    "The user plans a trip to Kyoto in October.",
]


@pytest.fixture(scope="module")
def local_embeddings() -> LocalEmbeddings:
    return LocalEmbeddings()


@pytest.fixture
def semantic_store(tmp_path: Path, local_embeddings: LocalEmbeddings) -> Iterator[MemoryStore]:
    store = MemoryStore(f"sqlite:///{tmp_path / 'm.db'}", embeddings=local_embeddings)
    store.add_many([*DISTRACTORS, "The user codes in VS Code."], user_id="alice")
    yield store
    store.close()


def supersede_editor(messages: list[BaseMessage]) -> AIMessage:
    memories = dict(re.findall(r"^\[(m\d+)\] \([^)]*\) (.*)$", messages[-1].text, re.M))
    old = next((h for h, t in memories.items() if "VS Code" in t), None)
    op = {"op": "SUPERSEDE", "handle": old, "content": "The user codes in NeoVim."} if old \
        else {"op": "ADD", "content": "The user codes in NeoVim."}
    return tool_call_message("MemoryOperations", {"operations": [op]})


def test_switch_finds_the_old_editor_among_unrelated_memories(semantic_store: MemoryStore):
    llm = ScriptedChatModel([supersede_editor])
    result = MemoryManager(semantic_store, llm, related_k=5).process(
        "I switched to NeoVim for coding", user_id="alice")
    assert [c.action for c in result.operations] == ["supersede"]
    shown = re.findall(r"^\[m\d+\]", llm.calls[0][-1].text, re.M)
    assert len(shown) == 5  # only the nearest few of 21 memories were sent
    hit = semantic_store.search("Which editor does the user use?", user_id="alice", k=1)[0]
    assert hit.memory.content == "The user codes in NeoVim."
