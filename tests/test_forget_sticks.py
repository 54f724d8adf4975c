"""Forgetting sticks whatever ``forget_user`` is called on: the store itself (as an app, the
CLI or the UI would call it) stops every ``MemoryManager`` built on it first — queued turns
cancelled, a running one stopped before its write, new ones refused — so after ``flush()``
nothing of the user is back. Real SQLite and PostgreSQL, the real pipeline, scripted models
held inside their model call; every wait has a timeout, so a deadlock fails the test."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_persistent_memory import (
    ForgetIncompleteError,
    ForgetInProgressError,
    MemoryManager,
    MemoryNotFoundError,
    MemoryStore,
)
from langchain_persistent_memory.integrations.classic_memory import PersistentMemory
from langchain_persistent_memory.integrations.middleware import MemoryMiddleware
from tests.support.fake_chat import ScriptedChatModel
from tests.support.model_gate import Gate, adds_the_users_line

pytestmark = pytest.mark.filterwarnings(
    "ignore::langchain_core._api.LangChainDeprecationWarning")

WAIT = 30.0  # seconds before a wait counts as a deadlock


def _manager(store: MemoryStore, gate: Gate) -> MemoryManager:
    """Its first model call waits for ``gate``; later ones store the user's line."""
    return MemoryManager(store, ScriptedChatModel([gate], default_response=adds_the_users_line))


def _submitter(via: str, store: MemoryStore,
               manager: MemoryManager) -> Callable[[str, str], None]:
    """Hands a turn to the manager's background queue the way ``via`` does by default."""
    def submit(text: str, user: str) -> None:
        if via == "manager":
            manager.submit(text, user_id=user)
        elif via == "middleware":
            middleware = MemoryMiddleware(store, manager, user_id=user)
            middleware.after_agent({"messages": [HumanMessage(text), AIMessage("Noted.")]},
                                   None)  # type: ignore[arg-type]
        else:
            PersistentMemory(store=store, manager=manager, user_id=user).save_context(
                {"input": text}, {"response": "Noted."})
    return submit


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, Future[Any]]:
    done: Future[Any] = Future()

    def run() -> None:
        try:
            done.set_result(call())
        except BaseException as exc:
            done.set_exception(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def _wait_until(condition: Callable[[], bool]) -> None:
    event = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("timed out")


def _assert_forgotten(store: MemoryStore, user: str, known_id: str, other: str) -> None:
    """No memory, no history event of ``user`` left: every event left is ``other``'s."""
    assert store.count(user, include_superseded=True) == 0
    assert store.list(user, include_superseded=True) == []
    with pytest.raises(MemoryNotFoundError):
        store.history(known_id, user_id=user)
    others = sum(len(store.history(m.id, user_id=other))
                 for m in store.list(other, include_superseded=True))
    assert store.stats()["history_events"] == others


@pytest.mark.parametrize("via", ["manager", "middleware", "classic"])
def test_store_forget_user_stops_queued_turns_and_nothing_reappears(store: MemoryStore,
                                                                    via: str) -> None:
    tea = store.add("The user likes tea.", user_id="alice")
    store.add("The user likes chess.", user_id="bob")
    gate = Gate()
    manager = _manager(store, gate)
    submit = _submitter(via, store, manager)
    for i in range(4):
        submit(f"I like fruit number {i}", "alice")
    assert gate.entered.wait(WAIT)  # alice's turn 0 is in the model call, 1..3 queued
    submit("I like go", "bob")  # queued behind alice's turns on the one lane
    assert manager.pending == 5

    thread, removed = _in_thread(lambda: store.forget_user("alice"))
    _wait_until(lambda: "alice" in manager.forgetting)
    with pytest.raises(ForgetInProgressError):
        submit("I like kiwis", "alice")
    gate.release.set()
    thread.join(WAIT)
    assert not thread.is_alive(), "store.forget_user deadlocked"
    assert removed.result() == 1
    assert manager.flush(timeout=WAIT)

    _assert_forgotten(store, "alice", tea.id, other="bob")
    assert sorted(m.content for m in store.list("bob")) == [
        "The user likes chess.", "The user said: I like go"]
    submit("I like plums", "alice")  # welcome again once forget_user returned
    assert manager.flush(timeout=WAIT)
    assert [m.content for m in store.list("alice")] == ["The user said: I like plums"]
    manager.close()


def test_queued_futures_are_cancelled_and_the_running_turn_is_skipped(
        store: MemoryStore) -> None:
    gate = Gate()
    manager = _manager(store, gate)
    futures = [manager.submit(f"I like fruit number {i}", user_id="alice") for i in range(3)]
    assert gate.entered.wait(WAIT)
    thread, _ = _in_thread(lambda: store.forget_user("alice"))
    _wait_until(lambda: "alice" in manager.forgetting)
    with pytest.raises(ForgetInProgressError):
        manager.process("I like kiwis", user_id="alice")
    gate.release.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    running = futures[0].result(timeout=WAIT)
    assert running.status == "skipped" and running.added == []
    for queued in futures[1:]:
        with pytest.raises(CancelledError):
            queued.result(timeout=WAIT)
    assert store.count("alice", include_superseded=True) == 0
    manager.close()


async def test_store_aforget_user_waits_for_an_aprocess_on_the_loop(store: MemoryStore) -> None:
    gate = Gate()
    manager = _manager(store, gate)
    turn = asyncio.create_task(manager.aprocess("I like pears", user_id="alice"))
    assert await asyncio.to_thread(gate.entered.wait, WAIT)  # inside the model call
    forget = asyncio.create_task(store.aforget_user("alice"))
    for _ in range(int(WAIT / 0.01)):
        if "alice" in manager.forgetting:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(ForgetInProgressError):
        await manager.aprocess("I like figs", user_id="alice")
    assert not forget.done()  # it waits for the turn running on this loop
    gate.release.set()
    result = await asyncio.wait_for(turn, WAIT)
    assert await asyncio.wait_for(forget, WAIT) == 0
    assert result.status == "skipped"
    assert store.count("alice", include_superseded=True) == 0
    assert store.stats()["history_events"] == 0
    await manager.aprocess("I like plums", user_id="alice")
    assert [m.content for m in store.list("alice")] == ["The user said: I like plums"]
    manager.close()


def test_a_blocking_store_forget_inside_a_coroutine_does_not_deadlock(
        sqlite_store: MemoryStore) -> None:
    """``store.forget_user`` called without await on the loop that runs the user's
    ``aprocess``: it cannot wait for that turn, so the turn stops before its write."""
    gate = Gate()
    manager = _manager(sqlite_store, gate)

    async def scenario() -> tuple[int, str]:
        turn = asyncio.create_task(manager.aprocess("I like pears", user_id="alice"))
        assert await asyncio.to_thread(gate.entered.wait, WAIT)
        removed = sqlite_store.forget_user("alice")  # blocks this loop
        gate.release.set()
        return removed, (await asyncio.wait_for(turn, WAIT)).status

    thread, outcome = _in_thread(lambda: asyncio.run(scenario()))
    thread.join(WAIT)
    assert not thread.is_alive(), "forget_user deadlocked the event loop"
    assert outcome.result() == (0, "skipped")
    assert sqlite_store.count("alice", include_superseded=True) == 0
    manager.close()


def test_a_forget_from_inside_the_users_own_turn_does_not_deadlock(store: MemoryStore) -> None:
    """Code running inside a turn (here: the model call) forgets the turn's own user: the
    forget cannot wait for the turn that called it, so the turn stops before its write."""
    def forgets_then_adds(messages: list[Any]) -> AIMessage:
        store.forget_user("alice")
        return adds_the_users_line(messages)

    manager = MemoryManager(store, ScriptedChatModel([forgets_then_adds]))
    store.add("The user likes tea.", user_id="alice")
    thread, result = _in_thread(lambda: manager.process("I like pears", user_id="alice"))
    thread.join(WAIT)
    assert not thread.is_alive(), "a forget inside the user's turn deadlocked"
    assert result.result().status == "skipped"
    assert store.count("alice", include_superseded=True) == 0
    manager.close()


def test_manager_and_store_forget_at_once_do_not_deadlock(store: MemoryStore) -> None:
    gate = Gate()
    manager = _manager(store, gate)
    store.add("The user likes tea.", user_id="alice")
    futures = [manager.submit(f"I like fruit number {i}", user_id="alice") for i in range(3)]
    assert gate.entered.wait(WAIT)
    calls = [lambda: manager.forget_user("alice"), lambda: store.forget_user("alice"),
             lambda: asyncio.run(manager.aforget_user("alice")),
             lambda: asyncio.run(store.aforget_user("alice"))]
    started = [_in_thread(call) for call in calls]
    _wait_until(lambda: "alice" in manager.forgetting)
    gate.release.set()
    for thread, _ in started:
        thread.join(WAIT)
        assert not thread.is_alive(), "concurrent forgets deadlocked"
    assert sum(done.result() for _, done in started) == 1  # the one memory, removed once
    assert manager.flush(timeout=WAIT)
    assert futures[0].result().status == "skipped"
    assert store.count("alice", include_superseded=True) == 0
    assert manager.forgetting == frozenset()
    manager.close()


def test_every_manager_on_the_store_is_guarded(store: MemoryStore) -> None:
    gates = [Gate(), Gate()]
    managers = [_manager(store, gate) for gate in gates]
    for manager, gate in zip(managers, gates):
        for i in range(3):
            manager.submit(f"I like fruit number {i}", user_id="alice")
        assert gate.entered.wait(WAIT)
    thread, _ = _in_thread(lambda: store.forget_user("alice"))
    _wait_until(lambda: all("alice" in m.forgetting for m in managers))
    for manager in managers:
        with pytest.raises(ForgetInProgressError):
            manager.submit("I like kiwis", user_id="alice")
    for gate in gates:
        gate.release.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    for manager in managers:
        assert manager.flush(timeout=WAIT)
    assert store.count("alice", include_superseded=True) == 0
    assert store.stats()["history_events"] == 0
    for manager in managers:
        manager.close()


def test_a_collected_manager_is_neither_kept_nor_called(sqlite_store: MemoryStore) -> None:
    manager = MemoryManager(sqlite_store)
    manager.process("I like tea", user_id="alice")
    assert len(sqlite_store.forget_guards) == 1
    manager.close()
    del manager
    gc.collect()
    assert len(sqlite_store.forget_guards) == 0
    assert sqlite_store.forget_user("alice") == 1


def test_a_forget_that_raises_still_cancelled_the_turns_and_lets_the_user_in_again(
        sqlite_store: MemoryStore) -> None:
    """A reader in another connection keeps the WAL: ``store.forget_user`` raises
    ``ForgetIncompleteError``; the user's queued turns were cancelled all the same, and
    afterwards the user's turns are welcome again."""
    gate = Gate()
    manager = _manager(sqlite_store, gate)
    sqlite_store.add("The user likes chess.", user_id="bob")
    reader = sqlite3.connect(sqlite_store.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM lpm_memories").fetchall()
        sqlite_store.add("The user likes tea.", user_id="alice")  # a frame the reader pins
        futures = [manager.submit(f"I like fruit number {i}", user_id="alice")
                   for i in range(3)]
        assert gate.entered.wait(WAIT)
        thread, removed = _in_thread(lambda: sqlite_store.forget_user("alice"))
        _wait_until(lambda: "alice" in manager.forgetting)
        gate.release.set()
        thread.join(WAIT)
        assert not thread.is_alive()
        with pytest.raises(ForgetIncompleteError):
            removed.result()
    finally:
        reader.close()
    assert manager.flush(timeout=WAIT)
    assert manager.forgetting == frozenset()
    for queued in futures[1:]:
        with pytest.raises(CancelledError):
            queued.result()
    assert sqlite_store.count("alice", include_superseded=True) == 0
    manager.process("I like plums", user_id="alice")
    assert [m.content for m in sqlite_store.list("alice")] == ["The user said: I like plums"]
    manager.close()
