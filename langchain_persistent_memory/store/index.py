"""The FAISS side: one exact index per (user, current/superseded) partition.

The index is derived data. It remembers the change-log sequence number it has applied (its
watermark), catches up by replaying ``lpm_changes`` from SQL, and is saved to one file whose
header carries the watermark, the embedding model and a checksum. Anything unexpected in
that file (missing, truncated, corrupt, another model, a watermark from the future) means:
rebuild from the vectors stored in SQL. The embedding model is never called here.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

__all__ = ["IndexFileError", "PartitionKey", "PartitionedIndex", "SavedIndex", "read_index_file"]

log = logging.getLogger(__name__)

_MAGIC = b"LPMIDX01"
PartitionKey = tuple[str, bool]  # (user_id, is_current)


class IndexFileError(Exception):
    """The saved index cannot be trusted; the caller rebuilds from SQL."""


def _new_partition(dim: int) -> faiss.IndexIDMap2:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


class PartitionedIndex:
    """Per-user exact inner-product indexes keyed by the memory's integer primary key.

    Partitioning is structural: a search only ever touches the partitions of one user, so no
    other user's vectors are scanned, returned or able to crowd out the user's own.
    Thread-safe: every method takes the instance lock.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.watermark = 0
        self._parts: dict[PartitionKey, faiss.IndexIDMap2] = {}
        self._where: dict[int, PartitionKey] = {}
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ writes
    def upsert(self, user_id: str, current: bool, pks: np.ndarray, vectors: np.ndarray) -> None:
        """Place vectors in a partition, moving any pk that was elsewhere."""
        if len(pks) == 0:
            return
        pks = np.ascontiguousarray(pks, dtype=np.int64)
        with self.lock:
            self.remove(pks)
            key = (user_id, current)
            part = self._parts.get(key)
            if part is None:
                part = self._parts[key] = _new_partition(self.dim)
            part.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), pks)
            for pk in pks.tolist():
                self._where[pk] = key

    def remove(self, pks: Iterable[int]) -> None:
        with self.lock:
            by_part: dict[PartitionKey, list[int]] = {}
            for pk in pks:
                key = self._where.pop(int(pk), None)
                if key is not None:
                    by_part.setdefault(key, []).append(int(pk))
            for key, ids in by_part.items():
                part = self._parts[key]
                part.remove_ids(np.asarray(ids, dtype=np.int64))
                if part.ntotal == 0:
                    del self._parts[key]

    def purge_user(self, user_id: str) -> None:
        with self.lock:
            for current in (True, False):
                part = self._parts.pop((user_id, current), None)
                if part is None:
                    continue
                for pk in faiss.vector_to_array(part.id_map).tolist():
                    self._where.pop(pk, None)

    # ------------------------------------------------------------------ reads
    def search(self, user_id: str, query: np.ndarray, k: int, *, include_superseded: bool,
               allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Exact top-k ``(pk, cosine)`` among the user's vectors, best first.

        ``allowed`` restricts the search to those pks (already filtered in SQL).
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(
                sel=faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            )
        hits: list[tuple[int, float]] = []
        with self.lock:
            keys = [(user_id, True), (user_id, False)] if include_superseded else [(user_id, True)]
            for key in keys:
                part = self._parts.get(key)
                if part is None or part.ntotal == 0:
                    continue
                scores, ids = part.search(query, min(k, part.ntotal), params=params)
                hits.extend((int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0)
        hits.sort(key=lambda hit: -hit[1])
        return hits[:k]

    def size(self, user_id: str | None = None) -> int:
        with self.lock:
            if user_id is None:
                return len(self._where)
            return sum(p.ntotal for (u, _), p in self._parts.items() if u == user_id)

    def user_count(self) -> int:
        with self.lock:
            return len({u for u, _ in self._parts})

    def snapshot(self) -> dict[int, tuple[str, bool, np.ndarray]]:
        """Every indexed vector by pk, for consistency checks and tests."""
        out: dict[int, tuple[str, bool, np.ndarray]] = {}
        with self.lock:
            for (user_id, current), part in self._parts.items():
                ids = faiss.vector_to_array(part.id_map)
                for pk in ids.tolist():
                    out[pk] = (user_id, current, part.reconstruct(pk))
        return out

    # ------------------------------------------------------------------ files
    def save(self, path: Path, *, model: str) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a file."""
        with self.lock:
            entries = []
            id_chunks: list[np.ndarray] = []
            vec_chunks: list[np.ndarray] = []
            for (user_id, current), part in self._parts.items():
                ids = faiss.vector_to_array(part.id_map).astype(np.int64)
                flat = faiss.downcast_index(part.index)
                vecs = faiss.rev_swig_ptr(flat.get_xb(), part.ntotal * self.dim)
                entries.append([user_id, current, len(ids)])
                id_chunks.append(ids)
                vec_chunks.append(np.array(vecs, dtype=np.float32).reshape(-1, self.dim))
            watermark = self.watermark
        ids_blob = (np.concatenate(id_chunks) if id_chunks else np.zeros(0, np.int64)).tobytes()
        vec_blob = (np.concatenate(vec_chunks) if vec_chunks
                    else np.zeros((0, self.dim), np.float32)).tobytes()
        header = json.dumps({
            "watermark": watermark, "dim": self.dim, "model": model, "partitions": entries,
            "crc_ids": zlib.crc32(ids_blob), "crc_vecs": zlib.crc32(vec_blob),
            "len_ids": len(ids_blob), "len_vecs": len(vec_blob),
        }).encode("utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_MAGIC + struct.pack("<Q", len(header)) + header)
                fh.write(ids_blob)
                fh.write(vec_blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class SavedIndex:
    index: PartitionedIndex
    model: str


def read_index_file(path: Path) -> SavedIndex:
    """Load a saved index; raise :class:`IndexFileError` if anything is off."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexFileError(f"cannot read {path}: {exc}") from exc
    try:
        if data[:8] != _MAGIC:
            raise IndexFileError("not an index file")
        (hlen,) = struct.unpack("<Q", data[8:16])
        header = json.loads(data[16:16 + hlen])
        start = 16 + hlen
        ids_blob = data[start:start + header["len_ids"]]
        vec_blob = data[start + header["len_ids"]:start + header["len_ids"] + header["len_vecs"]]
        if (len(ids_blob) != header["len_ids"] or len(vec_blob) != header["len_vecs"]
                or zlib.crc32(ids_blob) != header["crc_ids"]
                or zlib.crc32(vec_blob) != header["crc_vecs"]):
            raise IndexFileError("checksum mismatch (truncated or corrupt)")
        dim = int(header["dim"])
        ids = np.frombuffer(ids_blob, dtype=np.int64)
        vecs = np.frombuffer(vec_blob, dtype=np.float32).reshape(-1, dim)
        index = PartitionedIndex(dim)
        offset = 0
        for user_id, current, count in header["partitions"]:
            index.upsert(str(user_id), bool(current), ids[offset:offset + count],
                         vecs[offset:offset + count])
            offset += count
        if offset != len(ids):
            raise IndexFileError("partition table does not match payload")
        index.watermark = int(header["watermark"])
        return SavedIndex(index=index, model=str(header["model"]))
    except IndexFileError:
        raise
    except Exception as exc:  # any parse failure means the file cannot be trusted
        raise IndexFileError(f"unreadable index file {path}: {exc}") from exc
