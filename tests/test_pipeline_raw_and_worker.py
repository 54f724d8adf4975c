"""Raw mode (no chat model), message normalisation, argument checks and the background worker.

Why: raw mode is the embedded default, so it must store something useful and say clearly
that extraction needs a model; ``submit`` must never lose a turn or an error, and must keep
each user's turns in order.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_persistent_memory import InvalidInputError, MemoryManager, MemoryStore
from tests.support.fake_chat import ScriptedChatModel, tool_call_message


def test_raw_mode_stores_each_user_message_and_says_why(sqlite_store: MemoryStore,
                                                        caplog: pytest.LogCaptureFixture):
    manager = MemoryManager(sqlite_store)
    with caplog.at_level(logging.WARNING, "langchain_persistent_memory.pipeline"):
        result = manager.process([SystemMessage("be nice"), HumanMessage("I live in Berlin"),
                                  AIMessage("Cool!"), {"role": "user", "content": "I like tea"}],
                                 user_id="alice", session_id="s1")
        manager.process("and I have a cat", user_id="alice")
    assert result.status == "raw" and result.llm_calls == 0
    assert sorted(m.content for m in sqlite_store.list("alice")) == [
        "I like tea", "I live in Berlin", "and I have a cat"]
    assert all(m.metadata == {"source": "raw"} for m in sqlite_store.list("alice"))
    notices = [r.message for r in caplog.records if "chat model" in r.message]
    assert len(notices) == 1 and "llm=" in notices[0]


def test_raw_mode_repeated_message_is_not_duplicated(sqlite_store: MemoryStore):
    manager = MemoryManager(sqlite_store)
    first = manager.process("I am vegetarian", user_id="alice")
    again = manager.process("I am vegetarian", user_id="alice")
    assert again.operations[0].duplicate and again.operations[0].action == "none"
    assert again.operations[0].memory_id == first.operations[0].memory_id
    assert sqlite_store.count("alice") == 1


def test_message_shapes_are_normalised(sqlite_store: MemoryStore):
    manager = MemoryManager(sqlite_store)
    manager.process([("human", "tuple form"), {"type": "human", "content": [
        {"type": "text", "text": "block form"}, {"type": "image_url", "image_url": "x"}]},
        ChatMessage(role="user", content="chat form"), HumanMessageChunk(content="chunk form"),
        RemoveMessage(id="gone"), ToolMessage("tool output", tool_call_id="c1")],
        user_id="alice")
    assert sorted(m.content for m in sqlite_store.list("alice")) == [
        "block form", "chat form", "chunk form", "tuple form"]


@pytest.mark.parametrize("kwargs", [
    {"messages": "hi", "user_id": None},
    {"messages": "hi", "user_id": ""},
    {"messages": "hi", "user_id": "alice", "timestamp": "yesterday"},
    {"messages": "hi", "user_id": "alice", "agent_id": 3},
    {"messages": 42, "user_id": "alice"},
    {"messages": [{"role": "wizard", "content": "hi"}], "user_id": "alice"},
    {"messages": [object()], "user_id": "alice"},
])
def test_bad_arguments_raise_before_any_write(sqlite_store: MemoryStore, kwargs: dict[str, Any]):
    manager = MemoryManager(sqlite_store)
    messages = kwargs.pop("messages")
    with pytest.raises(InvalidInputError):
        manager.process(messages, **kwargs)
    with pytest.raises(InvalidInputError):
        manager.submit(messages, **kwargs)
    assert sqlite_store.count() == 0


def test_submit_returns_at_once_and_flush_waits(sqlite_store: MemoryStore):
    gate = threading.Event()

    def slow(_: list[BaseMessage]) -> AIMessage:
        gate.wait(5)
        return tool_call_message("MemoryOperations", {"operations": [
            {"op": "ADD", "content": "The user likes tea."}]})

    manager = MemoryManager(sqlite_store, ScriptedChatModel([slow]))
    started = time.perf_counter()
    future = manager.submit("I like tea", user_id="alice")
    assert time.perf_counter() - started < 1.0 and not future.done()
    assert manager.flush(timeout=0.05) is False and manager.pending == 1
    gate.set()
    assert manager.flush(timeout=5) is True
    assert future.result().added[0].content == "The user likes tea."
    manager.close()


def test_turns_of_one_user_run_in_order(sqlite_store: MemoryStore):
    manager = MemoryManager(sqlite_store, workers=3)
    futures = [manager.submit(f"fact number {i}", user_id="alice") for i in range(20)]
    futures += [manager.submit(f"bob fact {i}", user_id="bob") for i in range(5)]
    assert manager.close(timeout=30)
    alice = [f.result() for f in futures[:20]]
    created = [r.operations[0].memory.created_at for r in alice]
    assert created == sorted(created)
    assert sqlite_store.count("alice") == 20 and sqlite_store.count("bob") == 5


def test_background_errors_are_logged_and_set_on_the_future(
        sqlite_store: MemoryStore, caplog: pytest.LogCaptureFixture):
    def boom(_: list[BaseMessage]) -> AIMessage:
        raise ConnectionError("provider down")

    llm = ScriptedChatModel([boom, tool_call_message("MemoryOperations", {"operations": [
        {"op": "ADD", "content": "The user likes tea."}]})])
    manager = MemoryManager(sqlite_store, llm)
    with caplog.at_level(logging.ERROR, "langchain_persistent_memory.pipeline"):
        failed = manager.submit("one", user_id="alice")
        ok = manager.submit("two", user_id="alice")
        manager.flush(5)
    assert isinstance(failed.exception(), ConnectionError)
    assert ok.result().status == "applied"  # the worker survived the failure
    assert any("provider down" in r.getMessage() for r in caplog.records)
    manager.close()


def test_close_drains_then_refuses(sqlite_store: MemoryStore):
    with MemoryManager(sqlite_store) as manager:
        futures = [manager.submit(f"note {i}", user_id="alice") for i in range(10)]
    assert all(f.done() for f in futures) and sqlite_store.count("alice") == 10
    with pytest.raises(InvalidInputError, match="closed"):
        manager.submit("late", user_id="alice")


async def test_aprocess_raw_mode(sqlite_store: MemoryStore):
    result = await MemoryManager(sqlite_store).aprocess("I like async", user_id="alice")
    assert result.status == "raw" and (await sqlite_store.acount("alice")) == 1


@pytest.mark.parametrize("kwargs", [{"related_k": 0}, {"workers": 0},
                                    {"search_options": {"mode": "psychic"}},
                                    {"search_options": {"no_such_option": 1}}])
def test_bad_manager_settings_raise(sqlite_store: MemoryStore, kwargs: dict[str, Any]):
    with pytest.raises(InvalidInputError):
        MemoryManager(sqlite_store, **kwargs)


def test_consolidate_needs_a_model(sqlite_store: MemoryStore):
    with pytest.raises(InvalidInputError, match="chat model"):
        MemoryManager(sqlite_store).consolidate("alice")
