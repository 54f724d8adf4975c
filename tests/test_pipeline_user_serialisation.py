"""One manager never runs two turns of the same user at once; different users overlap.

Why: a turn decides from a snapshot of the user's memories. Two interleaved turns of one
user would decide from the same snapshot and the later write would be refused (its facts
lost), while serialising every user would make a busy app wait on strangers' turns.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from langchain_core.messages import AIMessage, BaseMessage

from langchain_persistent_memory import MemoryManager, MemoryStore
from tests.support.fake_chat import ScriptedChatModel, tool_call_message


class OverlapProbe:
    """A model reply that records how many calls were inside the model at once."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.inside = 0
        self.most = 0
        self.barrier = barrier
        self.lock = threading.Lock()

    def __call__(self, messages: list[BaseMessage]) -> AIMessage:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
            fact = f"The user said turn {self.inside}-{time.perf_counter_ns()}."
        if self.barrier is not None:
            self.barrier.wait()  # both calls must be inside together, or this times out
        else:
            time.sleep(0.3)
        with self.lock:
            self.inside -= 1
        return tool_call_message("MemoryOperations", {"operations": [
            {"op": "ADD", "content": fact}]})


def test_turns_of_one_user_never_overlap(sqlite_store: MemoryStore) -> None:
    probe = OverlapProbe()
    manager = MemoryManager(sqlite_store, ScriptedChatModel(default_response=probe))
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: manager.process(f"fact {i}", user_id="alice"),
                                range(3)))
    assert probe.most == 1
    assert [r.status for r in results] == ["applied"] * 3
    assert sqlite_store.count("alice") == 3
    manager.close()


def test_turns_of_different_users_run_in_parallel(sqlite_store: MemoryStore) -> None:
    probe = OverlapProbe(barrier=threading.Barrier(2, timeout=10))
    manager = MemoryManager(sqlite_store, ScriptedChatModel(default_response=probe))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda u: manager.process("a fact", user_id=u),
                                ["alice", "bob"]))
    assert probe.most == 2
    assert [r.status for r in results] == ["applied", "applied"]
    manager.close()


async def test_async_turns_of_one_user_never_overlap(sqlite_store: MemoryStore) -> None:
    probe = OverlapProbe()
    manager = MemoryManager(sqlite_store, ScriptedChatModel(default_response=probe))
    results = await asyncio.gather(*(manager.aprocess(f"fact {i}", user_id="alice")
                                     for i in range(3)))
    assert probe.most == 1
    assert [r.status for r in results] == ["applied"] * 3
    other = OverlapProbe(barrier=threading.Barrier(2, timeout=10))
    parallel = MemoryManager(sqlite_store, ScriptedChatModel(default_response=other))
    await asyncio.gather(parallel.aprocess("x", user_id="carol"),
                         parallel.aprocess("y", user_id="dave"))
    assert other.most == 2
    await manager.aclose()
    await parallel.aclose()


def test_locks_do_not_accumulate(sqlite_store: MemoryStore) -> None:
    manager = MemoryManager(sqlite_store)
    for i in range(50):
        manager.process(f"hello {i}", user_id=f"user-{i}")
    assert manager._users._held == {}
    manager.close()


def test_submitted_and_direct_turns_of_one_user_do_not_overlap(
        sqlite_store: MemoryStore) -> None:
    probe = OverlapProbe()
    manager = MemoryManager(sqlite_store, ScriptedChatModel(default_response=probe),
                            workers=2)
    future = manager.submit("background fact", user_id="alice")
    manager.process("direct fact", user_id="alice")
    future.result(timeout=10)
    assert probe.most == 1
    manager.close()
