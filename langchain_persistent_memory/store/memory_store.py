"""``MemoryStore``: the public facade over SQL (truth) and the FAISS replica (derived).

Every write is validated first, embedded outside the transaction, committed in one SQL
transaction with its history and change-log rows, and only then applied to the index.
Async twins share the same steps: the embedding call uses the model's own async method and
the SQL work runs in a worker thread, so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.engine import make_url

from ..errors import EmbeddingMismatchError, InvalidInputError, MemoryNotFoundError
from ..models import (
    AddOp,
    DeleteOp,
    Memory,
    MemoryEvent,
    Operation,
    ScoredMemory,
    SupersedeOp,
    UpdateOp,
)
from ..retrieval.hybrid import ranked_search
from ..retrieval.options import SearchOptions
from ..validation import (
    DEFAULT_MAX_CONTENT_CHARS,
    check_embeddings,
    check_id,
    check_limit,
    check_min_score,
    check_offset,
    check_query_vector,
    check_user_id,
)
from .embedding import LocalEmbeddings, embedding_model_name, normalize_rows, unit_vector
from .engine import (
    create_store_engine,
    dispose_quietly,
    is_sqlite,
    kept_connection,
    run_write,
    sqlite_path,
)
from .filters import SearchFilters, build_filter_query
from .reembed import Progress, reembed
from .rows import (
    MEMORY_COLUMNS,
    row_to_event,
    row_to_memory,
    select_by_pks_sql,
    sqlite_rows_to_memories,
)
from .schema import history, memories, migrate, read_meta, write_meta
from .sync import IndexSync
from .transfer import Conflict, Source, export_jsonl, import_jsonl
from .vector_cache import VectorCache
from .writes import Applied, PreparedOp, execute_ops, existing_vectors, prepare_ops, purge_user

__all__ = ["DEFAULT_DATABASE_ENV", "MemoryStore", "default_database_url"]

log = logging.getLogger(__name__)
DEFAULT_DATABASE_ENV = "LPM_DATABASE_URL"
_QUERY_CACHE = 1024
_VECTOR_CACHE = 4096  # recent memory vectors by content hash (~6 MB at 384 dimensions)
# ScoredMemory((memory, score)) without the named tuple's Python-level __new__ (per hit).
_scored = functools.partial(tuple.__new__, ScoredMemory)


def default_database_url() -> str:
    """``$LPM_DATABASE_URL``, else a SQLite file in the user's data directory."""
    url = os.environ.get(DEFAULT_DATABASE_ENV)
    if url:
        return url
    from platformdirs import user_data_dir

    return f"sqlite:///{Path(user_data_dir('langchain-persistent-memory')) / 'memories.db'}"


def _default_index_path(url: str) -> Path | None:
    db_file = sqlite_path(url)
    if db_file is not None:
        return db_file.with_name(db_file.name + ".index")
    if make_url(url).drivername.startswith("sqlite"):
        return None  # in-memory database: nothing to persist next to
    from platformdirs import user_cache_dir

    safe = make_url(url).render_as_string(hide_password=True)
    digest = hashlib.sha256(safe.encode()).hexdigest()[:16]
    return Path(user_cache_dir("langchain-persistent-memory")) / f"index-{digest}.lpm"


class MemoryStore:
    """Long-term memories for many users: SQL is the source of truth, FAISS the index.

    Args:
        url: SQLAlchemy URL. ``sqlite:///memories.db`` (default: ``$LPM_DATABASE_URL`` or a
            file in the user data dir) or ``postgresql+psycopg://...`` for shared deployments.
        embeddings: any LangChain ``Embeddings``; default: local all-MiniLM-L6-v2.
        index_path: where the FAISS replica is saved; default next to a SQLite file, or in
            the user cache dir for PostgreSQL. ``None`` for an in-memory database.
        max_content_chars: longest memory text accepted.
        dedupe: adding text identical to a current memory of the same user returns it.
        check_embedding_model: raise if the database was built with another model (turn
            off only to call :meth:`reembed`).
        autosave_every: save the index after this many unsaved changes, or half the
            index's size if that is more (and on close).
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
        autosave_every: int = 10_000,
        clock: Callable[[], datetime] | None = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.url = url or default_database_url()
        self.embeddings: Embeddings = embeddings if embeddings is not None else LocalEmbeddings()
        self.model_name = embedding_model_name(self.embeddings)
        self.max_content_chars = max_content_chars
        self.dedupe = dedupe
        self._check_model = check_embedding_model
        self.autosave_every = autosave_every
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._query_cache = VectorCache(_QUERY_CACHE)  # by query text
        self._vector_cache = VectorCache(_VECTOR_CACHE)  # by content hash
        self._closed = False
        self._model_recorded = False
        self.engine: Engine = create_store_engine(self.url, **(engine_kwargs or {}))
        self._writes = kept_connection(self.engine)
        try:
            stored = run_write(self.engine, self._migrate_and_read_meta)
            stored_model = stored.get("embedding_model")
            if check_embedding_model and stored_model and stored_model != self.model_name:
                raise EmbeddingMismatchError(
                    f"this store's vectors were made by {stored_model!r}, but the embeddings "
                    f"given are {self.model_name!r}. Open it with the original model, or "
                    "migrate: MemoryStore(url, embeddings=new, "
                    "check_embedding_model=False).reembed()",
                    stored=stored_model, given=self.model_name,
                )
            self.dim: int | None = int(stored["embedding_dim"]) if "embedding_dim" in stored \
                else None
            path = Path(index_path) if index_path is not None else _default_index_path(self.url)
            self._sync = IndexSync(self.engine, path=path, model=stored_model or self.model_name)
            self._sync.open(self.dim)
        except BaseException:
            if hasattr(self, "_sync"):
                self._sync.close()
            self._close_connections()
            raise

    @staticmethod
    def _migrate_and_read_meta(conn: Any) -> dict[str, str]:
        migrate(conn)
        return read_meta(conn)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Save the index and release connections. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sync.catch_up()
            self._sync.save()
        finally:
            self._sync.close()
            self._close_connections()

    def _close_connections(self) -> None:
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
    def index_path(self) -> Path | None:
        return self._sync.path

    # ------------------------------------------------------------------ embedding
    def _texts_to_embed(self, prepared: list[PreparedOp], user_id: str | None
                        ) -> tuple[dict[str, str], dict[str, np.ndarray]]:
        """Texts (by digest) with no vector yet, and the known vectors of the others.

        Returned, not kept on ``self``: concurrent calls (async twins, threads) must not
        see each other's.
        """
        wanted: dict[str, str] = {}
        for op in prepared:
            if op.digest is not None and op.text is not None and op.vector is None:
                wanted.setdefault(op.digest, op.text)
        if not wanted:
            return {}, {}
        known = self._known_vectors(user_id, wanted)
        return {h: text for h, text in wanted.items() if h not in known}, known

    def _known_vectors(self, user_id: str | None,
                       wanted: dict[str, str]) -> dict[str, np.ndarray]:
        """Stored vectors for these texts: identical text is not embedded twice.

        Found among the vectors this process embedded or read recently, then among the
        user's current memories (``None``, the admin scope: the recent ones only).
        """
        known = self._vector_cache.get_many(wanted)
        rest = [h for h in wanted if h not in known]
        if rest and user_id is not None:
            # The writes' connection, not the search reader: its page cache survived the
            # last commit (its own), the reader's did not.
            with self._connection() as conn:
                known.update(existing_vectors(conn, user_id, rest))
        return known

    def _vector_map(self, prepared: list[PreparedOp], missing: dict[str, str],
                    raw: Sequence[Sequence[float]],
                    known: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = dict(known)
        if missing:
            matrix = normalize_rows(check_embeddings(raw, len(missing)))
            if matrix.shape[0] != len(missing):
                raise EmbeddingMismatchError(
                    f"the model returned {matrix.shape[0]} vectors for {len(missing)} texts")
            self._check_dim(matrix.shape[1])
            vectors.update(zip(missing, matrix))
        for op in prepared:
            if op.vector is not None:
                self._check_dim(op.vector.shape[0])
                op.vector = normalize_rows(op.vector)[0]
        return vectors

    def _check_dim(self, dim: int) -> None:
        if self.dim is None:
            self.dim = dim
        elif dim != self.dim:
            raise EmbeddingMismatchError(
                f"embedding has {dim} dimensions; this store holds {self.dim}-dimensional vectors",
                stored=str(self.dim), given=str(dim),
            )

    def _remember_query(self, query: str, raw: Sequence[float]) -> np.ndarray:
        vec = unit_vector(check_embeddings([raw], 1, allow_zero=True)[0])
        self._query_cache.put_many([(query, vec)])
        return vec

    def embed_query(self, query: str) -> np.ndarray:
        """The normalised query vector (cached): shared by search and the pipeline."""
        vec = self._query_cache.get(query)
        return vec if vec is not None else self._remember_query(
            query, self.embeddings.embed_query(query))

    async def aembed_query(self, query: str) -> np.ndarray:
        vec = self._query_cache.get(query)
        return vec if vec is not None else self._remember_query(
            query, await self.embeddings.aembed_query(query))

    # ------------------------------------------------------------------ writes
    def apply(self, ops: Sequence[Operation], *, user_id: str | None) -> list[Applied]:
        """Apply several operations atomically: all commit in one transaction or none do.

        ``user_id`` scopes every operation: an id belonging to another user raises
        :class:`MemoryNotFoundError` and nothing is written. ``None`` is the admin scope
        (edit by id, any user); adds always need a user.
        """
        prepared, scope = self._prepare(ops, user_id)
        missing, known = self._texts_to_embed(prepared, scope)
        raw = self.embeddings.embed_documents(list(missing.values())) if missing else []
        return self._commit(prepared, scope, self._vector_map(prepared, missing, raw, known))

    async def aapply(self, ops: Sequence[Operation], *, user_id: str | None) -> list[Applied]:
        prepared, scope = self._prepare(ops, user_id)
        missing, known = await asyncio.to_thread(self._texts_to_embed, prepared, scope)
        raw = await self.embeddings.aembed_documents(list(missing.values())) if missing else []
        vectors = self._vector_map(prepared, missing, raw, known)
        return await asyncio.to_thread(self._commit, prepared, scope, vectors)

    def _prepare(self, ops: Sequence[Operation],
                 user_id: str | None) -> tuple[list[PreparedOp], str | None]:
        self._ensure_open()
        scope = None if user_id is None else check_user_id(user_id)
        if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence):
            raise InvalidInputError("ops must be a list of operations")
        prepared = prepare_ops(list(ops), max_chars=self.max_content_chars)
        if scope is None and any(op.kind == "add" for op in prepared):
            raise InvalidInputError("adding a memory needs a user_id", field="user_id")
        return prepared, scope

    def _commit(self, prepared: list[PreparedOp], scope: str | None,
                vectors: dict[str, np.ndarray]) -> list[Applied]:
        now = self._clock()

        model_recorded = self._model_recorded  # once it is in lpm_meta, stop reading it

        def body(conn: Any) -> tuple[list[Applied], list[Any]]:
            if self.dim is not None and not model_recorded:
                stored = read_meta(conn)
                if "embedding_model" not in stored:
                    write_meta(conn, "embedding_model", self.model_name)
                    write_meta(conn, "embedding_dim", str(self.dim))
            return execute_ops(conn, user_id=scope, ops=prepared, vectors=vectors, now=now,
                               dedupe=self.dedupe)

        applied, log = run_write(self.engine, body, connection=self._connection)
        self._vector_cache.put_many(vectors.items())  # committed: these texts have vectors
        self._model_recorded = self.dim is not None
        if self.dim is not None:
            self._sync.ensure_dim(self.dim)
        self._sync.apply_own(log)
        self._maybe_autosave()
        return applied

    def _connection(self) -> AbstractContextManager[Connection]:
        """The connection for this store's writes: the kept one on SQLite files."""
        return self._writes.hold() if self._writes is not None else self.engine.connect()

    def _maybe_autosave(self) -> None:
        """Save once the unsaved changes reach half the index (at least ``autosave_every``).

        While the store grows that is each time it doubles, so saving costs about two
        writes of the final index in all (at a quarter, bulk ingest spent a quarter of its
        time rewriting the file); a crash replays at most that many changes from SQL.
        """
        index = self._sync.index
        if index is not None and self._sync.unsaved >= max(self.autosave_every,
                                                           index.size() // 2):
            self._sync.save()

    def add(self, content: str, *, user_id: str, agent_id: str | None = None,
            session_id: str | None = None, category: str | None = None,
            importance: float = 0.5, metadata: dict[str, Any] | None = None,
            valid_from: datetime | None = None) -> Memory:
        """Remember one fact for a user and return it (the existing one if identical).

        Raises:
            InvalidInputError: blank/non-string/oversized content, bad user id, importance
                outside [0, 1], metadata that is not a JSON object.
        """
        op = _op(AddOp, content=content, category=category, importance=importance,
                   metadata=metadata, agent_id=agent_id, session_id=session_id,
                   valid_from=valid_from)
        return self.apply([op], user_id=user_id)[0].memory

    async def aadd(self, content: str, *, user_id: str, agent_id: str | None = None,
                   session_id: str | None = None, category: str | None = None,
                   importance: float = 0.5, metadata: dict[str, Any] | None = None,
                   valid_from: datetime | None = None) -> Memory:
        op = _op(AddOp, content=content, category=category, importance=importance,
                   metadata=metadata, agent_id=agent_id, session_id=session_id,
                   valid_from=valid_from)
        return (await self.aapply([op], user_id=user_id))[0].memory

    def add_many(self, items: Sequence[str | dict[str, Any] | AddOp], *,
                 user_id: str) -> list[Memory]:
        """Add many memories with one embedding call and one transaction.

        Items are strings or dicts with the keyword arguments of :meth:`add`
        (``content``, ``category``, ``importance``, ``metadata``, ``embedding`` …).
        """
        return [a.memory for a in self.apply(_as_add_ops(items), user_id=user_id)]

    async def aadd_many(self, items: Sequence[str | dict[str, Any] | AddOp], *,
                        user_id: str) -> list[Memory]:
        return [a.memory for a in await self.aapply(_as_add_ops(items), user_id=user_id)]

    def update(self, memory_id: str, *, content: str | None = None,
               category: str | None = None, importance: float | None = None,
               metadata: dict[str, Any] | None = None, user_id: str | None = None) -> Memory:
        """Change a memory in place (same fact, refined). History keeps the old text."""
        op = _op(UpdateOp, memory_id=memory_id, content=content, category=category,
                      importance=importance, metadata=metadata)
        return self.apply([op], user_id=user_id)[0].memory

    async def aupdate(self, memory_id: str, *, content: str | None = None,
                      category: str | None = None, importance: float | None = None,
                      metadata: dict[str, Any] | None = None,
                      user_id: str | None = None) -> Memory:
        op = _op(UpdateOp, memory_id=memory_id, content=content, category=category,
                      importance=importance, metadata=metadata)
        return (await self.aapply([op], user_id=user_id))[0].memory

    def supersede(self, memory_id: str, content: str, *, user_id: str | None = None,
                  category: str | None = None, importance: float | None = None,
                  metadata: dict[str, Any] | None = None,
                  valid_from: datetime | None = None) -> Memory:
        """Record that a fact stopped being true: the old row keeps ``valid_to``; returns
        the new memory."""
        op = _op(SupersedeOp, memory_id=memory_id, content=content, category=category,
                         importance=importance, metadata=metadata, valid_from=valid_from)
        return self.apply([op], user_id=user_id)[0].memory

    async def asupersede(self, memory_id: str, content: str, *, user_id: str | None = None,
                         category: str | None = None, importance: float | None = None,
                         metadata: dict[str, Any] | None = None,
                         valid_from: datetime | None = None) -> Memory:
        op = _op(SupersedeOp, memory_id=memory_id, content=content, category=category,
                         importance=importance, metadata=metadata, valid_from=valid_from)
        return (await self.aapply([op], user_id=user_id))[0].memory

    def delete(self, memory_id: str, *, user_id: str | None = None,
               reason: str | None = None) -> Memory:
        """Remove a memory from SQL and the index at once; returns what was deleted."""
        return self.apply([_op(DeleteOp, memory_id=memory_id, reason=reason)],
                          user_id=user_id)[0].memory

    async def adelete(self, memory_id: str, *, user_id: str | None = None,
                      reason: str | None = None) -> Memory:
        return (await self.aapply([_op(DeleteOp, memory_id=memory_id, reason=reason)],
                                  user_id=user_id))[0].memory

    def forget_user(self, user_id: str) -> int:
        """Erase a user completely: memories, history, vectors; returns memories removed."""
        self._ensure_open()
        user_id = check_user_id(user_id)
        count, log = run_write(self.engine, lambda conn: purge_user(conn, user_id),
                               connection=self._connection)
        self._sync.apply_own(log)
        self._scrub_files()
        return count

    async def aforget_user(self, user_id: str) -> int:
        return await asyncio.to_thread(self.forget_user, user_id)

    def _scrub_files(self) -> None:
        """Leave no copy of erased data on disk: checkpoint the WAL, rewrite the index."""
        if is_sqlite(self.engine) and sqlite_path(self.url) is not None:
            self._truncate_wal()
        self._sync.save()

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
    def get(self, memory_id: str, *, user_id: str | None = None,
            with_embedding: bool = False) -> Memory:
        """One memory by id (scoped to ``user_id`` when given).

        Raises:
            MemoryNotFoundError: no such id, or it belongs to another user.
        """
        self._ensure_open()
        memory_id = check_id(memory_id, "memory_id")
        cols = list(memories.c) if with_embedding else MEMORY_COLUMNS
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(memories.c.id == memory_id)).first()
        if row is None or (user_id is not None and row.user_id != user_id):
            raise MemoryNotFoundError(memory_id, user_id=user_id)
        return row_to_memory(row, with_embedding=with_embedding)

    async def aget(self, memory_id: str, *, user_id: str | None = None,
                   with_embedding: bool = False) -> Memory:
        return await asyncio.to_thread(self.get, memory_id, user_id=user_id,
                                       with_embedding=with_embedding)

    def history(self, memory_id: str, *, user_id: str | None = None) -> list[MemoryEvent]:
        """Every event of a memory, oldest first (kept after delete, erased by forget_user)."""
        self._ensure_open()
        memory_id = check_id(memory_id, "memory_id")
        with self.engine.connect() as conn:
            rows = conn.execute(select(history).where(history.c.memory_id == memory_id)
                                .order_by(history.c.id)).all()
        if not rows or (user_id is not None and rows[0].user_id != user_id):
            raise MemoryNotFoundError(memory_id, user_id=user_id)
        return [row_to_event(r) for r in rows]

    async def ahistory(self, memory_id: str, *, user_id: str | None = None) -> list[MemoryEvent]:
        return await asyncio.to_thread(self.history, memory_id, user_id=user_id)

    def list(self, user_id: str, *, include_superseded: bool = False, limit: int | None = None,
             offset: int = 0, **filters: Any) -> list[Memory]:
        """A user's memories, newest first; same filters as :meth:`search`."""
        self._ensure_open()
        query = build_filter_query(check_user_id(user_id), SearchFilters.of(
            include_superseded=include_superseded, **filters), columns=MEMORY_COLUMNS)
        query = query.order_by(memories.c.created_at.desc(), memories.c.pk.desc()).offset(
            check_offset(offset))
        if check_limit(limit) is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [row_to_memory(r) for r in conn.execute(query)]

    async def alist(self, user_id: str, **kwargs: Any) -> list[Memory]:
        return await asyncio.to_thread(lambda: self.list(user_id, **kwargs))

    def count(self, user_id: str | None = None, *, include_superseded: bool = False) -> int:
        """Number of memories of one user, or of everyone."""
        self._ensure_open()
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

    def users(self) -> list[str]:
        """Every user id that has at least one memory."""
        self._ensure_open()
        with self.engine.connect() as conn:
            rows = conn.execute(select(memories.c.user_id).distinct()
                                .order_by(memories.c.user_id))
            return [r[0] for r in rows]

    # ------------------------------------------------------------------ search
    def search(self, query: str, *, user_id: str, k: int = 5,
               include_superseded: bool = False, min_score: float | None = None,
               **filters: Any) -> list[ScoredMemory]:
        """The user's ``k`` most relevant memories for ``query``, best first.

        Filters: ``category`` (str or list), ``agent_id``, ``session_id``, ``metadata``
        (equality on each key), ``since`` / ``until`` (on ``valid_from``),
        ``include_superseded``. Only ``user_id``'s memories are ever scanned.

        Ranking options (:class:`~langchain_persistent_memory.retrieval.SearchOptions`):
        ``mode`` ("hybrid" default, "dense", "keyword"), ``fusion``, ``dense_weight``,
        ``candidates``, ``recency_half_life_days``, ``recency_weight``,
        ``importance_weight``, ``context_weight``, ``answer_weight``, ``question_discount``,
        ``date_boost``, ``mmr``, ``mmr_lambda``, ``dedupe_threshold``.
        ``min_score`` is a floor on cosine similarity in every mode.
        """
        self._ensure_open()
        min_score = check_min_score(min_score)
        options, filters = SearchOptions.split(filters)
        user_id, k, parsed = self._search_args(query, user_id, k, include_superseded, filters)
        return ranked_search(self, query, self.embed_query(query), user_id, k, parsed,
                             min_score, options, self._clock())

    async def asearch(self, query: str, *, user_id: str, k: int = 5,
                      include_superseded: bool = False, min_score: float | None = None,
                      **filters: Any) -> list[ScoredMemory]:
        self._ensure_open()
        min_score = check_min_score(min_score)
        options, filters = SearchOptions.split(filters)
        user_id, k, parsed = self._search_args(query, user_id, k, include_superseded, filters)
        vector = await self.aembed_query(query)
        return await asyncio.to_thread(ranked_search, self, query, vector, user_id, k, parsed,
                                       min_score, options, self._clock())

    def search_by_vector(self, vector: Sequence[float] | np.ndarray, *, user_id: str,
                         k: int = 5, include_superseded: bool = False,
                         min_score: float | None = None, **filters: Any) -> list[ScoredMemory]:
        """Like :meth:`search` with a precomputed query embedding."""
        self._ensure_open()
        user_id, k, parsed = self._search_args("-", user_id, k, include_superseded, filters)
        return self._search_vector(unit_vector(check_query_vector(vector)), user_id, k, parsed,
                                   check_min_score(min_score))

    @staticmethod
    def _search_args(query: Any, user_id: Any, k: Any, include_superseded: bool,
                     filters: dict[str, Any]) -> tuple[str, int, SearchFilters]:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string", field="query")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 10_000:
            raise InvalidInputError("k must be an integer from 1 to 10000", field="k")
        parsed = SearchFilters.of(include_superseded=include_superseded, **filters) \
            if filters else SearchFilters.plain(include_superseded)
        return check_user_id(user_id), k, parsed

    def _adopt_stored_dim(self) -> None:
        """Opened empty, but another process may have stored the first vectors since."""
        if self.dim is not None:
            return
        with self.engine.connect() as conn:
            stored = read_meta(conn)
        if "embedding_dim" not in stored:
            return
        if self._check_model and stored.get("embedding_model") != self.model_name:
            raise EmbeddingMismatchError(
                f"another process stored vectors of {stored.get('embedding_model')!r} in "
                f"this store; this one uses {self.model_name!r}",
                stored=stored.get("embedding_model"), given=self.model_name)
        self.dim = int(stored["embedding_dim"])
        self._sync.ensure_dim(self.dim)

    def _search_vector(self, vector: np.ndarray, user_id: str, k: int,
                       filters: SearchFilters, min_score: float | None) -> list[ScoredMemory]:
        self._adopt_stored_dim()
        index = self._sync.index
        if index is None:
            return []
        if vector.shape[0] != index.dim:
            raise EmbeddingMismatchError(
                f"query vector has {vector.shape[0]} dimensions, the index {index.dim}")
        self._sync.catch_up()
        allowed = None
        if filters.needs_sql:
            with self.engine.connect() as conn:
                allowed = np.fromiter(
                    (r[0] for r in conn.execute(build_filter_query(
                        user_id, filters, columns=[memories.c.pk]))), dtype=np.int64)
            if allowed.size == 0:
                return []
        hits = index.search(user_id, vector, k, include_superseded=filters.include_superseded,
                            allowed=allowed)
        if min_score is not None:
            hits = [h for h in hits if h[1] >= min_score]
        if not hits:
            return []
        by_pk = self._memories_by_pk(user_id, [pk for pk, _ in hits])
        return [_scored((by_pk[pk], score)) for pk, score in hits if pk in by_pk]

    def _memories_by_pk(self, user_id: str, pks: list[int]) -> dict[int, Memory]:
        """The hits' rows: a raw cursor on SQLite files (most of a search's cost otherwise)."""
        reader = self._sync.reader
        if reader is not None:
            return sqlite_rows_to_memories(reader.fetch(select_by_pks_sql(len(pks)), pks),
                                           user_id)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*MEMORY_COLUMNS).where(
                memories.c.pk.in_(pks), memories.c.user_id == user_id)).all()
        return {r.pk: row_to_memory(r) for r in rows}

    # ------------------------------------------------------------------ maintenance
    def rebuild_index(self) -> int:
        """Recreate the FAISS replica from vectors stored in SQL (no model calls)."""
        self._ensure_open()
        if self.dim is None:
            return 0
        count = self._sync.rebuild(self.dim)
        self._sync.save()
        return count

    def save_index(self) -> bool:
        """Persist the index now (also done on close and by autosave)."""
        self._sync.catch_up()
        return self._sync.save()

    def stats(self) -> dict[str, Any]:
        """Counts and configuration, for the CLI and the UI."""
        self._ensure_open()
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(memories)).scalar_one()
            current = conn.execute(select(func.count()).select_from(memories)
                                   .where(memories.c.valid_to.is_(None))).scalar_one()
            users = conn.execute(select(func.count(memories.c.user_id.distinct()))).scalar_one()
            events = conn.execute(select(func.count()).select_from(history)).scalar_one()
        index = self._sync.index
        return {
            "database": make_url(self.url).render_as_string(hide_password=True),
            "embedding_model": self.model_name, "dimension": self.dim,
            "memories": int(current), "superseded": int(total - current),
            "users": int(users), "history_events": int(events),
            "indexed_vectors": index.size() if index else 0,
            "index_watermark": index.watermark if index else 0,
            "index_path": str(self._sync.path) if self._sync.path else None,
        }

    # ------------------------------------------------------------------ backup and migration
    def export_jsonl(self, dest: str | os.PathLike[str] | IO[str], *,
                     user_id: str | None = None) -> int:
        """Back up one user's (or all) memories, embeddings and history as JSON Lines.

        Returns the number of memories written. The format is described in
        :mod:`langchain_persistent_memory.store.transfer`.
        """
        self._ensure_open()
        return export_jsonl(self, dest, user_id=user_id)

    async def aexport_jsonl(self, dest: str | os.PathLike[str] | IO[str], *,
                            user_id: str | None = None) -> int:
        return await asyncio.to_thread(self.export_jsonl, dest, user_id=user_id)

    def import_jsonl(self, src: Source, *, user_id: str | None = None,
                     on_conflict: Conflict = "error") -> int:
        """Restore an export without calling the embedding model; returns memories imported.

        The whole file is checked first, so a bad line leaves the store untouched.
        ``on_conflict="skip"`` ignores ids that already exist instead of refusing the file.

        Raises:
            InvalidInputError: a bad or truncated file, or ids that already exist.
            EmbeddingMismatchError: the file's vectors come from another model.
        """
        self._ensure_open()
        return import_jsonl(self, src, user_id=user_id, on_conflict=on_conflict)

    async def aimport_jsonl(self, src: Source, *, user_id: str | None = None,
                            on_conflict: Conflict = "error") -> int:
        return await asyncio.to_thread(self.import_jsonl, src, user_id=user_id,
                                       on_conflict=on_conflict)

    def reembed(self, embeddings: Embeddings | None = None, *, batch_size: int = 256,
                progress: Progress | None = None) -> int:
        """Move every vector to a new embedding model; returns the memories re-embedded.

        Open the store with the new model and ``check_embedding_model=False`` (or pass
        ``embeddings``). Each distinct text is embedded once; stop other processes first.
        ``progress(done, total)`` is called after each batch of distinct texts.
        """
        self._ensure_open()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError("batch_size must be a positive integer", field="batch_size")
        updated, dim = reembed(self, embeddings, batch_size=batch_size, progress=progress)
        self.dim = dim
        self._model_recorded = False  # an emptied store records the next model on write
        self._sync.model = self.model_name
        self._query_cache.clear()  # cached vectors came from the old model
        self._vector_cache.clear()
        self._sync.index = None
        if dim is None:
            self._sync.delete_file()
        else:
            self.rebuild_index()
        return updated

    async def areembed(self, embeddings: Embeddings | None = None, *, batch_size: int = 256,
                       progress: Progress | None = None) -> int:
        return await asyncio.to_thread(self.reembed, embeddings, batch_size=batch_size,
                                       progress=progress)

    def _ensure_open(self) -> None:
        if self._closed:
            raise InvalidInputError("this MemoryStore is closed")


OpT = TypeVar("OpT", bound=BaseModel)


def _op(kind: type[OpT], **fields: Any) -> OpT:
    """Build an operation; a wrong argument type becomes InvalidInputError like any bad input
    (pydantic's ValidationError is not one of ours)."""
    try:
        return kind(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else None
        raise InvalidInputError(f"{field}: {error['msg']}", field=field) from None


def _as_add_ops(items: Sequence[str | dict[str, Any] | AddOp]) -> list[Operation]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidInputError("items must be a list of strings or dicts", field="items")
    ops: list[Operation] = []
    for item in items:
        if isinstance(item, AddOp):
            ops.append(item)
        elif isinstance(item, dict):
            unknown = set(item) - set(AddOp.model_fields) - {"kind"}
            if unknown:
                raise InvalidInputError(f"unknown fields {sorted(unknown)} in add_many item")
            if "content" not in item:
                raise InvalidInputError("each add_many item needs 'content'", field="content")
            ops.append(_op(AddOp, **item))
        else:
            ops.append(_op(AddOp, content=item))
    return ops
