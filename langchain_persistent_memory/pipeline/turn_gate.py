"""Which of a user's turns may still write: the manager's side of forgetting that sticks.

A turn is *accepted* (arguments checked, maybe queued) and later *runs* (search, model
call, write). ``forget_user`` can start between the two or during the run, through the
manager or straight on the store. The gate keeps, per user: whether a forget is running
(new turns are refused with :class:`ForgetInProgressError`), an epoch counting forgets (a
turn accepted in an earlier epoch never starts, and stops before its write), and the turns
running now (a forget waits for them, so nothing they wrote survives the erasure).

It is the manager's :class:`~langchain_persistent_memory.store.forget_guards.ForgetGuard`:
the store runs it around every ``forget_user`` (begin, wait, erase, end).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from ..errors import ForgetInProgressError

__all__ = ["TurnForgotten", "TurnGate"]

logger = logging.getLogger("langchain_persistent_memory.pipeline")

Loop = asyncio.AbstractEventLoop | None  # the loop running an async turn; None: blocking

# Tokens of the turns that the current context runs (carried into the threads and tasks the
# turn starts): a forget called from inside a turn must not wait for that very turn.
_MINE: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "lpm_turns_running_here", default=frozenset())
_TOKENS = itertools.count()


class TurnForgotten(Exception):
    """Raised into a running turn at its write: its user was forgotten after it began."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _waker(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Callable[[], None]:
    """Resolves ``future`` on its loop from any thread (a closed loop has nobody to wake)."""
    def wake() -> None:
        with suppress(RuntimeError):
            loop.call_soon_threadsafe(_wake, future)
    return wake


class TurnGate:
    """Admission, epochs and running turns of every user of one manager.

    Args:
        cancel_queued: drops the user's queued turns that have not started; returns how many.
    """

    def __init__(self, cancel_queued: Callable[[str], int]) -> None:
        self._cancel_queued = cancel_queued
        self._changed = threading.Condition()
        self._forgetting: dict[str, int] = {}  # user -> forgets running
        self._epochs: dict[str, int] = {}  # user -> forgets so far
        self._running: dict[str, dict[int, Loop]] = {}  # user -> running turns' tokens
        self._waiters: list[Callable[[], None]] = []  # async forgets waiting for a change

    # ------------------------------------------------------------------ turns
    def admit(self, user_id: str) -> int:
        """The epoch of a new turn; refused while the user is being forgotten."""
        with self._changed:
            if self._forgetting.get(user_id):
                raise ForgetInProgressError(user_id)
            return self._epochs.get(user_id, 0)

    @property
    def forgetting(self) -> frozenset[str]:
        with self._changed:
            return frozenset(self._forgetting)

    def _check(self, user_id: str, epoch: int | None) -> None:
        if epoch is not None and self._epochs.get(user_id, 0) != epoch:
            raise TurnForgotten(user_id)

    def check(self, user_id: str, epoch: int | None) -> None:
        """Raise :class:`TurnForgotten` if the user was forgotten since ``epoch``."""
        with self._changed:
            self._check(user_id, epoch)

    @contextmanager
    def running(self, user_id: str, epoch: int | None, loop: Loop = None) -> Iterator[None]:
        """Mark a turn as running (forgets wait for it); raises :class:`TurnForgotten`
        instead if the user was forgotten since the turn was accepted (``epoch``).
        ``loop``: the event loop of an async turn."""
        token = next(_TOKENS)
        with self._changed:
            self._check(user_id, epoch)
            self._running.setdefault(user_id, {})[token] = loop
        mine = _MINE.set(_MINE.get() | {token})
        try:
            yield
        finally:
            _MINE.reset(mine)
            with self._changed:
                turns = self._running[user_id]
                del turns[token]
                if not turns:
                    del self._running[user_id]
                self._changed.notify_all()
                waiters, self._waiters = self._waiters, []
            for wake in waiters:
                wake()

    # ------------------------------------------------------------------ forgetting
    def begin_forget(self, user_id: str) -> None:
        """Refuse the user's new turns, stop accepted ones, cancel the queued ones."""
        with self._changed:
            self._forgetting[user_id] = self._forgetting.get(user_id, 0) + 1
            self._epochs[user_id] = self._epochs.get(user_id, 0) + 1
        cancelled = self._cancel_queued(user_id)
        if cancelled:
            logger.info("forget_user(%r): %d queued turn(s) cancelled", user_id, cancelled)

    def end_forget(self, user_id: str) -> None:
        """The erasure returned (or raised): the user's turns are welcome again."""
        with self._changed:
            self._forgetting[user_id] -= 1
            if not self._forgetting[user_id]:
                del self._forgetting[user_id]

    def _awaited(self, user_id: str, here: Loop) -> list[int]:
        """The user's running turns a forget waits for: not the turn it is called from
        (it would wait for itself), nor, for a blocking forget on event loop ``here``, the
        turns of that loop (they cannot move until it returns). Those stop at their write."""
        mine = _MINE.get()
        return [token for token, loop in self._running.get(user_id, {}).items()
                if token not in mine and (here is None or loop is not here)]

    def wait_forget(self, user_id: str) -> None:
        """Block until the user's running turns are done (they stop before their write)."""
        here = _running_loop()
        with self._changed:
            self._changed.wait_for(lambda: not self._awaited(user_id, here))
            left = len(self._running.get(user_id, {}))
        if left:
            logger.warning(
                "forget_user(%r) was called from inside %d of the user's running turns, or "
                "without await on their event loop: they stop before their write (from a "
                "coroutine use `await aforget_user(...)`)", user_id, left)

    async def await_forget(self, user_id: str) -> None:
        """:meth:`wait_forget` without blocking the event loop, so the user's turns running
        on it can finish."""
        loop = asyncio.get_running_loop()
        while True:
            with self._changed:
                if not self._awaited(user_id, None):
                    return
                changed: asyncio.Future[None] = loop.create_future()
                self._waiters.append(_waker(loop, changed))
            await changed
