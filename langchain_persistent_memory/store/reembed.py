"""Migrating every stored vector to a new embedding model.

New vectors are first collected in a scratch table, one committed batch at a time, keyed by
content hash so each distinct text is embedded once. A single final transaction swaps them
into ``lpm_memories`` and records the new model in ``lpm_meta``. Why the detour: the store is
never left holding vectors of two models (an interrupted run leaves it exactly as it was,
still usable with the old model), and running ``reembed`` again with the same model resumes
where it stopped instead of paying for the embedded texts twice.

Other processes must be stopped while this runs: they keep their old-model index and would
write old-model vectors. After the swap they get :class:`EmbeddingMismatchError` on reopen
with the old model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy import delete as sql_delete

from ..errors import EmbeddingMismatchError, InvalidInputError
from ..validation import check_embeddings
from .embedding import normalize_rows
from .engine import run_write
from .rows import encode_vector
from .schema import memories, meta, read_meta, users, write_meta

if TYPE_CHECKING:
    from .embedder import Embedder

__all__ = ["Progress", "reembed"]

Progress = Callable[[int, int], None]
"""Called after each batch with ``(distinct texts done, distinct texts in total)``."""

_TARGET_KEY = "reembed_model"  # in lpm_meta while a migration is unfinished
_HASH_INDEX = "ix_lpm_reembed_hash"

_scratch = Table(
    "lpm_reembed",
    MetaData(),
    Column("content_hash", String(64), primary_key=True),
    Column("embedding", LargeBinary, nullable=False),
)


def _start(conn: Connection, target: str) -> None:
    """Create the scratch table; forget a previous run's vectors if it targeted another
    model."""
    _scratch.create(conn, checkfirst=True)
    # Distinct texts are read in hash order: an index for this run only (the store keeps
    # none on content_hash alone, it would slow every add; see ``schema``).
    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {_HASH_INDEX} "
                         "ON lpm_memories (content_hash)")
    if read_meta(conn).get(_TARGET_KEY) != target:
        conn.execute(sql_delete(_scratch))
        write_meta(conn, _TARGET_KEY, target)


def _pending(conn: Connection, after: str | None, limit: int | None) -> list[tuple[str, str]]:
    """Distinct ``(hash, text)`` pairs in hash order not yet in the scratch table."""
    query = (select(memories.c.content_hash, func.min(memories.c.content))
             .where(memories.c.content_hash.not_in(select(_scratch.c.content_hash)))
             .group_by(memories.c.content_hash).order_by(memories.c.content_hash))
    if after is not None:
        query = query.where(memories.c.content_hash > after)
    if limit is not None:
        query = query.limit(limit)
    return [(h, text) for h, text in conn.execute(query)]


class _Embedder:
    """Embeds batches with the new model, checking every batch has the same dimension."""

    def __init__(self, embeddings: Embeddings) -> None:
        self.embeddings = embeddings
        self.dim: int | None = None

    def rows(self, batch: list[tuple[str, str]]) -> list[dict[str, object]]:
        raw = self.embeddings.embed_documents([text for _, text in batch])
        matrix = normalize_rows(check_embeddings(raw, len(batch)))
        if matrix.shape[0] != len(batch):
            raise EmbeddingMismatchError(
                f"the model returned {matrix.shape[0]} vectors for {len(batch)} texts")
        if self.dim is None:
            self.dim = int(matrix.shape[1])
        elif matrix.shape[1] != self.dim:
            raise EmbeddingMismatchError(
                f"the model returned {matrix.shape[1]}-dimensional vectors after "
                f"{self.dim}-dimensional ones", stored=str(self.dim), given=str(matrix.shape[1]))
        return [{"content_hash": h, "embedding": encode_vector(vec)}
                for (h, _), vec in zip(batch, matrix)]


def _swap(conn: Connection, embedder: _Embedder, target: str) -> int:
    """The final transaction: vectors in, model recorded, scratch table gone."""
    late = _pending(conn, None, None)  # written while the batches ran
    if late:
        conn.execute(_scratch.insert(), embedder.rows(late))
    if embedder.dim is None:  # no vectors in this run: take the size of a stored one
        blob = conn.execute(select(_scratch.c.embedding).limit(1)).scalar()
        embedder.dim = None if blob is None else len(blob) // 4
    new_vector = (select(_scratch.c.embedding)
                  .where(_scratch.c.content_hash == memories.c.content_hash)
                  .scalar_subquery())
    updated = conn.execute(memories.update().values(embedding=new_vector)).rowcount
    if embedder.dim is None:  # an empty store: the next write records its model
        conn.execute(sql_delete(meta).where(meta.c.key.in_(["embedding_model",
                                                             "embedding_dim"])))
    else:
        write_meta(conn, "embedding_model", target)
        write_meta(conn, "embedding_dim", str(embedder.dim))
    conn.execute(sql_delete(meta).where(meta.c.key == _TARGET_KEY))
    conn.execute(users.update().values(version=users.c.version + 1))  # every partition stale
    _scratch.drop(conn)
    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_HASH_INDEX}")
    return int(updated)


def _store_batch(conn: Connection, *, rows: list[dict[str, object]]) -> None:
    conn.execute(_scratch.insert(), rows)


def reembed(engine: Engine, model: Embedder, *, batch_size: int = 256,
            progress: Progress | None = None) -> tuple[int, int | None]:
    """Re-embed every memory with ``embeddings`` (default: the store's).

    Each distinct text is embedded once; batches are committed to a scratch table, then
    swapped in with one transaction. Returns the rows updated and the new dimension (None
    for an empty store); the caller rebuilds its index.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError("batch_size must be a positive integer", field="batch_size")
    target = model.model_name
    embedder = _Embedder(model.embeddings)
    run_write(engine, lambda conn: _start(conn, target))
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count(memories.c.content_hash.distinct())))
                    .scalar_one())
        done = int(conn.execute(select(func.count()).select_from(_scratch)).scalar_one())
    after: str | None = None
    while True:
        with engine.connect() as conn:
            batch = _pending(conn, after, batch_size)
        if not batch:
            break
        rows = embedder.rows(batch)
        run_write(engine, functools.partial(_store_batch, rows=rows))
        after = batch[-1][0]
        done += len(batch)
        if progress is not None:
            progress(min(done, total), total)
    updated = run_write(engine, lambda conn: _swap(conn, embedder, target))
    return updated, embedder.dim
