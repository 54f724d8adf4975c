"""The collaborators behind one :class:`MemoryStore`, wired to one engine, and their
shutdown: the facade only forwards to them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from sqlalchemy import Connection, Engine

from .embedder import Embedder
from .embedding import embedding_model_name
from .engine import (
    autocommit_connections,
    create_store_engine,
    dispose_quietly,
    kept_connection,
    run_write,
)
from .partitions import Partitions, parse_budget
from .reader import Reader
from .reads import table_counts
from .reembed import Progress, reembed
from .same_text import existing_vectors
from .schema import prepare_database
from .search import Searcher
from .writer import Writer

__all__ = ["StoreParts"]


class StoreParts:
    """Engine, connections, partitions, embedder, writer and searcher of one store.

    Opening prepares the database (schema, model check); if any step fails, what was
    already opened is closed before the error propagates.
    """

    def __init__(self, url: str, embeddings: Embeddings, *, clock: Callable[[], datetime],
                 dedupe: bool, max_chars: int, check_model: bool,
                 memory_budget: int | str | None, engine_kwargs: dict[str, Any]) -> None:
        self.engine: Engine = create_store_engine(url, **engine_kwargs)
        self._writes = kept_connection(self.engine)
        self._autocommit = autocommit_connections(self.engine)
        self._reader: Reader | None = None
        self._partitions: Partitions | None = None
        try:
            model = embedding_model_name(embeddings)
            dim = run_write(self.engine, functools.partial(
                prepare_database, model=model, check_model=check_model))
            self._reader = Reader(self.engine)
            self.partitions = self._partitions = Partitions(self._reader,
                                                            parse_budget(memory_budget))
            self.embedder = Embedder(embeddings, dim, self.partitions, self._stored_vectors)
            self.writer = Writer(self.engine, self.embedder, self.partitions,
                                 connection=self._connection, autocommit=self._autocommit,
                                 clock=clock, dedupe=dedupe, max_chars=max_chars)
            self.searcher = Searcher(self.engine, self._reader, self.partitions,
                                     self.embedder, check_model=check_model)
        except BaseException:
            self.close()
            raise

    def _connection(self) -> AbstractContextManager[Connection]:
        """The connection for this store's writes: the kept one on SQLite files."""
        return self._writes.hold() if self._writes is not None else self.engine.connect()

    def _stored_vectors(self, user_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """On SQLite through the writes' connection, whose page cache survived the last
        commit (its own); on PostgreSQL one prepared autocommit statement."""
        if self._writes is None:
            assert self._reader is not None
            return self._reader.vectors_by_hash(user_id, hashes)
        with self._writes.hold() as conn:
            return existing_vectors(conn, user_id, hashes)

    def stats(self) -> dict[str, Any]:
        """The model, table counts and what this process holds loaded."""
        info = self.partitions.info()
        return {"embedding_model": self.embedder.model_name, "dimension": self.embedder.dim,
                **table_counts(self.engine), "users_loaded": info.users_loaded,
                "indexed_vectors": info.vectors, "index_bytes": info.bytes,
                "memory_budget": info.budget}

    def reembed(self, embeddings: Embeddings | None, *, batch_size: int,
                progress: Progress | None) -> int:
        """Move every vector to ``embeddings`` (default: the current model) and forget
        everything the old model's vectors left in this process."""
        if embeddings is not None:
            self.embedder.use(embeddings)
        updated, dim = reembed(self.engine, self.embedder, batch_size=batch_size,
                               progress=progress)
        self.embedder.dim = dim
        self.embedder.forget()  # cached vectors came from the old model
        self.writer.model_recorded = False  # an emptied store records the next model
        self.partitions.clear()
        return updated

    def close(self) -> None:
        """Release connections and loaded partitions (calls still running on them raise
        :class:`StoreClosedError`)."""
        for part in (self._reader, self._partitions):
            if part is not None:
                part.close()
        for kept in (self._writes, self._autocommit):
            if kept is not None:
                kept.close()
        dispose_quietly(self.engine)
