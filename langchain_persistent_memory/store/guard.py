"""Calls on a closed store, or interrupted by ``close()``, fail with one typed error.

A call still running when another thread closes the store would otherwise surface the
driver's own error (``sqlite3.ProgrammingError: Cannot operate on a closed database``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, Protocol, TypeVar

from ..errors import PersistentMemoryError, StoreClosedError

__all__ = ["aopen_only", "open_only"]

P = ParamSpec("P")
T = TypeVar("T")


class _Closable(Protocol):
    @property
    def closed(self) -> bool: ...


@contextmanager
def _typed_close_errors(args: Any) -> Iterator[None]:
    owner: _Closable = args[0]
    if owner.closed:
        raise StoreClosedError("this MemoryStore is closed")
    try:
        yield
    except PersistentMemoryError:
        raise
    except Exception as exc:
        if owner.closed:
            raise StoreClosedError("this MemoryStore was closed during the call") from exc
        raise


def open_only(method: Callable[P, T]) -> Callable[P, T]:
    """Refuse calls on a closed store, and turn a driver error of a call that ``close()``
    interrupted into :class:`StoreClosedError`."""
    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        with _typed_close_errors(args):
            return method(*args, **kwargs)
    return guarded


def aopen_only(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """:func:`open_only` for coroutines."""
    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        with _typed_close_errors(args):
            return await method(*args, **kwargs)
    return guarded
