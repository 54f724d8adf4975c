"""Memory tools inside a real ``create_agent`` loop, driven by a scripted model."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from langchain.agents import create_agent
from langchain_core.messages import BaseMessage, ToolMessage

from langchain_persistent_memory import ANY_USER, MemoryStore
from langchain_persistent_memory.integrations.tools import create_memory_tools
from tests.support.fake_chat import ScriptedChatModel, tool_call_message


@dataclass
class Ctx:
    user_id: str


def _tool_messages(result: dict) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


def _run(store: MemoryStore, script: list, user: str | None, **config: object) -> list[ToolMessage]:
    model = ScriptedChatModel(script, default_response="done")
    agent = create_agent(model, create_memory_tools(store), context_schema=Ctx)
    kwargs = {"context": Ctx(user)} if user is not None else {}
    return _tool_messages(agent.invoke({"messages": [("user", "hi")]}, config or None,
                                       **kwargs))


def _echo(messages: list[BaseMessage]) -> str:
    return next(m.content for m in reversed(messages) if isinstance(m, ToolMessage))


def test_save_search_update_forget_round_trip(sqlite_store: MemoryStore) -> None:
    saved = _run(sqlite_store, [tool_call_message("save_memory", {
        "content": "alice prefers aisle seats", "category": "preference"})], "alice")
    assert saved[0].status == "success"
    memory_id = saved[0].content.split()[-1]
    assert sqlite_store.get(memory_id, user_id="alice").category == "preference"

    found = _run(sqlite_store, [tool_call_message("search_memories", {"query": "aisle seats"})],
                 "alice")
    assert [h["id"] for h in json.loads(found[0].content)] == [memory_id]

    _run(sqlite_store, [tool_call_message("update_memory", {
        "memory_id": memory_id, "content": "alice prefers window seats",
        "replaces_old_fact": True})], "alice")
    [current] = sqlite_store.list("alice")
    assert current.content == "alice prefers window seats"
    assert sqlite_store.get(memory_id, user_id=ANY_USER).valid_to is not None

    out = _run(sqlite_store, [tool_call_message("forget_memory", {"memory_id": current.id})],
               "alice")
    assert out[0].status == "success" and sqlite_store.count("alice") == 0


def test_every_tool_write_records_origin_tool_agent_and_thread(store: MemoryStore) -> None:
    """Before: ``save_memory`` wrote metadata keys and no provenance; update/forget none."""
    def run(script: list) -> list[ToolMessage]:
        agent = create_agent(ScriptedChatModel(script, default_response="done"),
                             create_memory_tools(store, agent_id="concierge"),
                             context_schema=Ctx)
        return _tool_messages(agent.invoke({"messages": [("user", "hi")]},
                                           {"configurable": {"thread_id": "t-9"}},
                                           context=Ctx("alice")))

    [saved] = run([tool_call_message("save_memory", {"content": "alice likes tea"})])
    memory_id = saved.content.split()[-1]
    run([tool_call_message("update_memory", {"memory_id": memory_id,
                                             "content": "alice likes green tea"})])
    run([tool_call_message("update_memory", {"memory_id": memory_id, "content": "alice likes "
                                             "coffee", "replaces_old_fact": True})])
    [current] = store.list("alice")
    run([tool_call_message("forget_memory", {"memory_id": current.id})])
    events = store.history(memory_id, user_id="alice") + store.history(current.id,
                                                                      user_id="alice")
    assert [e.event.value for e in events] == ["ADD", "UPDATE", "SUPERSEDE", "ADD", "DELETE"]
    assert {(e.provenance.origin, e.provenance.agent_id, e.provenance.session_id)
            for e in events if e.provenance} == {("tool", "concierge", "t-9")}
    assert all(e.provenance for e in events)
    memory = store.get(memory_id, user_id="alice", with_provenance=True)
    assert memory.metadata == {} and memory.provenance is not None
    assert memory.provenance.origin == "tool"


def test_users_are_kept_apart(sqlite_store: MemoryStore) -> None:
    alice = sqlite_store.add("alice's passport number is 123", user_id="alice")
    found = _run(sqlite_store, [tool_call_message("search_memories", {"query": "passport"})],
                 "bob")
    assert json.loads(found[0].content) == []
    for name, args in [("forget_memory", {"memory_id": alice.id}),
                       ("update_memory", {"memory_id": alice.id, "content": "hacked"})]:
        [msg] = _run(sqlite_store, [tool_call_message(name, args)], "bob")
        assert msg.status == "error" and "MemoryNotFoundError" in msg.content
    assert sqlite_store.get(alice.id, user_id="alice").content == "alice's passport number is 123"


def test_user_id_from_config_when_no_context(sqlite_store: MemoryStore) -> None:
    sqlite_store.add("carol likes jazz", user_id="carol")
    [msg] = _run(sqlite_store, [tool_call_message("search_memories", {"query": "jazz"})], None,
                 configurable={"user_id": "carol"})
    assert [h["content"] for h in json.loads(msg.content)] == ["carol likes jazz"]


@pytest.mark.parametrize(("name", "args", "expected"), [
    ("search_memories", {"query": "x", "user_id": "alice"}, "Extra inputs"),
    ("save_memory", {"content": "x", "colour": "red"}, "Extra inputs"),
    ("search_memories", {"query": "x", "k": 0}, "greater than or equal"),
    ("save_memory", {"content": "   "}, "InvalidInputError"),
    ("forget_memory", {"memory_id": "no-such-id"}, "MemoryNotFoundError"),
])
def test_bad_tool_calls_become_error_messages(sqlite_store: MemoryStore, name: str,
                                              args: dict, expected: str) -> None:
    sqlite_store.add("alice likes tea", user_id="alice")
    [msg] = _run(sqlite_store, [tool_call_message(name, args)], "bob")
    assert msg.status == "error" and expected in msg.content
    assert sqlite_store.count() == 1


def test_missing_user_id_is_an_error_message_not_a_crash(sqlite_store: MemoryStore) -> None:
    [msg] = _run(sqlite_store, [tool_call_message("save_memory", {"content": "x y z"})], None)
    assert msg.status == "error" and "user_id is required" in msg.content
    assert sqlite_store.count() == 0


async def test_async_agent_uses_the_same_tools(sqlite_store: MemoryStore) -> None:
    model = ScriptedChatModel([tool_call_message("save_memory", {"content": "dan runs daily"}),
                               tool_call_message("search_memories", {"query": "runs"}), _echo])
    agent = create_agent(model, create_memory_tools(sqlite_store), context_schema=Ctx)
    result = await agent.ainvoke({"messages": [("user", "hi")]}, context=Ctx("dan"))
    assert [h["content"] for h in json.loads(result["messages"][-1].content)] == \
        ["dan runs daily"]
