"""Background turns: ``POST /v1/turns`` queues a job and returns; a runner in every worker
process claims jobs from the tenants' job tables and feeds them to the pipeline.

The caller never waits for the model. Any process may run a job (the claim is atomic in
SQL), one user's turns run in order, and ``DELETE /v1/users/{id}`` drops that user's queued
turns; a turn already running when its user is forgotten has its writes forgotten too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import datetime
from typing import Any

from langchain_core.language_models import BaseChatModel

from ..pipeline import MemoryManager, ProcessResult
from .job_table import Job, JobTable
from .tenants import TenantStores

__all__ = ["JobRunner", "result_json"]

log = logging.getLogger("langchain_persistent_memory.server")
_POLL_S = 0.5
_LEASE_S = 600.0  # a job "running" longer than this lost its process
_KEEP_FINISHED_S = 86_400.0  # finished jobs stay readable for a day


def result_json(result: ProcessResult) -> dict[str, Any]:
    """What a finished job reports: the turn's status, each change, and the model's cost."""
    return {
        "status": result.status, "error": result.error, "llm_calls": result.llm_calls,
        "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
        "duration_ms": round(result.duration_ms, 3),
        "operations": [{"action": op.action, "memory_id": op.memory.id,
                        "content": op.memory.content,
                        "previous_id": op.previous.id if op.previous else None}
                       for op in result.operations],
    }


class JobRunner:
    """Per process: the tenants' job tables and managers, and the loop that runs turns.

    Args:
        tenants: the tenants' stores.
        llm: the chat model of every manager (``None``: raw mode).
        concurrency: turns processed at once by this process.
    """

    def __init__(self, tenants: TenantStores, llm: BaseChatModel | None, *,
                 concurrency: int = 4) -> None:
        self.tenants = tenants
        self.llm = llm
        self.concurrency = concurrency
        self._tables: dict[str, JobTable] = {}
        self._managers: dict[str, MemoryManager] = {}
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def table(self, tenant: str) -> JobTable:
        with self._lock:
            if tenant not in self._tables:
                self._tables[tenant] = JobTable(self.tenants.url(tenant))
            return self._tables[tenant]

    def manager(self, tenant: str) -> MemoryManager:
        with self._lock:
            if tenant not in self._managers:
                self._managers[tenant] = MemoryManager(self.tenants.store(tenant), self.llm)
            return self._managers[tenant]

    # ------------------------------------------------------------------ API side
    async def submit(self, tenant: str, user_id: str, request: dict[str, Any]) -> str:
        table = await asyncio.to_thread(self.table, tenant)
        job_id = await asyncio.to_thread(table.submit, user_id, request)
        self._wake.set()
        return job_id

    async def get(self, tenant: str, job_id: str) -> dict[str, Any] | None:
        table = await asyncio.to_thread(self.table, tenant)
        return await asyncio.to_thread(table.get, job_id)

    async def drop_user(self, tenant: str, user_id: str) -> int:
        table = await asyncio.to_thread(self.table, tenant)
        return await asyncio.to_thread(table.drop_user, user_id)

    # ------------------------------------------------------------------ runner side
    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._running:
            await asyncio.wait(self._running, timeout=30)
        for manager in self._managers.values():
            await manager.aclose(timeout=30)
        for table in self._tables.values():
            table.close()

    async def _loop(self) -> None:
        # Every tenant's queue, not only those this process has served: a turn accepted by
        # a worker that died is run by the others.
        for tenant in sorted(self.tenants.tenants):
            try:
                await asyncio.to_thread(self.table, tenant)
            except Exception as exc:
                log.warning("opening the job table of tenant %s failed: %s", tenant, exc)
        ticks = 0
        while True:
            claimed = False
            for tenant, table in list(self._tables.items()):
                if ticks % 120 == 0:
                    await asyncio.to_thread(table.requeue_stale, _LEASE_S)
                    await asyncio.to_thread(table.purge_finished, _KEEP_FINISHED_S)
                while len(self._running) < self.concurrency:
                    try:
                        job = await asyncio.to_thread(table.claim)
                    except Exception as exc:  # the loop must outlive a database hiccup
                        log.warning("claiming a turn job failed: %s", exc)
                        break
                    if job is None:
                        break
                    claimed = True
                    task = asyncio.get_running_loop().create_task(self._run(tenant, table, job))
                    self._running.add(task)
                    task.add_done_callback(self._finished)
            ticks += 1
            if not claimed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _POLL_S)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # capacity freed, and the user's next turn may now run

    async def _run(self, tenant: str, table: JobTable, job: Job) -> None:
        request = job.request
        error: str | None = None
        result: dict[str, Any] | None = None
        try:
            manager = await asyncio.to_thread(self.manager, tenant)
            timestamp = request.get("timestamp")
            processed = await manager.aprocess(
                request["messages"], user_id=job.user_id, agent_id=request.get("agent_id"),
                session_id=request.get("session_id"),
                timestamp=datetime.fromisoformat(timestamp) if timestamp else None)
            result = result_json(processed)
        except Exception as exc:  # reported on the job, never a stack trace to the client
            log.warning("turn job %s failed: %s", job.job_id, exc, exc_info=exc)
            error = f"{type(exc).__name__}: {exc}"
        try:
            kept = await asyncio.to_thread(table.finish, job.job_id, result=result,
                                           error=error)
        except Exception as exc:
            log.warning("recording turn job %s failed: %s", job.job_id, exc)
            return
        if not kept:
            # The user was forgotten while this turn ran: forget what it wrote, too.
            store = self.tenants.store(tenant)
            await asyncio.to_thread(store.forget_user, job.user_id)
