"""The vectors of one user's memories: a FAISS flat index, plus an IVF one when large.

Each :class:`VectorPartition` is a FAISS ``IndexFlatIP`` (exact inner product, which is
cosine on the store's unit vectors); one of more than ``APPROX_MIN_VECTORS`` vectors is also
served by a FAISS ``IndexIVFFlat`` for approximate search. A user's partition
(:mod:`.partitions`) holds two, current and superseded memories; a search only ever
touches one user's, so another user's vectors can neither be returned nor crowd out the
user's own. Derived data: built from the vectors in SQL, never from the embedding model.
"""

from __future__ import annotations

import faiss
import numpy as np

__all__ = ["APPROX_MIN_VECTORS", "Hit", "VectorPartition", "best_first"]

# A partition this large (one user with very many memories) is also searched through a
# FAISS inverted-file index: a scan of 100k vectors costs ~15-40 ms here, the IVF ~1-2 ms
# at recall@10 of 1.0 on the benchmark's topic-clustered data. None: always exact.
APPROX_MIN_VECTORS: int | None = 20_000
_ANN_CELLS = 256  # k-means cells; a search probes 1/8 of them
_ANN_PROBES = 32
_MIN_HEADROOM = 4  # rows reserved beyond a new partition's first batch
Hit = tuple[int, float]  # (pk, cosine)


def best_first(hit: Hit) -> tuple[float, int]:
    """Best first; among equal scores the newer memory (larger pk) first."""
    return -hit[1], -hit[0]


class VectorPartition:
    """Vectors in a FAISS flat index, addressed by the memories' integer keys.

    FAISS numbers a flat index's vectors by position, so ``ids[position]`` is the memory's
    pk. A removal moves tail rows into the holes and truncates the tail: no row shifts,
    which keeps deleting from a big partition cheap. Large partitions also keep ``ann``, an
    IVF index (keyed by pk) built on first search and updated with every add and removal,
    rebuilt when the partition has doubled since it was trained.
    """

    __slots__ = ("ann", "ann_trained_on", "flat", "ids", "n", "pos")

    def __init__(self, dim: int) -> None:
        self.flat = faiss.IndexFlatIP(dim)
        self.ids = np.empty(0, dtype=np.int64)
        self.n = 0
        self.ann: faiss.IndexIVFFlat | None = None
        self.ann_trained_on = 0
        self.pos: dict[int, int] = {}  # pk -> row

    def vectors(self) -> np.ndarray:
        """A view of FAISS's storage, row ``i`` for ``ids[i]``; valid until the next add."""
        dim = self.flat.d
        if self.n == 0:
            return np.empty((0, dim), dtype=np.float32)
        return faiss.rev_swig_ptr(self.flat.get_xb(), self.n * dim).reshape(self.n, dim)

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ids[:self.n], self.vectors()

    def add(self, pks: np.ndarray, vectors: np.ndarray) -> None:
        """``pks`` int64 and ``vectors`` C-contiguous float32 rows, one per pk."""
        need = self.n + len(pks)
        if self.n == 0:  # a new partition, usually filled in bulk (ingest, load, rebuild)
            self._reserve(need + max(_MIN_HEADROOM, need // 16))
        if need > len(self.ids):  # grow geometrically
            ids = np.empty(max(need, 2 * len(self.ids)), dtype=np.int64)
            ids[:self.n] = self.ids[:self.n]
            self.ids = ids
        self.ids[self.n:need] = pks
        self.pos.update(zip(pks.tolist(), range(self.n, need)))
        self.flat.add(vectors)
        self.n = need
        if self.ann is not None:
            self.ann.add_with_ids(vectors, self.ids[need - len(pks):need])

    def _reserve(self, rows: int) -> None:
        """Make room for ``rows`` vectors while the storage is empty, so it is allocated
        at exactly that size (growing a full one doubles it).

        Without headroom the first memory added to a bulk-filled partition reallocated it:
        a copy into fresh pages that cost a single add ~100 us at 1M memories. The
        headroom is a few rows per user (~6% of the index's memory).
        """
        size = self.flat.codes.size()
        self.flat.codes.resize(rows * self.flat.code_size)
        self.flat.codes.resize(size)
        if len(self.ids) < rows:
            self.ids = np.empty(rows, dtype=np.int64)

    def remove(self, pks: np.ndarray) -> None:
        n = self.n
        gone = np.isin(self.ids[:n], pks)
        new_n = n - int(gone.sum())
        if new_n == n:
            return
        if self.ann is not None:  # by id through its hash table (which needs an array)
            drop = np.ascontiguousarray(self.ids[:n][gone])
            self.ann.remove_ids(faiss.IDSelectorArray(len(drop), faiss.swig_ptr(drop)))
        holes = np.flatnonzero(gone[:new_n])
        movers = new_n + np.flatnonzero(~gone[new_n:])
        vecs = self.vectors()
        for pk in self.ids[:n][gone].tolist():
            del self.pos[pk]
        self.ids[holes] = self.ids[movers]
        vecs[holes] = vecs[movers]
        self.pos.update(zip(self.ids[holes].tolist(), holes.tolist()))
        self.flat.remove_ids(faiss.IDSelectorRange(new_n, n))  # truncates: nothing shifts
        self.n = new_n

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> list[Hit]:
        """The top ``k`` hits for a ``(1, dim)`` query, unordered; one more, or all the
        candidates when scores tie at the cut. The caller ranks and cuts."""
        if allowed is None and APPROX_MIN_VECTORS is not None and self.n >= APPROX_MIN_VECTORS:
            return self._search_ann(query, k)
        params = None
        candidates = self.n
        if allowed is not None:  # only these pks: FAISS skips the other positions
            positions = np.flatnonzero(np.isin(self.ids[:self.n], allowed))
            candidates = len(positions)
            if candidates == 0:
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(positions))  # type: ignore[call-arg]
        scores, found = self.flat.search(query, min(k + 1, candidates), params=params)
        values = scores[0].tolist()
        if candidates > k + 1 and values[k - 1] == values[k]:
            # A tie at the cut: FAISS kept whichever it met first; take every candidate
            # so the caller's ranking keeps the newer ones (exact duplicates only: rare).
            scores, found = self.flat.search(query, candidates, params=params)
            values = scores[0].tolist()
        at = found[0]
        return [(pk, score) for pk, score, i in zip(self.ids[at].tolist(), values, at.tolist())
                if i >= 0]  # -1: FAISS found fewer (only with NaN vectors)

    def _search_ann(self, query: np.ndarray, k: int) -> list[Hit]:
        if self.ann is None or self.n > 2 * self.ann_trained_on:
            self._build_ann()
        assert self.ann is not None
        scores, ids = self.ann.search(query, min(k, self.n))
        return [(pk, score) for pk, score in zip(ids[0].tolist(), scores[0].tolist())
                if pk >= 0]

    def _build_ann(self) -> None:
        ids, vecs = self.live()
        dim = vecs.shape[1]
        ann = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, _ANN_CELLS,
                                 faiss.METRIC_INNER_PRODUCT)
        ann.cp.niter = 10
        sample = np.random.default_rng(0).choice(self.n, min(self.n, 40 * _ANN_CELLS),
                                                 replace=False)
        ann.train(np.ascontiguousarray(vecs[np.sort(sample)]))
        ann.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        ann.add_with_ids(vecs, np.ascontiguousarray(ids))
        ann.nprobe = _ANN_PROBES
        self.ann, self.ann_trained_on = ann, self.n

    def rows(self, pks: list[int]) -> np.ndarray:
        """The vectors of these pks (all must be present), as a new matrix."""
        return self.vectors()[[self.pos[pk] for pk in pks]]

    def search_one(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> list[Hit]:
        """:meth:`search` with FAISS on one thread: on a busy machine waiting for a
        descheduled OpenMP thread costs milliseconds, more than the search itself (the
        count is per calling thread: no one else is affected)."""
        if self.n == 0:
            return []
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self.search(query, k, allowed)
        finally:
            faiss.omp_set_num_threads(threads)
