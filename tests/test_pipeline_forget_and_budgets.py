"""Forgetting that sticks (queued turns never bring a user back), turn budgets that warn,
the agent's own memory tools sparing a second extraction, and the classic memory's
short-term window. Real SQLite and PostgreSQL, the real pipeline, scripted models."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import CancelledError
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langchain_persistent_memory import (
    ForgetInProgressError,
    MemoryManager,
    MemoryStore,
    Provenance,
)
from langchain_persistent_memory.integrations.classic_memory import PersistentMemory
from langchain_persistent_memory.integrations.middleware import MemoryMiddleware
from tests.support.fake_chat import ScriptedChatModel, tool_call_message
from tests.support.model_gate import Gate
from tests.support.model_gate import adds_the_users_line as _adds

pytestmark = pytest.mark.filterwarnings(
    "ignore::langchain_core._api.LangChainDeprecationWarning")


def _queue_turns(manager: MemoryManager, gate: Gate) -> list[Any]:
    futures = [manager.submit(f"I like fruit number {i}", user_id="alice") for i in range(4)]
    assert gate.entered.wait(30)  # turn 0 is running, 1..3 are queued
    return futures


def _forget_while_running(forget: Any, manager: MemoryManager, gate: Gate) -> int:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(forget("alice")))
    thread.start()
    while "alice" not in manager.forgetting:  # wait for forget_user to begin
        threading.Event().wait(0.01)
    with pytest.raises(ForgetInProgressError):
        manager.submit("I like kiwis", user_id="alice")
    gate.release.set()
    thread.join(30)
    return result[0]


@pytest.mark.parametrize("via", ["manager", "middleware", "classic"])
def test_forget_user_cancels_queued_turns_and_nothing_reappears(store: MemoryStore,
                                                                via: str) -> None:
    store.add("The user likes tea.", user_id="alice")
    store.add("The user likes chess.", user_id="bob")
    gate = Gate()
    manager = MemoryManager(store, ScriptedChatModel([gate], default_response=_adds))
    forget = {
        "manager": manager.forget_user,
        "middleware": MemoryMiddleware(store, manager).forget_user,
        "classic": lambda user: PersistentMemory(store=store, manager=manager,
                                                 user_id=user).clear(),
    }[via]
    futures = _queue_turns(manager, gate)
    _forget_while_running(forget, manager, gate)
    assert manager.flush(timeout=30)
    assert store.count("alice", include_superseded=True) == 0
    assert [m.content for m in store.list("bob")] == ["The user likes chess."]
    for queued in futures[1:]:
        with pytest.raises(CancelledError):
            queued.result()
    # After forget_user returned, the user is welcome again.
    manager.process("I like plums", user_id="alice")
    assert [m.content for m in store.list("alice")] == ["The user said: I like plums"]
    manager.close()


def test_a_long_turn_is_cut_with_a_warning(sqlite_store: MemoryStore,
                                           caplog: pytest.LogCaptureFixture) -> None:
    llm = ScriptedChatModel([tool_call_message("MemoryOperations", {"operations": []})])
    manager = MemoryManager(sqlite_store, llm, max_message_chars=200, max_turn_chars=1000)
    turn = [("user", f"I like fruit {i}. " + "x" * 300) for i in range(10)]
    with caplog.at_level(logging.WARNING, "langchain_persistent_memory.pipeline"):
        result = manager.process(turn, user_id="alice")
    prompt = llm.calls[0][-1].text
    assert "I like fruit 9" in prompt and "I like fruit 0" not in prompt
    assert len(prompt.split("<conversation>")[1]) < 1300
    assert any("max_message_chars" in n for n in result.notes)
    assert any("max_turn_chars" in n for n in result.notes)
    assert sum("memory turn:" in r.message for r in caplog.records) == 2


def test_turn_budgets_are_checked(sqlite_store: MemoryStore) -> None:
    from langchain_persistent_memory import InvalidInputError

    for bad in ({"max_message_chars": 0}, {"max_turn_chars": "big"},
                {"extract_from": ("assistant",)}):
        with pytest.raises(InvalidInputError):
            MemoryManager(sqlite_store, ScriptedChatModel(), **bad)


def test_turn_already_saved_by_the_agents_tool_costs_no_extraction(
        sqlite_store: MemoryStore) -> None:
    extractor = ScriptedChatModel()  # any call would exhaust the script
    manager = MemoryManager(sqlite_store, extractor)
    middleware = MemoryMiddleware(sqlite_store, manager, user_id="alice", background=False)
    sqlite_store.add("The user is vegan.", user_id="alice", provenance=Provenance(origin="tool"))
    call = tool_call_message("save_memory", {"content": "The user is vegan."})
    state: Any = {"messages": [
        HumanMessage("I'm vegan by the way"), call,
        ToolMessage("saved memory 1", tool_call_id=call.tool_calls[0]["id"],
                    name="save_memory"),
        AIMessage("Noted!")]}
    middleware.after_agent(state, None)  # type: ignore[arg-type]
    assert extractor.call_count == 0
    # Without the tool call the same turn is extracted (one call).
    extractor.responses.append(tool_call_message("MemoryOperations", {"operations": []}))
    middleware.after_agent({"messages": [HumanMessage("I'm vegan by the way"),
                                         AIMessage("Noted!")]}, None)  # type: ignore[arg-type]
    assert extractor.call_count == 1


def test_classic_memory_keeps_a_short_term_window(sqlite_store: MemoryStore) -> None:
    manager = MemoryManager(sqlite_store, ScriptedChatModel(
        default_response=tool_call_message("MemoryOperations", {"operations": []})))
    memory = PersistentMemory(store=sqlite_store, manager=manager, user_id="alice",
                              background=False, window_turns=2)
    for i in range(3):
        memory.save_context({"input": f"my lucky number is {i}"}, {"response": f"ok {i}"})
    history = memory.load_memory_variables({"input": "what did I just say?"})["history"]
    assert "Human: my lucky number is 2\nAI: ok 2" in history
    assert "my lucky number is 1" in history and "my lucky number is 0" not in history
    memory.clear()
    assert memory.load_memory_variables({"input": "what did I just say?"}) == {"history": ""}


async def test_aforget_user_waits_for_a_running_aprocess(sqlite_store: MemoryStore) -> None:
    import asyncio

    gate = Gate()
    manager = MemoryManager(sqlite_store, ScriptedChatModel([gate]))
    turn = asyncio.create_task(manager.aprocess("I like pears", user_id="alice"))
    assert await asyncio.to_thread(gate.entered.wait, 30)  # the turn is inside the model call
    forget = asyncio.create_task(manager.aforget_user("alice"))
    await asyncio.sleep(0.05)
    assert "alice" in manager.forgetting
    with pytest.raises(ForgetInProgressError):
        await manager.aprocess("I like figs", user_id="alice")
    gate.release.set()
    await turn
    await forget
    assert sqlite_store.count("alice", include_superseded=True) == 0
    manager.close()
