"""``MemoryStore``: the public facade over SQL (truth) and users' partitions (derived).

A thin layer: arguments are checked here, the work is done by collaborators that
:class:`.StoreParts` wires to one engine — :class:`.Embedder` (the model and what it
already embedded), :class:`.Writer` (one transaction per call), :class:`.Partitions` (each
user's vectors and keyword statistics, loaded on demand under a memory budget) and
:class:`.Searcher`.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np
from langchain_core.embeddings import Embeddings
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from ..models import (
    AddOp,
    DeleteOp,
    Memory,
    MemoryEvent,
    Operation,
    Provenance,
    ScoredMemory,
    SupersedeOp,
    UpdateOp,
)
from ..retrieval.options import SearchOptions
from ..scopes import AnyUser, by_id_scope
from ..validation import (
    DEFAULT_MAX_CONTENT_CHARS,
    check_limit,
    check_offset,
    check_query_vector,
    check_user_id,
)
from . import reads
from .async_api import AsyncTwins
from .embedder import Embedder
from .embedding import LocalEmbeddings, unit_vector
from .engine import DEFAULT_DATABASE_ENV, default_database_url
from .entity_rows import EntityRow
from .forget_guards import ForgetGuards
from .guard import open_only
from .op_builders import as_add_ops, build_op
from .partitions import IndexInfo, Partitions
from .parts import StoreParts
from .reembed import Progress
from .search import Searcher, search_args
from .transfer import Conflict, Source, export_jsonl, import_jsonl
from .write_types import Applied
from .writer import Writer

__all__ = ["DEFAULT_DATABASE_ENV", "MemoryStore", "default_database_url"]


class MemoryStore(AsyncTwins):
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
        # Pipelines on this store (MemoryManager) stop a user's turns around forget_user.
        self.forget_guards = ForgetGuards()
        self._parts = StoreParts(self.url, embeddings, clock=self.clock, dedupe=dedupe,
                                 max_chars=max_content_chars,
                                 check_model=check_embedding_model,
                                 memory_budget=memory_budget,
                                 engine_kwargs=engine_kwargs or {})
        self.engine: Engine = self._parts.engine
        self.partitions: Partitions = self._parts.partitions
        self.embedder: Embedder = self._parts.embedder
        self.writer: Writer = self._parts.writer
        self.searcher: Searcher = self._parts.searcher

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release connections and loaded partitions. Safe to call twice; a call still
        running raises :class:`StoreClosedError`."""
        if self._closed:
            return
        self._closed = True
        self._parts.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def embed_query(self, query: str) -> np.ndarray:
        """The normalised query vector (cached): shared by search and the pipeline."""
        return self.embedder.query(query)

    # ------------------------------------------------------------------ writes
    @open_only
    def apply(self, ops: Sequence[Operation], *, user_id: str | AnyUser | None = None
              ) -> list[Applied]:
        """Apply several operations atomically: all commit in one transaction or none do.

        ``user_id`` scopes every operation: an id belonging to another user raises
        :class:`MemoryNotFoundError` and nothing is written. The admin scope (edits by id of
        any user's memories) is the explicit ``user_id=ANY_USER``; leaving the user out
        raises :class:`InvalidInputError`. Adds always need a real user.
        """
        return self.writer.apply(ops, by_id_scope(user_id))

    def add(self, content: str, *, user_id: str, agent_id: str | None = None,
            session_id: str | None = None, category: str | None = None,
            importance: float = 0.5, metadata: dict[str, Any] | None = None,
            valid_from: datetime | None = None,
            provenance: Provenance | None = None) -> Memory:
        """Remember one fact for a user and return it (the existing one if identical).
        ``provenance`` says where it came from (default: a direct API call).

        Raises:
            InvalidInputError: blank/non-string/oversized content, bad user id, importance
                outside [0, 1], metadata that is not a JSON object.
        """
        op = build_op(AddOp, content=content, category=category, importance=importance,
                      metadata=metadata, agent_id=agent_id, session_id=session_id,
                      valid_from=valid_from, provenance=provenance)
        return self.apply([op], user_id=user_id)[0].memory

    def add_many(self, items: Sequence[str | dict[str, Any] | AddOp], *,
                 user_id: str) -> list[Memory]:
        """Add many memories with one embedding call and one transaction.

        Items are strings or dicts with the keyword arguments of :meth:`add`
        (``content``, ``category``, ``importance``, ``metadata``, ``embedding`` …).
        """
        return [a.memory for a in self.apply(as_add_ops(items), user_id=user_id)]

    def update(self, memory_id: str, *, content: str | None = None,
               category: str | None = None, importance: float | None = None,
               metadata: dict[str, Any] | None = None, user_id: str | AnyUser | None = None,
               provenance: Provenance | None = None) -> Memory:
        """Change a memory in place (same fact, refined). History keeps the old text."""
        op = build_op(UpdateOp, memory_id=memory_id, content=content, category=category,
                      importance=importance, metadata=metadata, provenance=provenance)
        return self.apply([op], user_id=user_id)[0].memory

    def supersede(self, memory_id: str, content: str, *, user_id: str | AnyUser | None = None,
                  category: str | None = None, importance: float | None = None,
                  metadata: dict[str, Any] | None = None,
                  valid_from: datetime | None = None,
                  provenance: Provenance | None = None) -> Memory:
        """Record that a fact stopped being true: the old row keeps ``valid_to``; returns
        the new memory."""
        op = build_op(SupersedeOp, memory_id=memory_id, content=content, category=category,
                      importance=importance, metadata=metadata, valid_from=valid_from,
                      provenance=provenance)
        return self.apply([op], user_id=user_id)[0].memory

    def delete(self, memory_id: str, *, user_id: str | AnyUser | None = None,
               reason: str | None = None, provenance: Provenance | None = None) -> Memory:
        """Remove a memory from SQL and the index at once; returns what was deleted."""
        return self.apply([build_op(DeleteOp, memory_id=memory_id, reason=reason,
                                    provenance=provenance)], user_id=user_id)[0].memory

    @open_only
    def forget_user(self, user_id: str) -> int:
        """Erase a user completely: memories, history, provenance, vectors; returns memories
        removed.

        Every ``MemoryManager`` on this store first cancels the user's queued turns, waits
        for a running one and refuses new ones until this returns (:attr:`forget_guards`),
        so nothing of the user comes back afterwards.

        Raises:
            ForgetIncompleteError: SQLite only: everything is deleted, but another
                connection's read transaction kept the WAL from being emptied for ~2 s;
                its old frames may hold the erased text. Call again once it has ended.
        """
        user_id = check_user_id(user_id)
        with self.forget_guards.hold(user_id):
            return self.writer.forget_user(user_id)

    # ------------------------------------------------------------------ reads
    @open_only
    def get(self, memory_id: str, *, user_id: str | AnyUser | None = None,
            with_embedding: bool = False, with_provenance: bool = False) -> Memory:
        """One memory by id of ``user_id`` (or of anyone with ``user_id=ANY_USER``);
        ``with_provenance`` fills ``Memory.provenance`` (where its text came from).

        Raises:
            MemoryNotFoundError: no such id, or it belongs to another user.
            InvalidInputError: ``user_id`` left out (``field="user_id"``).
        """
        return reads.get(self.engine, memory_id, by_id_scope(user_id), with_embedding,
                         with_provenance)

    @open_only
    def history(self, memory_id: str, *,
                user_id: str | AnyUser | None = None) -> builtins.list[MemoryEvent]:
        """Every event of a memory, oldest first, each with its ``provenance`` (kept after
        delete, erased by forget_user)."""
        return reads.history_of(self.engine, memory_id, by_id_scope(user_id))

    @open_only
    def list(self, user_id: str, *, include_superseded: bool = False, limit: int | None = None,
             offset: int = 0, **filters: Any) -> builtins.list[Memory]:
        """A user's memories, newest first; same filters as :meth:`search`."""
        return reads.list_memories(self.engine, user_id, include_superseded,
                                   check_limit(limit), check_offset(offset), filters)

    @open_only
    def entities(self, user_id: str, *, include_superseded: bool = False
                 ) -> builtins.list[EntityRow]:
        """The entities a user's memories name (most often named first), each with the ids
        of the memories behind it; superseded memories' links only if asked."""
        return reads.entities(self.engine, user_id, include_superseded)

    @open_only
    def count(self, user_id: str | None = None, *, include_superseded: bool = False) -> int:
        """Number of memories of one user, or of everyone."""
        return reads.count(self.engine, user_id, include_superseded)

    @open_only
    def users(self) -> builtins.list[str]:
        """Every user id that has at least one memory."""
        return reads.user_ids(self.engine)

    # ------------------------------------------------------------------ search
    @open_only
    def search(self, query: str, *, user_id: str, k: int = 5,
               include_superseded: bool = False, min_score: float | None = None,
               with_provenance: bool = False,
               **filters: Any) -> builtins.list[ScoredMemory]:
        """The user's ``k`` most relevant memories for ``query``, best first.

        Filters: ``category`` (str or list), ``agent_id``, ``session_id``, ``metadata``
        (equality on each key), ``since`` / ``until`` (on ``valid_from``),
        ``include_superseded``. Only ``user_id``'s memories are ever read.

        Ranking options (:class:`~langchain_persistent_memory.retrieval.SearchOptions`):
        ``mode`` ("hybrid" default, "dense", "keyword"), ``fusion``, ``dense_weight``,
        ``candidates``, ``recency_half_life_days``, ``recency_weight``,
        ``importance_weight``, ``context_weight``, ``answer_weight``, ``question_discount``,
        ``date_boost``, ``entity_weight``, ``hop_weight``, ``time_boost``, ``topic_weight``,
        ``topic_focus``, ``detail_weight``, ``mmr``,
        ``mmr_lambda``, ``dedupe_threshold``. ``min_score`` is a floor on cosine similarity
        in every mode. Each hit carries the ranking ``score`` and, to threshold on, its
        ``cosine`` and ``keyword_match``.
        ``with_provenance=True`` fills each hit's ``memory.provenance`` (one more query).
        """
        options, filters = SearchOptions.split(filters)
        user_id, k, parsed, min_score = search_args(query, user_id, k, include_superseded,
                                                    filters, min_score)
        hits = self.searcher.search(query, self.embed_query(query), user_id, k, parsed,
                                    min_score, options, self.clock())
        return self.with_provenance(hits) if with_provenance else hits

    def with_provenance(self, hits: builtins.list[ScoredMemory]
                         ) -> builtins.list[ScoredMemory]:
        """These hits with each memory's provenance filled in."""
        return reads.hits_with_provenance(self.engine, hits)

    @open_only
    def search_by_vector(self, vector: Sequence[float] | np.ndarray, *, user_id: str,
                         k: int = 5, include_superseded: bool = False,
                         min_score: float | None = None,
                         **filters: Any) -> builtins.list[ScoredMemory]:
        """Like :meth:`search` with a precomputed query embedding (cosine order)."""
        user_id, k, parsed, min_score = search_args("-", user_id, k, include_superseded,
                                                    filters, min_score)
        return self.searcher.by_vector(unit_vector(check_query_vector(vector)), user_id, k,
                                       parsed, min_score)

    # ------------------------------------------------------------------ maintenance
    @open_only
    def index_info(self, user_id: str | None = None) -> IndexInfo:
        """What this process holds in memory: users loaded, their vectors, bytes, budget
        (only ``user_id``'s partition if given; a user is loaded by their first search)."""
        return self.partitions.info(user_id)

    @open_only
    def rebuild_index(self) -> int:
        """Drop every loaded partition (each reloads from SQL on its user's next search);
        returns the vectors stored in SQL. No model calls."""
        self.partitions.clear()
        return self.count(include_superseded=True)

    def save_index(self) -> bool:
        """Nothing to save (partitions load from SQL on demand): False."""
        return False

    @open_only
    def stats(self) -> dict[str, Any]:
        """Counts and configuration, for the CLI and the UI."""
        return {"database": make_url(self.url).render_as_string(hide_password=True),
                **self._parts.stats(),
                "index_path": str(self._index_path) if self._index_path else None}

    # ------------------------------------------------------------------ backup and migration
    @open_only
    def export_jsonl(self, dest: str | os.PathLike[str] | IO[str], *,
                     user_id: str | None = None) -> int:
        """Back up one user's (or all) memories, embeddings and history as JSON Lines;
        returns memories written (format: :mod:`langchain_persistent_memory.store.transfer`)."""
        return export_jsonl(self.engine, self.clock, dest, user_id=user_id)

    @open_only
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

    @open_only
    def reembed(self, embeddings: Embeddings | None = None, *, batch_size: int = 256,
                progress: Progress | None = None) -> int:
        """Move every vector to a new embedding model; returns the memories re-embedded.

        Open the store with the new model and ``check_embedding_model=False`` (or pass
        ``embeddings``). Each distinct text is embedded once; stop other processes first.
        ``progress(done, total)`` is called after each batch of distinct texts.
        """
        return self._parts.reembed(embeddings, batch_size=batch_size, progress=progress)

