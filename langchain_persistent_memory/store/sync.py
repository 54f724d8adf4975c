"""Keeping the FAISS replica equal to SQL: open, rebuild, catch up, apply own writes.

All of it reads embeddings from SQL; none of it calls the embedding model.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select

from .engine import read_transaction, sqlite_reader
from .index import PartitionedIndex
from .index_file import IndexFileError, read_index_file, write_index_file
from .schema import changes, memories
from .writes import Change, user_digest

__all__ = ["IndexSync"]

log = logging.getLogger(__name__)
_CHUNK = 5000


class IndexSync:
    """Owns one :class:`PartitionedIndex` and the rules that keep it derived from SQL."""

    def __init__(self, engine: Engine, *, path: Path | None, model: str) -> None:
        self.engine = engine
        self.path = path
        self.model = model
        self.index: PartitionedIndex | None = None
        self.unsaved = 0
        self.rebuilt_on_open = False
        self.reader = sqlite_reader(engine)
        self._seen_version: int | None = None

    # ------------------------------------------------------------------ open
    def open(self, dim: int | None) -> None:
        """Load the saved index if it can be trusted, else rebuild; then catch up."""
        if dim is None:
            self.index = None
            return
        head = self.head()
        if self.path is not None and self.path.exists():
            try:
                saved = read_index_file(self.path)
                if saved.model != self.model or saved.index.dim != dim:
                    raise IndexFileError("index was built with another embedding model")
                if saved.index.watermark > head:
                    raise IndexFileError("index is newer than the database (restored backup?)")
                self.index = saved.index
                self.catch_up()
                return
            except IndexFileError as exc:
                log.warning("rebuilding the vector index from SQL: %s", exc)
        self.rebuild(dim)
        self.rebuilt_on_open = True

    def head(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(changes.c.seq))).scalar() or 0)

    def rebuild(self, dim: int) -> int:
        """Recreate every partition from the vectors in SQL; returns vectors indexed."""
        index = PartitionedIndex(dim)
        total = 0
        with read_transaction(self.engine) as conn:
            index.watermark = int(conn.execute(select(func.max(changes.c.seq))).scalar() or 0)
            result = conn.execution_options(stream_results=True, yield_per=_CHUNK).execute(
                select(memories.c.pk, memories.c.user_id, memories.c.valid_to.is_(None),
                       memories.c.embedding))
            for rows in result.partitions(_CHUNK):
                total += _upsert_rows(index, rows)
        self.index = index
        self.unsaved = total
        return total

    # ------------------------------------------------------------------ replay
    def ensure_dim(self, dim: int) -> PartitionedIndex:
        if self.index is None:
            self.index = PartitionedIndex(dim)
            self.index.watermark = 0
            self.catch_up()
        return self.index

    def catch_up(self) -> int:
        """Replay changes committed (by anyone) after the watermark. Cheap when there are none.

        On a SQLite file, nothing was committed by any connection since the last look when
        ``PRAGMA data_version`` is unchanged: then no query is needed at all.
        """
        index = self.index
        if index is None:
            return 0
        # Read the version before the log, so a commit racing with us is seen next time.
        version = None if self.reader is None else self.reader.data_version()
        if version is not None and version == self._seen_version:
            return 0
        replayed = self._replay(index)
        self._seen_version = version
        return replayed

    def _replay(self, index: PartitionedIndex) -> int:
        with index.lock, read_transaction(self.engine) as conn:
            head = int(conn.execute(select(func.max(changes.c.seq))).scalar() or 0)
            if head <= index.watermark:
                return 0
            log_rows = conn.execute(
                select(changes.c.seq, changes.c.user_id, changes.c.memory_pk, changes.c.op)
                .where(changes.c.seq > index.watermark, changes.c.seq <= head)
                .order_by(changes.c.seq)).all()
            touched: dict[int, str] = {}
            purged: set[str] = set()
            for _seq, user_id, pk, op in log_rows:
                if op in ("purge", "forget"):
                    purged.update(u for u in index.user_ids() if _names(op, user_id, u))
                    for stale in [p for p, u in touched.items() if _names(op, user_id, u)]:
                        del touched[stale]
                else:
                    touched[int(pk)] = user_id
            for user_id in purged:
                index.purge_user(user_id)
            pks = list(touched)
            found: set[int] = set()
            for start in range(0, len(pks), 900):
                rows = conn.execute(
                    select(memories.c.pk, memories.c.user_id, memories.c.valid_to.is_(None),
                           memories.c.embedding)
                    .where(memories.c.pk.in_(pks[start:start + 900]))).all()
                found.update(int(r[0]) for r in rows)
                _upsert_rows(index, rows)
            index.remove(p for p in pks if p not in found)
            index.watermark = head
            self.unsaved += len(log_rows)
            return len(log_rows)

    def apply_own(self, applied: list[Change]) -> None:
        """Apply this process's just-committed changes, or replay if others wrote between."""
        index = self.index
        if index is None or not applied:
            return
        with index.lock:
            if applied[0].seq != index.watermark + 1:
                self.catch_up()
                return
            groups: dict[tuple[str, bool], list[Change]] = defaultdict(list)
            for change in applied:
                if change.op == "purge":
                    self._flush(index, groups)
                    index.purge_user(change.user_id)
                elif change.op == "delete":
                    self._flush(index, groups)
                    index.remove([change.pk])
                else:
                    groups[(change.user_id, change.current)].append(change)
            self._flush(index, groups)
            index.watermark = applied[-1].seq
            self.unsaved += len(applied)

    @staticmethod
    def _flush(index: PartitionedIndex,
               groups: dict[tuple[str, bool], list[Change]]) -> None:
        for (user_id, current), items in groups.items():
            index.upsert(user_id, current, np.array([c.pk for c in items], dtype=np.int64),
                         np.stack([c.vector for c in items if c.vector is not None]))
        groups.clear()

    # ------------------------------------------------------------------ files
    def save(self) -> bool:
        if self.path is None or self.index is None:
            return False
        write_index_file(self.index, self.path, model=self.model)
        self.unsaved = 0
        _remove_stale_temp_files(self.path)
        return True

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()

    def delete_file(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


_STALE_TEMP_S = 300.0


def _remove_stale_temp_files(path: Path) -> None:
    """Delete temp files of saves that a crash interrupted: they waste an index's worth of
    disk each and may hold vectors (and user ids) of users forgotten since. Only old ones:
    another process may be writing a fresh one to the same path right now."""
    cutoff = time.time() - _STALE_TEMP_S
    for tmp in path.parent.glob(glob.escape(path.name) + ".*.tmp"):
        with contextlib.suppress(OSError):  # already gone, or not ours to delete
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()


def _names(op: str, logged: str, user_id: str) -> bool:
    """Whether a purge entry is about ``user_id``: 'forget' entries carry only the user's
    digest (see ``writes.purge_user``), 'purge' entries of older databases the id itself."""
    return (user_digest(user_id) if op == "forget" else user_id) == logged


def _upsert_rows(index: PartitionedIndex, rows: list) -> int:  # type: ignore[type-arg]
    groups: dict[tuple[str, bool], list[tuple[int, bytes]]] = defaultdict(list)
    for pk, user_id, current, blob in rows:
        groups[(user_id, bool(current))].append((int(pk), blob))
    for (user_id, current), items in groups.items():
        pks = np.fromiter((p for p, _ in items), dtype=np.int64, count=len(items))
        vecs = np.frombuffer(b"".join(b for _, b in items), dtype="<f4").reshape(len(items), -1)
        index.upsert(user_id, current, pks, vecs)
    return len(rows)
