"""Turn jobs in SQL: a table the server creates in each tenant's database.

Why SQL and not memory: ``POST /v1/turns`` may reach one worker process and
``GET /v1/jobs/{id}`` another; any process can also pick the job up. The table lives in the
tenant's own schema/file, so a job id of one tenant is simply absent for another.

Claiming is one ``UPDATE … RETURNING`` of the oldest queued job whose user has no running
job: a user's turns run one at a time, in order, whichever process runs them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.exc import OperationalError, ProgrammingError

__all__ = ["Job", "JobTable"]

_meta = MetaData()
jobs = Table(
    "lpm_service_jobs", _meta,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(36), nullable=False, unique=True),
    Column("user_id", String(256), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("request", Text, nullable=False),
    Column("result", Text),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)


@dataclass(frozen=True)
class Job:
    """A claimed job: what to process and for whom."""

    job_id: str
    user_id: str
    request: dict[str, Any]


def _engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_recycle=1800, pool_size=2, max_overflow=4)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_conn: Any, _record: Any) -> None:
        # One statement, one transaction: a claim never upgrades a read snapshot.
        dbapi_conn.isolation_level = None

    return engine


class JobTable:
    """The queue of one tenant."""

    def __init__(self, url: str) -> None:
        self.engine = _engine(url)
        try:
            _meta.create_all(self.engine, checkfirst=True)
        except (OperationalError, ProgrammingError):
            # Another worker created it at the same moment: fine if it exists now.
            _meta.create_all(self.engine, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    def _write(self, statement: Any) -> Any:
        """Run one write, retrying while SQLite reports the database busy."""
        for attempt in range(20):
            try:
                with self.engine.begin() as conn:
                    result = conn.execute(statement)
                    return result.all() if result.returns_rows else result.rowcount
            except OperationalError as exc:
                if "locked" not in str(exc) or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def submit(self, user_id: str, request: dict[str, Any]) -> str:
        job_id = str(uuid.uuid4())
        now = time.time()
        self._write(jobs.insert().values(job_id=job_id, user_id=user_id, status="queued",
                                         request=json.dumps(request), created_at=now,
                                         updated_at=now))
        return job_id

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs.c.job_id, jobs.c.user_id, jobs.c.status,
                                      jobs.c.result, jobs.c.error)
                               .where(jobs.c.job_id == job_id)).first()
        if row is None:
            return None
        out: dict[str, Any] = {"job_id": row.job_id, "user_id": row.user_id,
                               "status": row.status}
        if row.result is not None:
            out["result"] = json.loads(row.result)
        if row.error is not None:
            out["error"] = row.error
        return out

    def drop_user(self, user_id: str) -> int:
        """Forget a user's jobs, queued ones included (their text is the user's words)."""
        return int(self._write(delete(jobs).where(jobs.c.user_id == user_id)))

    def claim(self) -> Job | None:
        """Mark the oldest runnable job running and return it (None: nothing to do)."""
        # Aliases: the subquery must not correlate with the row being updated.
        queued, busy = jobs.alias("queued"), jobs.alias("busy")
        oldest = select(func.min(queued.c.seq)).where(
            queued.c.status == "queued",
            ~exists().where(and_(busy.c.user_id == queued.c.user_id,
                                 busy.c.status == "running"))).scalar_subquery()
        rows = self._write(update(jobs).where(jobs.c.seq == oldest, jobs.c.status == "queued")
                           .values(status="running", updated_at=time.time())
                           .returning(jobs.c.job_id, jobs.c.user_id, jobs.c.request))
        if not rows:
            return None
        row = rows[0]
        return Job(row.job_id, row.user_id, json.loads(row.request))

    def finish(self, job_id: str, *, result: dict[str, Any] | None = None,
               error: str | None = None) -> bool:
        """Record the outcome; False when the job was dropped meanwhile (user forgotten)."""
        status = "failed" if error is not None else "done"
        count = self._write(update(jobs).where(jobs.c.job_id == job_id,
                                               jobs.c.status == "running")
                            .values(status=status, updated_at=time.time(),
                                    result=None if result is None else json.dumps(result),
                                    error=error))
        return bool(count)

    def requeue_stale(self, lease_s: float) -> int:
        """Jobs left running by a process that died go back to the queue."""
        return int(self._write(update(jobs).where(jobs.c.status == "running",
                                                  jobs.c.updated_at < time.time() - lease_s)
                               .values(status="queued", updated_at=time.time())))

    def purge_finished(self, older_than_s: float) -> int:
        """Delete done and failed jobs older than this: their results quote the user's
        memories, so they are kept only as long as a caller may still poll them."""
        return int(self._write(delete(jobs).where(jobs.c.status.in_(("done", "failed")),
                                                  jobs.c.updated_at < time.time() - older_than_s)))

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(jobs).where(
                jobs.c.status.in_(("queued", "running")))).scalar_one())
