"""Every write of the store: validate, embed outside the transaction, commit, then update
the loaded partitions. Shared by the facade and import.

Sync and async share the steps: the embedding call uses the model's own async method and
the SQL work runs in a worker thread, so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from ..errors import ForgetIncompleteError, InvalidInputError
from ..models import Operation
from ..validation import check_user_id
from .embedder import Embedder
from .engine import AutocommitConnections, is_sqlite, run_write, sqlite_path, truncate_wal
from .partitions import Partitions, UserPartition
from .prepare import prepare_ops
from .purge import purge_user
from .schema import add_meta
from .write_types import Applied, Change, Committed, PreparedOp
from .writes import execute_ops

__all__ = ["Writer"]


class Writer:
    """Applies operations in one transaction each and keeps this process's partitions
    current."""

    def __init__(self, engine: Engine, embedder: Embedder, partitions: Partitions, *,
                 connection: Callable[[], AbstractContextManager[Connection]],
                 autocommit: AutocommitConnections | None = None,
                 clock: Callable[[], datetime], dedupe: bool, max_chars: int) -> None:
        self.engine = engine
        self.embedder = embedder
        self.partitions = partitions
        self.connection = connection
        self.autocommit = autocommit
        self.clock = clock
        self.dedupe = dedupe
        self.max_chars = max_chars
        self.model_recorded = False  # once it is in lpm_meta, stop reading it

    def prepare(self, ops: Sequence[Operation],
                user_id: str | None) -> tuple[list[PreparedOp], str | None]:
        scope = None if user_id is None else check_user_id(user_id)
        if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence):
            raise InvalidInputError("ops must be a list of operations")
        prepared = prepare_ops(list(ops), max_chars=self.max_chars)
        if scope is None and any(op.kind == "add" for op in prepared):
            raise InvalidInputError("adding a memory needs a user_id", field="user_id")
        return prepared, scope

    def apply(self, ops: Sequence[Operation], user_id: str | None) -> list[Applied]:
        prepared, scope = self.prepare(ops, user_id)
        missing, known = self.embedder.missing(prepared, scope)
        raw = self.embedder.embeddings.embed_documents(list(missing.values())) \
            if missing else []
        return self.commit(prepared, scope, self.embedder.vectors(prepared, missing, raw, known))

    async def aapply(self, ops: Sequence[Operation], user_id: str | None) -> list[Applied]:
        prepared, scope = self.prepare(ops, user_id)
        missing, known = await asyncio.to_thread(self.embedder.missing, prepared, scope)
        raw = await self.embedder.embeddings.aembed_documents(list(missing.values())) \
            if missing else []
        vectors = self.embedder.vectors(prepared, missing, raw, known)
        return await asyncio.to_thread(self.commit, prepared, scope, vectors)

    def commit(self, prepared: list[PreparedOp], scope: str | None,
               vectors: dict[str, np.ndarray]) -> list[Applied]:
        now = self.clock()

        def body(conn: Connection) -> tuple[list[Applied], Committed]:
            self.record_model(conn)
            return execute_ops(conn, user_id=scope, ops=prepared, vectors=vectors, now=now,
                               dedupe=self.dedupe)

        # A user's single delete is one statement on PostgreSQL (see pg_delete), run on a kept
        # autocommit connection: no BEGIN/COMMIT, no switching a pooled connection back.
        single = scope is not None and len(prepared) == 1 and prepared[0].kind == "delete" \
            and self.model_recorded
        applied, committed = run_write(self.engine, body, connection=self.connection,
                                       autocommit=self.autocommit if single else None)
        self.embedder.committed(vectors)  # committed: these texts have vectors
        self.model_recorded = self.embedder.dim is not None
        self.update_partitions(committed)
        return applied

    def record_model(self, conn: Connection) -> None:
        """Name the model and dimension in ``lpm_meta`` with the store's first vectors."""
        dim = self.embedder.dim
        if dim is not None and not self.model_recorded:
            add_meta(conn, "embedding_model", self.embedder.model_name)
            add_meta(conn, "embedding_dim", str(dim))

    def update_partitions(self, committed: Committed) -> None:
        """Apply a committed write to the loaded partitions of the users it touched."""
        by_user: dict[str, list[Change]] = {}
        for change in committed.changes:
            by_user.setdefault(change.user_id, []).append(change)
        for user_id, version in committed.versions.items():
            self.partitions.apply_own(user_id, version,
                                      functools.partial(_apply, changes=by_user.get(user_id, [])))

    def forget_user(self, user_id: str) -> int:
        """Purge the user's rows and partition, then empty the SQLite WAL of their text."""
        user_id = check_user_id(user_id)
        count = run_write(self.engine, lambda conn: purge_user(conn, user_id),
                          connection=self.connection)
        self.partitions.drop(user_id)
        url = self.engine.url.render_as_string(hide_password=False)
        if is_sqlite(self.engine) and sqlite_path(url) is not None:
            left = truncate_wal(self.engine)
            if left:
                raise ForgetIncompleteError(user_id, removed=count, wal_frames=left)
        return count


def _apply(part: UserPartition, *, changes: list[Change]) -> bool:
    """Adds, deletes and supersessions in order; anything else makes the partition reload
    instead."""
    if any(c.op == "other" for c in changes):
        return False
    added: list[Any] = []
    for change in changes:
        if change.op == "add":
            added.append(change.row)
            continue
        part.upsert(added)
        added = []
        if change.op == "delete":
            part.remove([change.pk])
        elif not part.retire(change.pk):
            return False
    part.upsert(added)
    return True
