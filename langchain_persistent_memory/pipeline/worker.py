"""Background processing: ``submit`` returns at once, a worker thread does the work.

Jobs of one user always run in submission order (a user maps to one lane; each lane is a
thread with a FIFO queue). Failures are logged and set on the returned future, never
dropped; ``flush`` waits for everything submitted so far, ``close`` drains and stops.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..errors import InvalidInputError

__all__ = ["BackgroundWorker"]

logger = logging.getLogger("langchain_persistent_memory.pipeline")

_STOP = object()


class BackgroundWorker:
    """Lanes of daemon threads, started on first use.

    Args:
        lanes: number of threads; users are spread over them, each user on one lane.
        name: thread name prefix, shown in logs and debuggers.
    """

    def __init__(self, *, lanes: int = 1, name: str = "lpm-memory") -> None:
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise InvalidInputError("workers must be a positive integer", field="workers")
        self._lanes = lanes
        self._name = name
        self._queues: list[queue.SimpleQueue[Any]] = []
        self._threads: list[threading.Thread] = []
        self._pending = 0
        self._queued: dict[str, list[Future[Any]]] = {}  # key -> futures not started yet
        self._idle = threading.Condition()
        self._closed = False

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished yet."""
        with self._idle:
            return self._pending

    def _start(self) -> None:
        for i in range(self._lanes):
            q: queue.SimpleQueue[Any] = queue.SimpleQueue()
            thread = threading.Thread(target=self._loop, args=(q,), daemon=True,
                                      name=f"{self._name}-{i}")
            self._queues.append(q)
            self._threads.append(thread)
            thread.start()

    def submit(self, key: str, job: Callable[[], Any]) -> Future[Any]:
        """Queue ``job``; jobs with the same ``key`` run one after another, in order."""
        future: Future[Any] = Future()
        with self._idle:
            if self._closed:
                raise InvalidInputError("this MemoryManager is closed; submit() is not "
                                        "accepted any more")
            if not self._threads:
                self._start()
            self._pending += 1
            self._queued.setdefault(key, []).append(future)
            lane = zlib.crc32(key.encode("utf-8")) % self._lanes
            self._queues[lane].put((key, job, future))
        return future

    def cancel(self, key: str) -> int:
        """Cancel the jobs of ``key`` that have not started; returns how many.

        A cancelled job never runs (its future raises ``CancelledError``); a running one is
        not interrupted: wait for it with the caller's own lock.
        """
        with self._idle:
            futures = self._queued.pop(key, [])
        return sum(1 for future in futures if future.cancel())

    def _loop(self, q: queue.SimpleQueue[Any]) -> None:
        while True:
            item = q.get()
            if item is _STOP:
                return
            key, job, future = item
            with self._idle:
                waiting = self._queued.get(key, [])
                if future in waiting:
                    waiting.remove(future)
                if not waiting:
                    self._queued.pop(key, None)
            try:
                if future.set_running_or_notify_cancel():
                    future.set_result(job())
            except BaseException as exc:  # the worker must outlive any job
                logger.error("background memory job failed: %s", exc, exc_info=exc)
                future.set_exception(exc)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted so far is done; False if ``timeout`` ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Refuse new jobs, finish the queued ones, stop the threads. Safe to call twice."""
        with self._idle:
            self._closed = True
        drained = self.flush(timeout)
        for q in self._queues:
            q.put(_STOP)
        if drained:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join(timeout)
        return drained
