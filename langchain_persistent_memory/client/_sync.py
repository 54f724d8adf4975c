"""``MemoryClient``: the memory service over HTTP with ``MemoryStore``'s methods, so the
integrations (retriever, tools, middleware, classic memory) take it in place of a store.

Blocking methods use one ``httpx.Client``; the ``a``-prefixed twins that the integrations'
async paths call (``asearch``, ``aadd`` …) delegate to an :class:`AsyncMemoryClient`.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any, Literal, TypeVar

import httpx

from ..models import AddOp, Memory, MemoryEvent, Provenance, ScoredMemory
from ._aio import AsyncMemoryClient
from ._calls import JOB_DONE, Call, calls, check_response
from ._options import ClientOptions, poll_delays, read_source, write_export

__all__ = ["MemoryClient"]

T = TypeVar("T")


class MemoryClient:
    """Client of ``lpm serve``; same arguments, results and typed errors as ``MemoryStore``.

    Args:
        base_url: the service, e.g. ``http://127.0.0.1:8080``.
        api_key: the tenant's key (default ``$LPM_API_KEY``); sent as a Bearer token.
        timeout: seconds per request.
        transport: an ``httpx.BaseTransport`` (tests, proxies); default: the network.

    Example:
        >>> client = MemoryClient("http://127.0.0.1:8080", api_key="k1")  # doctest: +SKIP
        >>> client.add("Prefers window seats", user_id="alice")  # doctest: +SKIP
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.options = ClientOptions.of(base_url, api_key, timeout)
        self._api_key = api_key
        self._timeout = timeout
        self._http = httpx.Client(base_url=self.options.base_url, headers=self.options.headers,
                                  timeout=timeout, transport=transport)
        self._async: tuple[asyncio.AbstractEventLoop, AsyncMemoryClient] | None = None
        self._jobs: list[str] = []

    def __repr__(self) -> str:
        return f"MemoryClient({self.options.base_url!r})"

    def _send(self, call: Call[T]) -> T:
        response = self._http.request(call.method, call.path, params=call.params,
                                      json=call.json, content=call.content,
                                      headers=call.headers)
        return call.parse(check_response(response))

    def _aclient(self) -> AsyncMemoryClient:
        """One async client per event loop (httpx's async pool belongs to its loop)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, AsyncMemoryClient(self.options.base_url, api_key=self._api_key,
                                                   timeout=self._timeout))
        return self._async[1]

    def close(self) -> None:
        self._http.close()

    async def aclose(self) -> None:
        self.close()
        if self._async is not None:
            await self._async[1].aclose()

    def __enter__(self) -> MemoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> dict[str, Any]:
        return self._send(calls.health())

    def add(self, content: str, *, user_id: str, agent_id: str | None = None,
            session_id: str | None = None, category: str | None = None,
            importance: float = 0.5, metadata: dict[str, Any] | None = None,
            valid_from: datetime | None = None,
            provenance: Provenance | None = None) -> Memory:
        """Remember one fact for a user (``POST /v1/memories``)."""
        return self._send(calls.add(
            content, user_id=user_id, agent_id=agent_id, session_id=session_id,
            category=category, importance=importance, metadata=metadata,
            valid_from=valid_from, provenance=provenance))

    async def aadd(self, content: str, *, user_id: str, **kwargs: Any) -> Memory:
        return await self._aclient().add(content, user_id=user_id, **kwargs)

    def add_many(self, items: Sequence[str | dict[str, Any] | AddOp], *,
                 user_id: str) -> list[Memory]:
        return self._send(calls.add_many(items, user_id=user_id))

    def get(self, memory_id: str, *, user_id: str | None = None) -> Memory:
        return self._send(calls.get(memory_id, user_id=user_id))

    async def aget(self, memory_id: str, *, user_id: str | None = None) -> Memory:
        return await self._aclient().get(memory_id, user_id=user_id)

    def update(self, memory_id: str, *, content: str | None = None,
               category: str | None = None, importance: float | None = None,
               metadata: dict[str, Any] | None = None, user_id: str | None = None,
               provenance: Provenance | None = None) -> Memory:
        return self._send(calls.update(
            memory_id, user_id=user_id, content=content, category=category,
            importance=importance, metadata=metadata, provenance=provenance))

    def supersede(self, memory_id: str, content: str, *, user_id: str | None = None,
                  category: str | None = None, importance: float | None = None,
                  metadata: dict[str, Any] | None = None,
                  valid_from: datetime | None = None,
                  provenance: Provenance | None = None) -> Memory:
        return self._send(calls.update(
            memory_id, user_id=user_id, supersede=True, content=content, category=category,
            importance=importance, metadata=metadata, valid_from=valid_from,
            provenance=provenance))

    def delete(self, memory_id: str, *, user_id: str | None = None,
               reason: str | None = None, provenance: Provenance | None = None) -> Memory:
        return self._send(calls.delete(memory_id, user_id=user_id, reason=reason,
                                       provenance=provenance))

    def history(self, memory_id: str, *, user_id: str | None = None) -> list[MemoryEvent]:
        return self._send(calls.history(memory_id, user_id=user_id))

    def list(self, user_id: str, *, include_superseded: bool = False, limit: int | None = None,
             offset: int = 0, **filters: Any) -> builtins.list[Memory]:
        return self._send(calls.list(user_id, include_superseded=include_superseded,
                                     limit=limit, offset=offset, filters=filters))

    async def alist(self, user_id: str, **kwargs: Any) -> builtins.list[Memory]:
        return await self._aclient().list(user_id, **kwargs)

    def count(self, user_id: str | None = None, *, include_superseded: bool = False) -> int:
        return self._send(calls.count(user_id, include_superseded=include_superseded))

    def search(self, query: str, *, user_id: str, k: int = 5,
               include_superseded: bool = False, min_score: float | None = None,
               **filters: Any) -> builtins.list[ScoredMemory]:
        """The user's ``k`` most relevant memories (``POST /v1/search``), best first."""
        return self._send(calls.search(query, user_id=user_id, k=k,
                                       include_superseded=include_superseded,
                                       min_score=min_score, filters=filters))

    async def asearch(self, query: str, *, user_id: str, k: int = 5,
                      include_superseded: bool = False, min_score: float | None = None,
                      **filters: Any) -> builtins.list[ScoredMemory]:
        return await self._aclient().search(query, user_id=user_id, k=k,
                                            include_superseded=include_superseded,
                                            min_score=min_score, **filters)

    def forget_user(self, user_id: str) -> int:
        """Erase a user on the service, queued turns included; returns memories removed."""
        return self._send(calls.forget_user(user_id))

    async def aforget_user(self, user_id: str) -> int:
        return await self._aclient().forget_user(user_id)

    def export_jsonl(self, dest: str | os.PathLike[str] | IO[str], *,
                     user_id: str | None = None) -> int:
        return write_export(self._send(calls.export_jsonl(user_id)), dest)

    def import_jsonl(self, src: str | os.PathLike[str] | IO[str], *, user_id: str | None = None,
                     on_conflict: Literal["error", "skip"] = "error") -> int:
        return self._send(calls.import_jsonl(read_source(src), user_id=user_id,
                                             on_conflict=on_conflict))

    # ------------------------------------------------------------------ turns
    def submit(self, messages: Any, *, user_id: str, agent_id: str | None = None,
               session_id: str | None = None, timestamp: datetime | None = None) -> str:
        """Queue a turn for the service's pipeline (``POST /v1/turns``); returns the job id
        at once, like ``MemoryManager.submit``."""
        job_id = self._send(calls.submit(messages, user_id=user_id, agent_id=agent_id,
                                         session_id=session_id, timestamp=timestamp))
        self._jobs.append(job_id)
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        """``{"job_id", "status": queued|running|done|failed, "result"?, "error"?}``."""
        return self._send(calls.job(job_id))

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Poll a job until it is done or failed (or ``timeout`` seconds passed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for delay in poll_delays():
            status = self.job(job_id)
            if status["status"] in JOB_DONE or (deadline and time.monotonic() >= deadline):
                return status
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def process(self, messages: Any, *, user_id: str, agent_id: str | None = None,
                session_id: str | None = None,
                timestamp: datetime | None = None) -> dict[str, Any]:
        """Submit a turn and wait for the service to process it; returns the job."""
        return self.wait(self.submit(messages, user_id=user_id, agent_id=agent_id,
                                     session_id=session_id, timestamp=timestamp))

    async def aprocess(self, messages: Any, *, user_id: str, agent_id: str | None = None,
                       session_id: str | None = None,
                       timestamp: datetime | None = None) -> dict[str, Any]:
        return await self._aclient().process(messages, user_id=user_id, agent_id=agent_id,
                                             session_id=session_id, timestamp=timestamp)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for every turn this client submitted; False if ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._jobs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self.wait(self._jobs[0], left)["status"] not in JOB_DONE:
                return False
            self._jobs.pop(0)
        return True
