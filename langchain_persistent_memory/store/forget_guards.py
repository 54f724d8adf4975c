"""Forget guards: whatever calls ``forget_user`` on a store, the pipelines built on it stop
writing that user first.

Why: an app often forgets a user through the store itself (``store.forget_user``, the CLI,
the UI, the service) while a ``MemoryManager`` on the same store still has that user's turns
queued or running; those turns would bring the user's memories back after the erasure. So a
pipeline component registers a guard on the store, and the store runs every guard around
its erasure: refuse the user's new work and cancel what is queued (in every guard first),
wait for what is running, and release once the erasure returned or raised.

Guards are held weakly: a manager that is garbage-collected is neither kept alive nor
called. Guards run once per forget, also when the erasure's sync half runs in a worker
thread under an async hold (``aforget_user``): a context variable marks the users already
guarded in the current context, and ``asyncio.to_thread`` carries it along.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Protocol, runtime_checkable

__all__ = ["ForgetGuard", "ForgetGuards"]

# (id of the registry, user) pairs whose guards the current context already holds.
_HELD: contextvars.ContextVar[frozenset[tuple[int, str]]] = contextvars.ContextVar(
    "lpm_forget_guards_held", default=frozenset())


@runtime_checkable
class ForgetGuard(Protocol):
    """What a component registers on a store to be told about a user's erasure.

    Around each erasure the store calls ``begin_forget`` on every guard first (refuse the
    user's new work, drop what is queued: quick, never blocks), then waits for each guard's
    running work (``wait_forget`` in the thread that calls ``forget_user``, or
    ``await_forget`` on the event loop of ``aforget_user``, so coroutines of that loop can
    finish), erases, and finally calls ``end_forget`` (also when the erasure raised).
    """

    def begin_forget(self, user_id: str) -> None: ...

    def wait_forget(self, user_id: str) -> None: ...

    async def await_forget(self, user_id: str) -> None: ...

    def end_forget(self, user_id: str) -> None: ...


class ForgetGuards:
    """The guards registered on one store (weakly held), run around each erasure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._guards: weakref.WeakSet[ForgetGuard] = weakref.WeakSet()

    def add(self, guard: ForgetGuard) -> None:
        """Run ``guard`` around every ``forget_user`` of this store from now on."""
        if not isinstance(guard, ForgetGuard):
            raise TypeError("a forget guard needs begin_forget(), wait_forget(), "
                            "await_forget() and end_forget()")
        with self._lock:
            self._guards.add(guard)

    def __len__(self) -> int:
        """Guards registered and still alive."""
        with self._lock:
            return len(self._guards)

    def _key(self, user_id: str) -> tuple[int, str]:
        return id(self), str(user_id)

    @contextmanager
    def _begun(self, user_id: str) -> Iterator[list[ForgetGuard] | None]:
        """Every guard begun (None if this context already holds them), then ended."""
        if self._key(user_id) in _HELD.get():
            yield None
            return
        with self._lock:
            guards = list(self._guards)
        begun: list[ForgetGuard] = []
        token = _HELD.set(_HELD.get() | {self._key(user_id)})
        try:
            for guard in guards:
                guard.begin_forget(user_id)
                begun.append(guard)
            yield begun
        finally:
            _HELD.reset(token)
            for guard in reversed(begun):
                guard.end_forget(user_id)

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        """The user's work stopped in every guard (blocking) for the duration of the block."""
        with self._begun(user_id) as begun:
            for guard in begun or []:
                guard.wait_forget(user_id)
            yield

    @asynccontextmanager
    async def ahold(self, user_id: str) -> AsyncIterator[None]:
        """:meth:`hold` for coroutines: guards wait without blocking the event loop."""
        with self._begun(user_id) as begun:
            for guard in begun or []:
                await guard.await_forget(user_id)
            yield
