"""``MemoryStore``: the public facade over SQL (truth) and users' partitions (derived).

A thin layer: arguments are checked here, the work is done by collaborators it wires
together — :class:`.Embedder` (the model and what it already embedded), :class:`.Writer`
(one transaction per call), :class:`.Partitions` (each user's vectors and keyword
statistics, loaded on demand under a memory budget) and :class:`.Searcher`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

import numpy as np
from langchain_core.embeddings import Embeddings
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.engine import make_url

from ..errors import (
    EmbeddingMismatchError,
    InvalidInputError,
    MemoryNotFoundError,
    PersistentMemoryError,
    StoreClosedError,
)
from ..models import DeleteOp, Memory, MemoryEvent, Operation, ScoredMemory, SupersedeOp, UpdateOp
from ..retrieval.options import SearchOptions
from ..validation import DEFAULT_MAX_CONTENT_CHARS, check_id, check_user_id
from .embedder import Embedder
from .embedding import LocalEmbeddings, embedding_model_name, unit_vector
from .engine import (
    create_store_engine,
    dispose_quietly,
    is_sqlite,
    kept_connection,
    run_write,
    sqlite_path,
)
from .filters import SearchFilters, build_filter_query
from .op_builders import AddOp, as_add_ops, build_op
from .partitions import IndexInfo, Partitions, parse_budget
from .reader import Reader
from .reembed import Progress, reembed
from .rows import MEMORY_COLUMNS, row_to_event, row_to_memory
from .schema import history, memories, migrate, read_meta
from .search import Searcher
from .transfer import Conflict, Source, export_jsonl, import_jsonl
from .writer import Writer
from .writes import Applied, existing_vectors

__all__ = ["DEFAULT_DATABASE_ENV", "MemoryStore", "default_database_url"]

log = logging.getLogger(__name__)
DEFAULT_DATABASE_ENV = "LPM_DATABASE_URL"
P = ParamSpec("P")
T = TypeVar("T")


def default_database_url() -> str:
    """``$LPM_DATABASE_URL``, else a SQLite file in the user's data directory."""
    url = os.environ.get(DEFAULT_DATABASE_ENV)
    if url:
        return url
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('langchain-persistent-memory')) / 'memories.db'}"


def _open_only(method: Callable[P, T]) -> Callable[P, T]:
    """Refuse calls on a closed store, and turn a driver error of a call that ``close()``
    interrupted into :class:`StoreClosedError`."""
    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        store: MemoryStore = args[0]  # type: ignore[assignment]
        if store._closed:
            raise StoreClosedError("this MemoryStore is closed")
        try:
            return method(*args, **kwargs)
        except PersistentMemoryError:
            raise
        except Exception as exc:
            if store._closed:
                raise StoreClosedError("this MemoryStore was closed during the call") from exc
            raise
    return guarded


def _aopen_only(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """:func:`_open_only` for coroutines."""
    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        store: MemoryStore = args[0]  # type: ignore[assignment]
        if store._closed:
            raise StoreClosedError("this MemoryStore is closed")
        try:
            return await method(*args, **kwargs)
        except PersistentMemoryError:
            raise
        except Exception as exc:
            if store._closed:
                raise StoreClosedError("this MemoryStore was closed during the call") from exc
            raise
    return guarded


class MemoryStore:
    """Long-term memories for many users: SQL is the source of truth, partitions derived.

    Args:
        url: SQLAlchemy URL. ``sqlite:///memories.db`` (default: ``$LPM_DATABASE_URL`` or a
            file in the user data dir) or ``postgresql+psycopg://...`` for shared deployments.
        embeddings: any LangChain ``Embeddings``; default: local all-MiniLM-L6-v2.
        index_path: accepted for compatibility; nothing is saved there any more (users'
            partitions are rebuilt from SQL on demand).
        max_content_chars: longest memory text accepted.
        dedupe: adding text identical to a current memory of the same user returns it.
        check_embedding_model: raise if the database was built with another model (turn
            off only to call :meth:`reembed`).
        memory_budget: bytes of users' partitions one process keeps loaded (least recently
            searched go first): an int or a size like ``"512MB"``; default
            ``$LPM_MEMORY_BUDGET`` or 1 GiB.
        autosave_every: accepted for compatibility; unused.
        clock: source of "now", for tests and imports.
        engine_kwargs: passed to ``sqlalchemy.create_engine``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        embeddings: Embeddings | None = None,
        index_path: str | Path | None = None,
        max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS,
        dedupe: bool = True,
        check_embedding_model: bool = True,
        memory_budget: int | str | None = None,
        autosave_every: int = 10_000,
        clock: Callable[[], datetime] | None = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.url = url or default_database_url()
        embeddings = embeddings if embeddings is not None else LocalEmbeddings()
        self.max_content_chars = max_content_chars
        self.dedupe = dedupe
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(timezone.utc))
        self._index_path = None if index_path is None else Path(index_path)
        self._closed = False
        self.engine: Engine = create_store_engine(self.url, **(engine_kwargs or {}))
        self._writes = kept_connection(self.engine)
        try:
            stored = run_write(self.engine, _migrate_and_read_meta)
            stored_model = stored.get("embedding_model")
            model = embedding_model_name(embeddings)
            if check_embedding_model and stored_model and stored_model != model:
                raise EmbeddingMismatchError(
                    f"this store's vectors were made by {stored_model!r}, but the embeddings "
                    f"given are {model!r}. Open it with the original model, or "
                    "migrate: MemoryStore(url, embeddings=new, "
                    "check_embedding_model=False).reembed()",
                    stored=stored_model, given=model,
                )
            dim = int(stored["embedding_dim"]) if "embedding_dim" in stored else None
            self._reader = Reader(self.engine)
            self.partitions = Partitions(self._reader, parse_budget(memory_budget))
            self.embedder = Embedder(embeddings, dim, self.partitions, self._stored_vectors)
            self.writer = Writer(self.engine, self.embedder, self.partitions,
                                 connection=self._connection, clock=self.clock,
                                 dedupe=dedupe, max_chars=max_content_chars)
            self._searcher = Searcher(self.engine, self._reader, self.partitions,
                                      self.embedder, check_model=check_embedding_model)
        except BaseException:
            self._close_connections()
            raise

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release connections and loaded partitions. Safe to call twice; a call still
        running raises :class:`StoreClosedError`."""
        if self._closed:
            return
        self._closed = True
        self._close_connections()

    def _close_connections(self) -> None:
        if getattr(self, "_reader", None) is not None:
            self._reader.close()
        if getattr(self, "partitions", None) is not None:
            self.partitions.clear()
        if self._writes is not None:
            self._writes.close()
        dispose_quietly(self.engine)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        safe = make_url(self.url).render_as_string(hide_password=True)
        return f"MemoryStore({safe!r}, model={self.model_name!r})"

    @property
    def embeddings(self) -> Embeddings:
        return self.embedder.embeddings

    @embeddings.setter
    def embeddings(self, value: Embeddings) -> None:
        self.embedder.embeddings = value

    @property
    def model_name(self) -> str:
        return self.embedder.model_name

    @property
    def dim(self) -> int | None:
        """The vectors' dimension (None until the first vector is stored)."""
        return self.embedder.dim

    @property
    def index_path(self) -> Path | None:
        return self._index_path

    def _connection(self) -> AbstractContextManager[Connection]:
        """The connection for this store's writes: the kept one on SQLite files."""
        return self._writes.hold() if self._writes is not None else self.engine.connect()

    def _stored_vectors(self, user_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """On SQLite through the writes' connection, whose page cache survived the last
        commit (its own); on PostgreSQL one prepared autocommit statement."""
        if self._writes is None:
            return self._reader.vectors_by_hash(user_id, hashes)
        with self._writes.hold() as conn:
            return existing_vectors(conn, user_id, hashes)

    def embed_query(self, query: str) -> np.ndarray:
        """The normalised query vector (cached): shared by search and the pipeline."""
        return self.embedder.query(query)

    async def aembed_query(self, query: str) -> np.ndarray:
        return await self.embedder.aquery(query)

    # ------------------------------------------------------------------ writes
    @_open_only
    def apply(self, ops: Sequence[Operation], *, user_id: str | None) -> list[Applied]:
        """Apply several operations atomically: all commit in one transaction or none do.

        ``user_id`` scopes every operation: an id belonging to another user raises
        :class:`MemoryNotFoundError` and nothing is written. ``None`` is the admin scope
        (edit by id, any user); adds always need a user.
        """
        return self.writer.apply(ops, user_id)

    @_aopen_only
    async def aapply(self, ops: Sequence[Operation], *, user_id: str | None) -> list[Applied]:
        return await self.writer.aapply(ops, user_id)

    def add(self, content: str, *, user_id: str, agent_id: str | None = None,
            session_id: str | None = None, category: str | None = None,
            importance: float = 0.5, metadata: dict[str, Any] | None = None,
            valid_from: datetime | None = None) -> Memory:
        """Remember one fact for a user and return it (the existing one if identical).

        Raises:
            InvalidInputError: blank/non-string/oversized content, bad user id, importance
                outside [0, 1], metadata that is not a JSON object.
        """
        op = build_op(AddOp, content=content, category=category, importance=importance,
                      metadata=metadata, agent_id=agent_id, session_id=session_id,
                      valid_from=valid_from)
        return self.apply([op], user_id=user_id)[0].memory

    async def aadd(self, content: str, *, user_id: str, agent_id: str | None = None,
                   session_id: str | None = None, category: str | None = None,
                   importance: float = 0.5, metadata: dict[str, Any] | None = None,
                   valid_from: datetime | None = None) -> Memory:
        op = build_op(AddOp, content=content, category=category, importance=importance,
                      metadata=metadata, agent_id=agent_id, session_id=session_id,
                      valid_from=valid_from)
        return (await self.aapply([op], user_id=user_id))[0].memory

    def add_many(self, items: Sequence[str | dict[str, Any] | AddOp], *,
                 user_id: str) -> list[Memory]:
        """Add many memories with one embedding call and one transaction.

        Items are strings or dicts with the keyword arguments of :meth:`add`
        (``content``, ``category``, ``importance``, ``metadata``, ``embedding`` …).
        """
        return [a.memory for a in self.apply(as_add_ops(items), user_id=user_id)]

    async def aadd_many(self, items: Sequence[str | dict[str, Any] | AddOp], *,
                        user_id: str) -> list[Memory]:
        return [a.memory for a in await self.aapply(as_add_ops(items), user_id=user_id)]

    def update(self, memory_id: str, *, content: str | None = None,
               category: str | None = None, importance: float | None = None,
               metadata: dict[str, Any] | None = None, user_id: str | None = None) -> Memory:
        """Change a memory in place (same fact, refined). History keeps the old text."""
        op = build_op(UpdateOp, memory_id=memory_id, content=content, category=category,
                      importance=importance, metadata=metadata)
        return self.apply([op], user_id=user_id)[0].memory

    async def aupdate(self, memory_id: str, *, content: str | None = None,
                      category: str | None = None, importance: float | None = None,
                      metadata: dict[str, Any] | None = None,
                      user_id: str | None = None) -> Memory:
        op = build_op(UpdateOp, memory_id=memory_id, content=content, category=category,
                      importance=importance, metadata=metadata)
        return (await self.aapply([op], user_id=user_id))[0].memory

    def supersede(self, memory_id: str, content: str, *, user_id: str | None = None,
                  category: str | None = None, importance: float | None = None,
                  metadata: dict[str, Any] | None = None,
                  valid_from: datetime | None = None) -> Memory:
        """Record that a fact stopped being true: the old row keeps ``valid_to``; returns
        the new memory."""
        op = build_op(SupersedeOp, memory_id=memory_id, content=content, category=category,
                      importance=importance, metadata=metadata, valid_from=valid_from)
        return self.apply([op], user_id=user_id)[0].memory

    async def asupersede(self, memory_id: str, content: str, *, user_id: str | None = None,
                         category: str | None = None, importance: float | None = None,
                         metadata: dict[str, Any] | None = None,
                         valid_from: datetime | None = None) -> Memory:
        op = build_op(SupersedeOp, memory_id=memory_id, content=content, category=category,
                      importance=importance, metadata=metadata, valid_from=valid_from)
        return (await self.aapply([op], user_id=user_id))[0].memory

    def delete(self, memory_id: str, *, user_id: str | None = None,
               reason: str | None = None) -> Memory:
        """Remove a memory from SQL and the index at once; returns what was deleted."""
        return self.apply([build_op(DeleteOp, memory_id=memory_id, reason=reason)],
                          user_id=user_id)[0].memory

    async def adelete(self, memory_id: str, *, user_id: str | None = None,
                      reason: str | None = None) -> Memory:
        return (await self.aapply([build_op(DeleteOp, memory_id=memory_id, reason=reason)],
                                  user_id=user_id))[0].memory

    @_open_only
    def forget_user(self, user_id: str) -> int:
        """Erase a user completely: memories, history, vectors; returns memories removed."""
        count = self.writer.forget_user(user_id)
        if is_sqlite(self.engine) and sqlite_path(self.url) is not None:
            self._truncate_wal()
        return count

    async def aforget_user(self, user_id: str) -> int:
        return await asyncio.to_thread(self.forget_user, user_id)

    def _truncate_wal(self, attempts: int = 100) -> None:
        """Checkpoint and empty the WAL, whose old frames may still hold the erased text.

        A checkpoint reports busy (instead of waiting) while another one runs, e.g. the
        background checkpointer or another process's: try again until it went through.
        """
        for _ in range(attempts):
            with self.engine.connect() as conn:
                busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
            if not busy:
                return
            time.sleep(0.05)
        log.warning("could not empty the SQLite WAL after forget_user: another connection "
                    "kept it busy; erased text stays in it until the next checkpoint")

    # ------------------------------------------------------------------ reads
    @_open_only
    def get(self, memory_id: str, *, user_id: str | None = None,
            with_embedding: bool = False) -> Memory:
        """One memory by id (scoped to ``user_id`` when given).

        Raises:
            MemoryNotFoundError: no such id, or it belongs to another user.
        """
        memory_id = check_id(memory_id, "memory_id")
        cols = list(memories.c) if with_embedding else MEMORY_COLUMNS
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(memories.c.id == memory_id)).first()
        if row is None or (user_id is not None and row.user_id != user_id):
            raise MemoryNotFoundError(memory_id, user_id=user_id)
        return row_to_memory(row, with_embedding=with_embedding)

    async def aget(self, memory_id: str, **kwargs: Any) -> Memory:
        return await asyncio.to_thread(lambda: self.get(memory_id, **kwargs))

    @_open_only
    def history(self, memory_id: str, *, user_id: str | None = None) -> list[MemoryEvent]:
        """Every event of a memory, oldest first (kept after delete, erased by forget_user)."""
        memory_id = check_id(memory_id, "memory_id")
        with self.engine.connect() as conn:
            rows = conn.execute(select(history).where(history.c.memory_id == memory_id)
                                .order_by(history.c.id)).all()
        if not rows or (user_id is not None and rows[0].user_id != user_id):
            raise MemoryNotFoundError(memory_id, user_id=user_id)
        return [row_to_event(r) for r in rows]

    async def ahistory(self, memory_id: str, *, user_id: str | None = None) -> list[MemoryEvent]:
        return await asyncio.to_thread(self.history, memory_id, user_id=user_id)

    @_open_only
    def list(self, user_id: str, *, include_superseded: bool = False, limit: int | None = None,
             offset: int = 0, **filters: Any) -> list[Memory]:
        """A user's memories, newest first; same filters as :meth:`search`."""
        query = build_filter_query(check_user_id(user_id), SearchFilters.of(
            include_superseded=include_superseded, **filters), columns=MEMORY_COLUMNS)
        query = query.order_by(memories.c.created_at.desc(), memories.c.pk.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [row_to_memory(r) for r in conn.execute(query)]

    async def alist(self, user_id: str, **kwargs: Any) -> list[Memory]:
        return await asyncio.to_thread(lambda: self.list(user_id, **kwargs))

    @_open_only
    def count(self, user_id: str | None = None, *, include_superseded: bool = False) -> int:
        """Number of memories of one user, or of everyone."""
        query = select(func.count()).select_from(memories)
        if user_id is not None:
            query = query.where(memories.c.user_id == check_user_id(user_id))
        if not include_superseded:
            query = query.where(memories.c.valid_to.is_(None))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    async def acount(self, user_id: str | None = None, *,
                     include_superseded: bool = False) -> int:
        return await asyncio.to_thread(self.count, user_id,
                                       include_superseded=include_superseded)

    @_open_only
    def users(self) -> list[str]:
        """Every user id that has at least one memory."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(memories.c.user_id).distinct()
                                .order_by(memories.c.user_id))
            return [r[0] for r in rows]

    # ------------------------------------------------------------------ search
    @_open_only
    def search(self, query: str, *, user_id: str, k: int = 5,
               include_superseded: bool = False, min_score: float | None = None,
               **filters: Any) -> list[ScoredMemory]:
        """The user's ``k`` most relevant memories for ``query``, best first.

        Filters: ``category`` (str or list), ``agent_id``, ``session_id``, ``metadata``
        (equality on each key), ``since`` / ``until`` (on ``valid_from``),
        ``include_superseded``. Only ``user_id``'s memories are ever read.

        Ranking options (:class:`~langchain_persistent_memory.retrieval.SearchOptions`):
        ``mode`` ("hybrid" default, "dense", "keyword"), ``fusion``, ``dense_weight``,
        ``candidates``, ``recency_half_life_days``, ``recency_weight``,
        ``importance_weight``, ``context_weight``, ``answer_weight``, ``question_discount``,
        ``date_boost``, ``mmr``, ``mmr_lambda``, ``dedupe_threshold``.
        ``min_score`` is a floor on cosine similarity in every mode. Each hit carries the
        ranking ``score`` and, to threshold on, its ``cosine`` and ``keyword_match``.
        """
        options, filters = SearchOptions.split(filters)
        user_id, k, parsed = _search_args(query, user_id, k, include_superseded, filters)
        return self._searcher.search(query, self.embed_query(query), user_id, k, parsed,
                                     min_score, options, self.clock())

    @_aopen_only
    async def asearch(self, query: str, *, user_id: str, k: int = 5,
                      include_superseded: bool = False, min_score: float | None = None,
                      **filters: Any) -> list[ScoredMemory]:
        options, filters = SearchOptions.split(filters)
        user_id, k, parsed = _search_args(query, user_id, k, include_superseded, filters)
        vector = await self.aembed_query(query)
        return await asyncio.to_thread(self._searcher.search, query, vector, user_id, k, parsed,
                                       min_score, options, self.clock())

    @_open_only
    def search_by_vector(self, vector: Sequence[float] | np.ndarray, *, user_id: str,
                         k: int = 5, include_superseded: bool = False,
                         min_score: float | None = None, **filters: Any) -> list[ScoredMemory]:
        """Like :meth:`search` with a precomputed query embedding (cosine order)."""
        user_id, k, parsed = _search_args("-", user_id, k, include_superseded, filters)
        return self._searcher.by_vector(unit_vector(vector), user_id, k, parsed, min_score)

    # ------------------------------------------------------------------ maintenance
    @_open_only
    def index_info(self, user_id: str | None = None) -> IndexInfo:
        """What this process holds in memory: users loaded, their vectors, bytes, budget
        (only ``user_id``'s partition if given; a user is loaded by their first search)."""
        return self.partitions.info(user_id)

    @_open_only
    def rebuild_index(self) -> int:
        """Drop every loaded partition (each reloads from SQL on its user's next search);
        returns the vectors stored in SQL. No model calls."""
        self.partitions.clear()
        return self.count(include_superseded=True)

    def save_index(self) -> bool:
        """Nothing to save: partitions are rebuilt from SQL on demand. Returns False."""
        return False

    @_open_only
    def stats(self) -> dict[str, Any]:
        """Counts and configuration, for the CLI and the UI."""
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(memories)).scalar_one()
            current = conn.execute(select(func.count()).select_from(memories)
                                   .where(memories.c.valid_to.is_(None))).scalar_one()
            users = conn.execute(select(func.count(memories.c.user_id.distinct()))).scalar_one()
            events = conn.execute(select(func.count()).select_from(history)).scalar_one()
        info = self.partitions.info()
        return {
            "database": make_url(self.url).render_as_string(hide_password=True),
            "embedding_model": self.model_name, "dimension": self.dim,
            "memories": int(current), "superseded": int(total - current),
            "users": int(users), "history_events": int(events),
            "users_loaded": info.users_loaded, "indexed_vectors": info.vectors,
            "index_bytes": info.bytes, "memory_budget": info.budget,
            "index_path": str(self._index_path) if self._index_path else None,
        }

    # ------------------------------------------------------------------ backup and migration
    @_open_only
    def export_jsonl(self, dest: str | os.PathLike[str] | IO[str], *,
                     user_id: str | None = None) -> int:
        """Back up one user's (or all) memories, embeddings and history as JSON Lines.

        Returns the number of memories written. The format is described in
        :mod:`langchain_persistent_memory.store.transfer`.
        """
        return export_jsonl(self.engine, self.clock, dest, user_id=user_id)

    async def aexport_jsonl(self, dest: str | os.PathLike[str] | IO[str], *,
                            user_id: str | None = None) -> int:
        return await asyncio.to_thread(self.export_jsonl, dest, user_id=user_id)

    @_open_only
    def import_jsonl(self, src: Source, *, user_id: str | None = None,
                     on_conflict: Conflict = "error") -> int:
        """Restore an export without calling the embedding model; returns memories imported.

        The whole file is checked first, so a bad line leaves the store untouched.
        ``on_conflict="skip"`` ignores ids that already exist instead of refusing the file.

        Raises:
            InvalidInputError: a bad or truncated file, or ids that already exist.
            EmbeddingMismatchError: the file's vectors come from another model.
        """
        return import_jsonl(self.writer, src, user_id=user_id, on_conflict=on_conflict)

    async def aimport_jsonl(self, src: Source, *, user_id: str | None = None,
                            on_conflict: Conflict = "error") -> int:
        return await asyncio.to_thread(self.import_jsonl, src, user_id=user_id,
                                       on_conflict=on_conflict)

    @_open_only
    def reembed(self, embeddings: Embeddings | None = None, *, batch_size: int = 256,
                progress: Progress | None = None) -> int:
        """Move every vector to a new embedding model; returns the memories re-embedded.

        Open the store with the new model and ``check_embedding_model=False`` (or pass
        ``embeddings``). Each distinct text is embedded once; stop other processes first.
        ``progress(done, total)`` is called after each batch of distinct texts.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError("batch_size must be a positive integer", field="batch_size")
        if embeddings is not None:
            self.embedder.use(embeddings)
        updated, dim = reembed(self.engine, self.embedder, batch_size=batch_size,
                               progress=progress)
        self.embedder.dim = dim
        self.embedder.forget()  # cached vectors came from the old model
        self.writer.model_recorded = False  # an emptied store records the next model
        self.partitions.clear()
        return updated

    async def areembed(self, embeddings: Embeddings | None = None, *, batch_size: int = 256,
                       progress: Progress | None = None) -> int:
        return await asyncio.to_thread(self.reembed, embeddings, batch_size=batch_size,
                                       progress=progress)


def _migrate_and_read_meta(conn: Connection) -> dict[str, str]:
    migrate(conn)
    return read_meta(conn)


def _search_args(query: Any, user_id: Any, k: Any, include_superseded: bool,
                 filters: dict[str, Any]) -> tuple[str, int, SearchFilters]:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("query must be a non-empty string", field="query")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 10_000:
        raise InvalidInputError("k must be an integer from 1 to 10000", field="k")
    parsed = SearchFilters.of(include_superseded=include_superseded, **filters) \
        if filters else SearchFilters.plain(include_superseded)
    return check_user_id(user_id), k, parsed
