"""Database connections: SQLite tuned for an embedded store, PostgreSQL for shared ones.

Write transactions go through :func:`run_write`, which retries with backoff when the
database says it is busy. SQLite serialises writers itself (``BEGIN IMMEDIATE``); on
PostgreSQL a write locks only the rows it touches, its user's version row first (see
``writes``), so writes of different users never wait on each other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

__all__ = [
    "DEFAULT_DATABASE_ENV",
    "AutocommitConnections",
    "KeptConnection",
    "autocommit_connections",
    "create_store_engine",
    "default_database_url",
    "dispose_quietly",
    "driver_fetchone",
    "is_sqlite",
    "kept_connection",
    "read_transaction",
    "run_write",
    "sqlite_path",
    "truncate_wal",
]

log = logging.getLogger(__name__)
DEFAULT_DATABASE_ENV = "LPM_DATABASE_URL"
_RETRIES = 8
T = TypeVar("T")


def default_database_url() -> str:
    """``$LPM_DATABASE_URL``, else a SQLite file in the user's data directory."""
    url = os.environ.get(DEFAULT_DATABASE_ENV)
    if url:
        return url
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('langchain-persistent-memory')) / 'memories.db'}"


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
        # No pre-ping: it costs a round trip per checkout, several per search. Connections
        # are recycled instead; after a server restart the first call on a dead connection
        # fails (a write never half-applies) and the pool replaces it.
        engine_kwargs.setdefault("pool_recycle", 1800)
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
    checkpointer = _WalCheckpointer(path, busy_timeout_s) if path is not None else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so we can say BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if path is not None:
            cur.execute("PRAGMA journal_mode=WAL")
            # Checkpoints run in the background (below); this is only the safety net.
            cur.execute(f"PRAGMA wal_autocheckpoint={_WAL_FALLBACK_PAGES}")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA secure_delete=ON")  # deleted text must not linger in free pages
        # 64 MB page cache (default 2 MB): inserts land in random places of the id, hash and
        # keyword indexes, which at 100k+ memories otherwise re-read pages on every batch.
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.info.pop("lpm_begin", "DEFERRED")
        # On the driver's connection: SQLAlchemy's statement machinery cost a single add
        # more than SQLite's own BEGIN. Its errors (busy) are wrapped as SQLAlchemy would,
        # so run_write still retries them.
        try:
            conn.connection.driver_connection.execute(f"BEGIN {mode}")  # type: ignore[union-attr]
        except sqlite3.OperationalError as exc:
            raise OperationalError(f"BEGIN {mode}", None, exc) from exc

    if checkpointer is not None:
        event.listen(engine, "commit", lambda _conn: checkpointer.poke())
        event.listen(engine, "engine_disposed", lambda _engine: checkpointer.stop())

    return engine


_WAL_FALLBACK_PAGES = 20_000  # ~80 MB: only reached if the background thread falls behind


class _WalCheckpointer:
    """Copies the WAL into the database file from a background thread.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1000 WAL pages and
    fsyncs the database there: one commit in ~25 stalled for tens of milliseconds. A
    PASSIVE checkpoint here never blocks readers or writers, and durability is unchanged
    (a commit is in the WAL before it returns; the checkpoint only moves it).
    """

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self._path, self._timeout = path, busy_timeout_s
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stopped.is_set():
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="lpm-wal-checkpoint")
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self._path), timeout=self._timeout,
                                   check_same_thread=False, isolation_level=None)
        except sqlite3.Error:  # the file went away: SQLite's fallback checkpoint remains
            return
        try:
            while not self._stopped.is_set():
                self._wake.wait()
                self._wake.clear()
                if self._stopped.is_set():
                    break
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self._stopped.wait(0.2)  # at most a few checkpoints a second
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


def _is_busy(exc: OperationalError) -> bool:
    message = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return ("locked" in message or "busy" in message or "deadlock" in message
            or "could not serialize" in message)


def run_write(engine: Engine, body: Callable[[Connection], T], *,
              connection: Callable[[], AbstractContextManager[Connection]] | None = None,
              autocommit: AutocommitConnections | None = None) -> T:
    """Run ``body`` in one write transaction, and commit.

    On a busy or deadlocked database the whole transaction is rolled back and run again
    with jittered exponential backoff, so ``body`` must only touch the database.
    ``connection`` supplies the connection (e.g. :meth:`KeptConnection.hold`); default: a
    pooled one. ``autocommit`` (PostgreSQL): ``body`` writes with a single statement, run
    on one of these autocommit connections as its own transaction (no BEGIN and COMMIT
    round trips). If the server had closed that connection, the statement runs once more
    on a new one: it is atomic, so if the first run did apply, the second finds nothing
    to do and says so, as it would after a concurrent write.
    """
    delay = 0.01
    reconnected = False
    for attempt in range(_RETRIES):
        try:
            with (autocommit.hold if autocommit is not None
                  else connection or engine.connect)() as conn:
                if is_sqlite(engine):
                    conn.info["lpm_begin"] = "IMMEDIATE"
                with conn.begin():
                    return body(conn)
        except DBAPIError as exc:
            if autocommit is not None and exc.connection_invalidated and not reconnected:
                reconnected = True
                continue
            if not isinstance(exc, OperationalError) or not _is_busy(exc) \
                    or attempt == _RETRIES - 1:
                raise
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")  # pragma: no cover


def driver_fetchone(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    """Run ``sql`` (the driver's parameter style) on ``conn``'s driver connection and
    return its first row: a hot statement without SQLAlchemy's execution machinery,
    which costs about as much as the statement's server time. Driver errors are raised
    as SQLAlchemy raises them, a lost connection invalidated, so :func:`run_write`
    retries and reconnects alike."""
    driver: Any = conn.connection.driver_connection
    try:
        cur = driver.cursor()
        try:
            return cur.execute(sql, params).fetchone()
        finally:
            cur.close()
    except conn.dialect.loaded_dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error,
                                  connection_invalidated=lost,
                                  dialect=conn.dialect) from exc


class AutocommitConnections:
    """Connections kept in autocommit mode for one-statement writes (PostgreSQL).

    A pooled connection switched to autocommit for one statement is switched back and
    reset when it returns to the pool; these stay in autocommit, so a single delete costs
    its statement's one round trip (prepared by psycopg after a few runs). Thread-safe:
    each call takes an idle connection or opens one, and at most ``keep`` idle ones are
    kept (the rest go back to the pool). A connection the server closed is dropped.
    """

    def __init__(self, engine: Engine, keep: int = 2) -> None:
        self._engine = engine
        self._keep = keep
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def hold(self) -> Iterator[Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            driver: Any = conn.connection.driver_connection
            if hasattr(driver, "prepare_threshold"):  # psycopg: prepared from the 2nd run
                driver.prepare_threshold = 1
        try:
            yield conn
        finally:
            with self._lock:
                kept = (not self._closed and len(self._idle) < self._keep
                        and not conn.closed and not conn.invalidated)
                if kept:
                    self._idle.append(conn)
            if not kept:
                with contextlib.suppress(Exception):  # closing must never raise
                    conn.close()

    def close(self) -> None:
        """Close the idle connections; one still in use closes when its call ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):  # closing must never raise
                conn.close()


def autocommit_connections(engine: Engine) -> AutocommitConnections | None:
    """Kept autocommit connections for PostgreSQL; None for SQLite (its writers take the
    database lock with BEGIN IMMEDIATE, there is no one-statement write path)."""
    return None if is_sqlite(engine) else AutocommitConnections(engine)


class KeptConnection:
    """One connection kept open for a store's own writes and the lookups just before them.

    Checking a connection out of the pool and back in cost a single add as much as its
    BEGIN and COMMIT; and the connection that made the last commit still has a warm page
    cache (another connection's commit empties it). One thread at a time: the lock
    serialises this process's writers, which the database lock does anyway.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[Connection]:
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed or conn.invalidated:
                if conn is not None:
                    conn.close()
                conn = self._conn = self._engine.connect()
            yield conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):  # closing must never raise
                    self._conn.close()
                self._conn = None


def kept_connection(engine: Engine) -> KeptConnection | None:
    """A kept connection for SQLite files; None for in-memory SQLite (its one shared
    connection is the pool's) and other backends, which keep the pool."""
    return KeptConnection(engine) if _is_sqlite_file(engine) else None


def _is_sqlite_file(engine: Engine) -> bool:
    return is_sqlite(engine) and engine.url.database not in (None, "", ":memory:") \
        and not str(engine.url.database).startswith("file::memory:")


def truncate_wal(engine: Engine, *, wait_s: float = 2.0, busy_ms: int = 50) -> int:
    """Checkpoint and empty the WAL, whose old frames may still hold erased text; return
    the frames left in it (0: emptied).

    A TRUNCATE checkpoint waits for readers while holding the write lock, so each attempt
    waits ``busy_ms`` at most (not the engine's busy timeout): other users' writes run
    between attempts instead of stalling for the reader's duration. After ``wait_s`` it
    gives up and the caller reports what is left.
    """
    deadline = time.monotonic() + wait_s
    while True:
        with engine.connect() as conn:
            kept = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
            conn.exec_driver_sql(f"PRAGMA busy_timeout={busy_ms}")
            try:
                busy, frames, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={kept}")
        if not busy:
            return 0
        if time.monotonic() >= deadline:
            return max(int(frames), 1)
        time.sleep(0.05)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A consistent snapshot for multi-statement reads."""
    with engine.connect() as conn, conn.begin():
        yield conn


def dispose_quietly(engine: Engine) -> None:
    with contextlib.suppress(Exception):  # closing must never raise on shutdown
        engine.dispose()
