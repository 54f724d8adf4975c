"""One lock per user, so one manager never runs two turns of the same user at once.

Why: a turn reads the user's related memories, asks the model, then writes. Two turns of the
same user interleaved that way would both decide from the same snapshot ("supersede m3"
twice: the second is refused and its facts are lost). Other users' turns still run in
parallel. Locks exist only while someone holds or waits for them, so a long-running app
does not accumulate one per user ever seen.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

__all__ = ["UserLocks"]


class UserLocks:
    """Per-user mutual exclusion for blocking callers (threads) and for coroutines.

    Coroutines are serialised per event loop (an ``asyncio.Lock`` belongs to one loop);
    a thread and a coroutine working on the same user at the same moment are not.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[Any, list[Any]] = {}  # key -> [lock, users holding or waiting]

    def _enter(self, key: Any, factory: type) -> Any:
        with self._guard:
            entry = self._held.setdefault(key, [factory(), 0])
            entry[1] += 1
            return entry[0]

    def _leave(self, key: Any) -> None:
        with self._guard:
            entry = self._held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del self._held[key]

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        lock = self._enter(("thread", user_id), threading.Lock)
        try:
            with lock:
                yield
        finally:
            self._leave(("thread", user_id))

    @asynccontextmanager
    async def ahold(self, user_id: str) -> AsyncIterator[None]:
        key = (asyncio.get_running_loop(), user_id)
        lock = self._enter(key, asyncio.Lock)
        try:
            async with lock:
                yield
        finally:
            self._leave(key)
