"""Database connections: SQLite tuned for an embedded store, PostgreSQL for shared ones.

Write transactions go through :func:`write_transaction`, which serialises writers the way
each backend needs so that change-log sequence numbers commit in order (the index relies on
it), and retries with backoff when the database says it is busy.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

__all__ = ["create_store_engine", "dispose_quietly", "is_sqlite", "read_transaction",
           "run_write", "sqlite_path"]

# Any constant works: it names the lock that orders change-log appends on PostgreSQL.
_PG_WRITE_LOCK = 7_305_114_001
_RETRIES = 8
T = TypeVar("T")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory / other backends."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).expanduser().resolve()


def create_store_engine(url: str, *, busy_timeout_s: float = 30.0,
                        synchronous: str = "NORMAL", **engine_kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and explicit BEGIN IMMEDIATE."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        engine_kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **engine_kwargs)

    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        # One shared connection, or every checkout would see a different empty database.
        engine_kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
        **engine_kwargs,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so we can say BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if path is not None:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA secure_delete=ON")  # deleted text must not linger in free pages
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.info.pop("lpm_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _is_busy(exc: OperationalError) -> bool:
    message = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return ("locked" in message or "busy" in message or "deadlock" in message
            or "could not serialize" in message)


def run_write(engine: Engine, body: Callable[[Connection], T]) -> T:
    """Run ``body`` in one write transaction with writers serialised, and commit.

    On a busy or deadlocked database the whole transaction is rolled back and run again
    with jittered exponential backoff, so ``body`` must only touch the database.
    """
    delay = 0.01
    for attempt in range(_RETRIES):
        try:
            with engine.connect() as conn:
                if is_sqlite(engine):
                    conn.info["lpm_begin"] = "IMMEDIATE"
                with conn.begin():
                    if not is_sqlite(engine):
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                     {"k": _PG_WRITE_LOCK})
                    return body(conn)
        except OperationalError as exc:
            if not _is_busy(exc) or attempt == _RETRIES - 1:
                raise
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A consistent snapshot for multi-statement reads."""
    with engine.connect() as conn, conn.begin():
        yield conn


def dispose_quietly(engine: Engine) -> None:
    with contextlib.suppress(Exception):  # closing must never raise on shutdown
        engine.dispose()
