"""The vector index: one exact partition per (user, current/superseded).

A partition is a contiguous float32 matrix, so a scoped search is one matrix-vector product
(about 10 microseconds for a typical user; FAISS's flat search costs the same arithmetic
but wakes OpenMP threads, which on a busy machine adds milliseconds). Partitions of more
than ``APPROX_MIN_VECTORS`` also get a FAISS IVF index for approximate search.

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
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from .files import atomic_write

__all__ = ["IndexFileError", "PartitionKey", "PartitionedIndex", "SavedIndex", "read_index_file"]

log = logging.getLogger(__name__)

_MAGIC = b"LPMIDX02"  # 02: contiguous partitions, word-sum checksum
PartitionKey = tuple[str, bool]  # (user_id, is_current)


class IndexFileError(Exception):
    """The saved index cannot be trusted; the caller rebuilds from SQL."""


# A partition this large (one user with very many memories) is also searched through a
# FAISS inverted-file index: a scan of 100k vectors costs ~15-40 ms here, the IVF ~1-2 ms
# at recall@10 of 1.0 on the benchmark's topic-clustered data. None: always exact.
APPROX_MIN_VECTORS: int | None = 20_000
_ANN_CELLS = 256  # k-means cells; a search probes 1/8 of them
_ANN_PROBES = 32


class _Partition:
    """One (user, current) key: its vectors in one contiguous float32 matrix.

    Exact search is then a single matrix-vector product. Rows are unordered; a removal
    moves tail rows into the holes, so the live rows stay the prefix ``[:n]``. Large
    partitions also keep ``ann``, an IVF index built on first search and updated with
    every add and removal (rebuilt when the partition has doubled since it was trained).
    """

    __slots__ = ("ann", "ann_trained_on", "ids", "n", "vecs")

    def __init__(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        self.ids, self.vecs, self.n = ids, vecs, len(ids)
        self.ann: faiss.IndexIVFFlat | None = None
        self.ann_trained_on = 0

    def add(self, pks: np.ndarray, vectors: np.ndarray) -> None:
        need = self.n + len(pks)
        if need > len(self.ids):  # grow geometrically (also detaches views of a loaded file)
            cap = max(need, 2 * len(self.ids), 8)
            ids = np.empty(cap, dtype=np.int64)
            vecs = np.empty((cap, self.vecs.shape[1]), dtype=np.float32)
            ids[:self.n] = self.ids[:self.n]
            vecs[:self.n] = self.vecs[:self.n]
            self.ids, self.vecs = ids, vecs
        self.ids[self.n:need] = pks
        self.vecs[self.n:need] = vectors
        self.n = need
        if self.ann is not None:
            self.ann.add_with_ids(self.vecs[need - len(pks):need], self.ids[need - len(pks):need])

    def remove(self, pks: np.ndarray) -> None:
        n = self.n
        gone = np.isin(self.ids[:n], pks)
        new_n = n - int(gone.sum())
        if new_n == n:
            return
        if self.ann is not None:  # by id through its hash table: no scan of the lists
            drop = np.ascontiguousarray(self.ids[:n][gone])
            self.ann.remove_ids(faiss.IDSelectorArray(len(drop), faiss.swig_ptr(drop)))
        holes = np.flatnonzero(gone[:new_n])
        movers = new_n + np.flatnonzero(~gone[new_n:])
        self.ids[holes] = self.ids[movers]
        self.vecs[holes] = self.vecs[movers]
        self.n = new_n

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ids[:self.n], self.vecs[:self.n]

    def search(self, query: np.ndarray, k: int,
               allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None and APPROX_MIN_VECTORS is not None and self.n >= APPROX_MIN_VECTORS:
            return self._search_ann(query, k)
        ids, vecs = self.live()
        if allowed is not None:
            keep = np.isin(ids, allowed)
            ids, vecs = ids[keep], vecs[keep]
        scores = vecs @ query
        if k < len(scores):
            top = np.argpartition(scores, len(scores) - k)[len(scores) - k:]
        else:
            top = np.arange(len(scores))
        top = top[np.lexsort((-ids[top], -scores[top]))]  # ties: the newer memory first
        return ids[top], scores[top]

    def _search_ann(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.ann is None or self.n > 2 * self.ann_trained_on:
            self._build_ann()
        assert self.ann is not None
        scores, ids = self.ann.search(query.reshape(1, -1), min(k, self.n))
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]

    def _build_ann(self) -> None:
        ids, vecs = self.live()
        dim = vecs.shape[1]
        ann = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, _ANN_CELLS,
                                 faiss.METRIC_INNER_PRODUCT)
        ann.cp.niter = 10
        sample = np.random.default_rng(0).choice(self.n, min(self.n, 40 * _ANN_CELLS),
                                                 replace=False)
        ann.train(np.ascontiguousarray(vecs[np.sort(sample)]))
        ann.set_direct_map_type(faiss.DirectMap.Hashtable)
        ann.add_with_ids(vecs, ids)
        ann.nprobe = _ANN_PROBES
        self.ann, self.ann_trained_on = ann, self.n


class PartitionedIndex:
    """Per-user exact inner-product indexes keyed by the memory's integer primary key.

    Partitioning is structural: a search only ever touches the partitions of one user, so no
    other user's vectors are scanned, returned or able to crowd out the user's own.
    Thread-safe: every method takes the instance lock.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.watermark = 0
        self._parts: dict[PartitionKey, _Partition] = {}
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
                part = self._parts[key] = _Partition(np.empty(0, dtype=np.int64),
                                                     np.empty((0, self.dim), dtype=np.float32))
            part.add(pks, np.asarray(vectors, dtype=np.float32).reshape(len(pks), self.dim))
            self._where.update(dict.fromkeys(pks.tolist(), key))

    def remove(self, pks: Iterable[int]) -> None:
        with self.lock:
            by_part: dict[PartitionKey, list[int]] = {}
            for pk in (pks.tolist() if isinstance(pks, np.ndarray) else pks):
                key = self._where.pop(int(pk), None)
                if key is not None:
                    by_part.setdefault(key, []).append(int(pk))
            for key, ids in by_part.items():
                part = self._parts[key]
                part.remove(np.asarray(ids, dtype=np.int64))
                if part.n == 0:
                    del self._parts[key]

    def purge_user(self, user_id: str) -> None:
        with self.lock:
            for current in (True, False):
                part = self._parts.pop((user_id, current), None)
                if part is None:
                    continue
                for pk in part.live()[0].tolist():
                    self._where.pop(pk, None)

    # ------------------------------------------------------------------ reads
    def search(self, user_id: str, query: np.ndarray, k: int, *, include_superseded: bool,
               allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Exact top-k ``(pk, cosine)`` among the user's vectors, best first.

        ``allowed`` restricts the search to those pks (already filtered in SQL).
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        hits: list[tuple[int, float]] = []
        with self.lock:
            keys = [(user_id, True), (user_id, False)] if include_superseded else [(user_id, True)]
            for key in keys:
                part = self._parts.get(key)
                if part is None:
                    continue
                ids, scores = part.search(query, k, allowed)
                hits.extend(zip(ids.tolist(), scores.tolist()))
        if len(keys) > 1:
            hits.sort(key=lambda hit: (-hit[1], -hit[0]))
        return hits[:k]

    def size(self, user_id: str | None = None) -> int:
        with self.lock:
            if user_id is None:
                return len(self._where)
            return sum(p.n for key in ((user_id, True), (user_id, False))
                       if (p := self._parts.get(key)) is not None)

    def user_count(self) -> int:
        return len(self.user_ids())

    def user_ids(self) -> set[str]:
        with self.lock:
            return {u for u, _ in self._parts}

    def snapshot(self) -> dict[int, tuple[str, bool, np.ndarray]]:
        """Every indexed vector by pk, for consistency checks and tests."""
        out: dict[int, tuple[str, bool, np.ndarray]] = {}
        with self.lock:
            for (user_id, current), part in self._parts.items():
                ids, vecs = part.live()
                for pk, vec in zip(ids.tolist(), vecs):
                    out[pk] = (user_id, current, vec.copy())
        return out

    # ------------------------------------------------------------------ files
    def save(self, path: Path, *, model: str) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a file.

        Partitions are written straight from their matrices, without building one copy of
        the whole index in memory.
        """
        with self.lock:
            parts = [(key, *part.live()) for key, part in self._parts.items()]
            entries = [[user_id, current, len(ids)] for (user_id, current), ids, _ in parts]
            crc_ids = 0
            vec_sum = 0
            for _, ids, vecs in parts:
                crc_ids = zlib.crc32(ids, crc_ids)
                vec_sum = (vec_sum + _word_sum(vecs)) % _SUM_MOD
            len_ids = sum(ids.nbytes for _, ids, _ in parts)
            len_vecs = sum(vecs.nbytes for _, _, vecs in parts)
            header = json.dumps({
                "watermark": self.watermark, "dim": self.dim, "model": model,
                "partitions": entries, "crc_ids": crc_ids, "sum_vecs": vec_sum,
                "len_ids": len_ids, "len_vecs": len_vecs,
            }).encode("utf-8")
            with atomic_write(path) as fh:
                fh.write(_MAGIC + struct.pack("<Q", len(header)) + header)
                for _, ids, _ in parts:
                    fh.write(np.ascontiguousarray(ids, dtype="<i8").data)
                for _, _, vecs in parts:
                    fh.write(np.ascontiguousarray(vecs, dtype="<f4").data)


_SUM_MOD = 2**64


def _word_sum(vectors: np.ndarray) -> int:
    """Checksum of the vector payload: the sum of its 32-bit words.

    Detects truncation and overwritten bytes at memory speed; a CRC over a million
    vectors (1.5 GB) would take most of the reopen budget.
    """
    words = np.ascontiguousarray(vectors, dtype="<f4").reshape(-1).view("<u4")
    return int(words.sum(dtype=np.uint64))


@dataclass
class SavedIndex:
    index: PartitionedIndex
    model: str


def read_index_file(path: Path) -> SavedIndex:
    """Load a saved index; raise :class:`IndexFileError` if anything is off.

    The payload is read into one buffer and each partition starts as a view of it: no
    per-partition copies, so a million vectors load in about the time it takes to read.
    """
    try:
        with path.open("rb") as fh:
            data = bytearray(os.fstat(fh.fileno()).st_size)
            got = fh.readinto(data)
    except OSError as exc:
        raise IndexFileError(f"cannot read {path}: {exc}") from exc
    try:
        if got != len(data) or data[:8] != _MAGIC:
            raise IndexFileError("not an index file")
        (hlen,) = struct.unpack("<Q", data[8:16])
        header = json.loads(bytes(data[16:16 + hlen]))
        start = 16 + hlen
        len_ids, len_vecs = int(header["len_ids"]), int(header["len_vecs"])
        if len(data) != start + len_ids + len_vecs:
            raise IndexFileError("size mismatch (truncated or corrupt)")
        buf = memoryview(data)
        dim = int(header["dim"])
        ids = np.frombuffer(buf[start:start + len_ids], dtype="<i8")
        vecs = np.frombuffer(buf[start + len_ids:], dtype="<f4").reshape(-1, dim)
        if (zlib.crc32(ids) != header["crc_ids"]
                or _word_sum(vecs) % _SUM_MOD != header["sum_vecs"]):
            raise IndexFileError("checksum mismatch (corrupt)")
        index = PartitionedIndex(dim)
        offset = 0
        for user_id, current, count in header["partitions"]:
            key = (str(user_id), bool(current))
            part_ids = ids[offset:offset + count]
            index._parts[key] = _Partition(part_ids, vecs[offset:offset + count])
            index._where.update(dict.fromkeys(part_ids.tolist(), key))
            offset += count
        if offset != len(ids) or len(ids) != len(vecs) or len(index._where) != len(ids):
            raise IndexFileError("partition table does not match payload")
        index.watermark = int(header["watermark"])
        return SavedIndex(index=index, model=str(header["model"]))
    except IndexFileError:
        raise
    except Exception as exc:  # any parse failure means the file cannot be trusted
        raise IndexFileError(f"unreadable index file {path}: {exc}") from exc
