"""MemoryMiddleware + memory tools in ``create_agent``: an agent that remembers across
threads and keeps two users apart (scripted models, real store, real pipeline)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from langchain.agents import create_agent
from langchain_core.messages import BaseMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from langchain_persistent_memory import InvalidInputError, MemoryManager, MemoryStore
from langchain_persistent_memory.integrations.middleware import MemoryMiddleware
from tests.support.fake_chat import ScriptedChatModel, tool_call_message

FACT = "The user is allergic to peanuts."


@dataclass
class Ctx:
    user_id: str


def _system(messages: list[BaseMessage]) -> str:
    return messages[0].text if isinstance(messages[0], SystemMessage) else ""


def _snack(messages: list[BaseMessage]) -> str:
    return "Try an apple; no peanuts." if FACT in _system(messages) else "Try peanut cookies!"


@pytest.fixture
def extractor() -> ScriptedChatModel:
    """The pipeline's model: extracts the allergy from the first turn, nothing afterwards."""
    nothing = tool_call_message("MemoryOperations", {"operations": []})
    return ScriptedChatModel([tool_call_message("MemoryOperations", {"operations": [
        {"op": "ADD", "content": FACT, "category": "health", "importance": 0.9}]})],
        default_response=nothing)


@pytest.fixture
def manager(sqlite_store: MemoryStore, extractor: ScriptedChatModel) -> Iterator[MemoryManager]:
    m = MemoryManager(sqlite_store, llm=extractor)
    yield m
    m.close()


def test_agent_remembers_across_threads_and_keeps_users_apart(
        sqlite_store: MemoryStore, manager: MemoryManager) -> None:
    model = ScriptedChatModel([
        "Noted, I will keep that in mind.",                       # alice, thread 1
        tool_call_message("search_memories", {"query": "allergy"}), _snack,  # alice, thread 2
        _snack,                                                   # bob, thread 3
    ])
    agent = create_agent(model, middleware=[MemoryMiddleware(sqlite_store, manager,
                                                             include_tools=True)],
                         system_prompt="You are a helpful assistant.", context_schema=Ctx,
                         checkpointer=InMemorySaver())

    def ask(user: str, thread: str, text: str) -> dict:
        result = agent.invoke({"messages": [("user", text)]},
                              {"configurable": {"thread_id": thread}}, context=Ctx(user))
        assert manager.flush(timeout=30)
        return result

    ask("alice", "t1", "I'm allergic to peanuts.")
    [memory] = sqlite_store.list("alice")
    assert memory.content == FACT and memory.session_id == "t1"

    alice = ask("alice", "t2", "Suggest a snack")
    assert alice["messages"][-1].content == "Try an apple; no peanuts."
    [tool_msg] = [m for m in alice["messages"] if isinstance(m, ToolMessage)]
    assert [h["content"] for h in json.loads(tool_msg.content)] == [FACT]
    system = _system(model.calls[1])
    assert system.startswith("You are a helpful assistant.") and FACT in system

    bob = ask("bob", "t3", "Suggest a snack")
    assert bob["messages"][-1].content == "Try peanut cookies!"
    assert FACT not in _system(model.calls[-1])
    assert sqlite_store.count("bob") == 0  # bob's turn had nothing worth keeping


async def test_async_agent_injects_and_submits(sqlite_store: MemoryStore,
                                               manager: MemoryManager) -> None:
    sqlite_store.add(FACT, user_id="carol")
    model = ScriptedChatModel([_snack])
    agent = create_agent(model, middleware=[MemoryMiddleware(sqlite_store, manager,
                                                             background=False)])
    result = await agent.ainvoke({"messages": [("user", "a snack, please")]},
                                 {"configurable": {"user_id": "carol"}})
    assert result["messages"][-1].content == "Try an apple; no peanuts."
    assert "a snack, please" in manager.llm.calls[0][-1].text  # the turn reached the pipeline


def test_default_user_and_missing_user(sqlite_store: MemoryStore,
                                       manager: MemoryManager) -> None:
    sqlite_store.add(FACT, user_id="solo")
    model = ScriptedChatModel([tool_call_message("search_memories", {"query": "allergic"}),
                               _snack])
    solo = create_agent(model, middleware=[MemoryMiddleware(sqlite_store, manager,
                                                            user_id="solo", include_tools=True)])
    result = solo.invoke({"messages": [("user", "snack?")]})
    assert result["messages"][-1].content == "Try an apple; no peanuts."
    [found] = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [h["content"] for h in json.loads(found.content)] == [FACT]
    anonymous = create_agent(ScriptedChatModel(["hi"]),
                             middleware=[MemoryMiddleware(sqlite_store, manager)])
    with pytest.raises(InvalidInputError, match="user_id is required"):
        anonymous.invoke({"messages": [("user", "snack?")]})
