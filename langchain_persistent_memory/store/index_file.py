"""The saved index: one file with a header, every partition's pks, then their vectors.

The header carries the watermark (the last change-log sequence the index contains), the
embedding model, the partition table and checksums. Anything unexpected (missing,
truncated, corrupt, another model, a watermark from the future) means the caller rebuilds
from the vectors stored in SQL.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from .files import atomic_write
from .index import PartitionedIndex

__all__ = ["IndexFileError", "SavedIndex", "read_index_file", "write_index_file"]

_MAGIC = b"LPMIDX02"  # 02: contiguous partitions, word-sum checksum
_SUM_MOD = 2**64
_READ_CHUNK = 32 << 20  # bytes of vectors read at once: few calls, one small buffer


class IndexFileError(Exception):
    """The saved index cannot be trusted; the caller rebuilds from SQL."""


@dataclass
class SavedIndex:
    index: PartitionedIndex
    model: str


def write_index_file(index: PartitionedIndex, path: Path, *, model: str) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file.

    Partitions are written straight from FAISS's storage, without a copy of the whole
    index in memory.
    """
    with index.lock:
        parts = index.partitions()
        crc_ids = 0
        vec_sum = 0
        for _, ids, vecs in parts:
            crc_ids = zlib.crc32(ids, crc_ids)
            vec_sum = (vec_sum + _word_sum(vecs)) % _SUM_MOD
        header = json.dumps({
            "watermark": index.watermark, "dim": index.dim, "model": model,
            "partitions": [[user_id, current, len(ids)] for (user_id, current), ids, _ in parts],
            "crc_ids": crc_ids, "sum_vecs": vec_sum,
            "len_ids": sum(ids.nbytes for _, ids, _ in parts),
            "len_vecs": sum(vecs.nbytes for _, _, vecs in parts),
        }).encode("utf-8")
        with atomic_write(path) as fh:
            fh.write(_MAGIC + struct.pack("<Q", len(header)) + header)
            for _, ids, _ in parts:
                fh.write(np.ascontiguousarray(ids, dtype="<i8").data)
            for _, _, vecs in parts:
                fh.write(np.ascontiguousarray(vecs, dtype="<f4").data)


def _word_sum(vectors: np.ndarray) -> int:
    """Checksum of the vector payload: the sum of its 32-bit words.

    Detects truncation and overwritten bytes at memory speed; a CRC over a million
    vectors (1.5 GB) would take most of the reopen budget.
    """
    words = np.ascontiguousarray(vectors, dtype="<f4").reshape(-1).view("<u4")
    return int(words.sum(dtype=np.uint64))


def read_index_file(path: Path) -> SavedIndex:
    """Load a saved index; raise :class:`IndexFileError` if anything is off.

    Vectors are read in chunks of several partitions and copied into each partition's
    FAISS index, so loading needs the index's memory plus one chunk, not twice the index.
    """
    try:
        with path.open("rb") as fh:
            return _read(fh, path)
    except IndexFileError:
        raise
    except Exception as exc:  # any read or parse failure means the file cannot be trusted
        raise IndexFileError(f"unreadable index file {path}: {exc}") from exc


def _read(fh: IO[bytes], path: Path) -> SavedIndex:
    size = path.stat().st_size
    if fh.read(8) != _MAGIC:
        raise IndexFileError("not an index file")
    (hlen,) = struct.unpack("<Q", fh.read(8))
    header: dict[str, Any] = json.loads(fh.read(hlen))
    dim = int(header["dim"])
    len_ids, len_vecs = int(header["len_ids"]), int(header["len_vecs"])
    table = [(str(u), bool(c), int(n)) for u, c, n in header["partitions"]]
    total = sum(n for _, _, n in table)
    if (size != 16 + hlen + len_ids + len_vecs or len_ids != 8 * total
            or len_vecs != 4 * dim * total):
        raise IndexFileError("size mismatch (truncated or corrupt)")
    ids = _read_array(fh, np.dtype("<i8"), total)
    if zlib.crc32(ids) != header["crc_ids"]:
        raise IndexFileError("checksum mismatch (corrupt)")
    index = PartitionedIndex(dim)
    vec_sum = 0
    offset = 0
    for entries, chunk in _vector_chunks(fh, table, dim):
        vec_sum = (vec_sum + _word_sum(chunk)) % _SUM_MOD
        at = 0
        for user_id, current, count in entries:
            index.upsert(user_id, current, ids[offset:offset + count], chunk[at:at + count])
            offset += count
            at += count
    if vec_sum != header["sum_vecs"]:
        raise IndexFileError("checksum mismatch (corrupt)")
    if index.size() != total:
        raise IndexFileError("partition table does not match payload")
    index.watermark = int(header["watermark"])
    return SavedIndex(index=index, model=str(header["model"]))


def _read_array(fh: IO[bytes], dtype: np.dtype[Any], count: int) -> np.ndarray:
    out = np.empty(count, dtype=dtype)
    if fh.readinto(memoryview(out).cast("B")) != out.nbytes:  # type: ignore[attr-defined]
        raise IndexFileError("size mismatch (truncated)")
    return out


def _vector_chunks(fh: IO[bytes], table: list[tuple[str, bool, int]], dim: int
                   ) -> Iterator[tuple[list[tuple[str, bool, int]], np.ndarray]]:
    """Consecutive partitions' entries and their vectors as one matrix, about
    ``_READ_CHUNK`` bytes at a time (one partition larger than that comes alone)."""
    row_bytes = 4 * dim
    start = 0
    while start < len(table):
        end, rows = start, 0
        while end < len(table) and (end == start or (rows + table[end][2]) * row_bytes
                                    <= _READ_CHUNK):
            rows += table[end][2]
            end += 1
        yield table[start:end], _read_array(fh, np.dtype("<f4"), rows * dim).reshape(rows, dim)
        start = end
