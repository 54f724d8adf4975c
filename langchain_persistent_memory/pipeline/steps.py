"""Sans-I/O plumbing: pipeline logic is written once, as generators of I/O requests.

A step generator yields requests (search this, call the model, apply these
operations) and receives their results; :func:`run_sync` and :func:`run_async` execute the
requests with blocking or awaitable I/O. So ``process`` and ``aprocess`` share one body and
the async path never hops to a thread for the model call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ..models import Operation
from .structured import ModelCall

__all__ = ["Apply", "FetchVectors", "Request", "Search", "Steps", "Timer",
           "run_async", "run_sync"]

T = TypeVar("T")


@dataclass(frozen=True)
class Search:
    """The user's current memories most related to a text (hybrid dense + keyword ranking;
    the store embeds the text once and caches the vector)."""

    text: str
    k: int


@dataclass(frozen=True)
class Apply:
    """Commit operations for the user in one transaction."""

    ops: list[Operation]


@dataclass(frozen=True)
class FetchVectors:
    """All current memories of the user, with their stored embeddings."""

    limit: int


Request = Search | Apply | FetchVectors | ModelCall
Steps = Generator[Request, Any, T]


class Timer:
    """Wall time of a run and the part of it spent waiting for the model."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.model_ms = 0.0

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000.0


def run_sync(steps: Steps[T], execute: Callable[[Request], Any], timer: Timer) -> T:
    """Drive ``steps`` with blocking I/O; an I/O error is thrown back into the generator."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return cast(T, stop.value)
        value, error = None, None
        began = time.perf_counter()
        try:
            value = execute(request)
        except Exception as exc:  # handed to the step logic, which decides
            error = exc
        if isinstance(request, ModelCall):
            timer.model_ms += (time.perf_counter() - began) * 1000.0


async def run_async(steps: Steps[T], execute: Callable[[Request], Awaitable[Any]],
                    timer: Timer) -> T:
    """Same as :func:`run_sync` with awaitable I/O."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return cast(T, stop.value)
        value, error = None, None
        began = time.perf_counter()
        try:
            value = await execute(request)
        except Exception as exc:
            error = exc
        if isinstance(request, ModelCall):
            timer.model_ms += (time.perf_counter() - began) * 1000.0


