"""Turning texts into the store's unit vectors, calling the model only for unseen text.

Shared by the facade, import and re-embedding: it owns the model, the store's dimension and
two small caches (recent queries, recent texts by content hash). A text's vector is also
found in a loaded partition of its user (a stale partition is still right about it: a
vector is a function of the text) or among the user's stored rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from ..errors import EmbeddingMismatchError
from ..validation import check_embeddings
from .embedding import embedding_model_name, normalize_rows, unit_vector
from .partitions import Partitions
from .vector_cache import VectorCache
from .write_types import PreparedOp

__all__ = ["Embedder"]

_QUERY_CACHE = 1024
_VECTOR_CACHE = 4096  # recent memory vectors by content hash (~6 MB at 384 dimensions)


class Embedder:
    """The store's embedding model, its dimension and what it has already embedded."""

    def __init__(self, embeddings: Embeddings, dim: int | None, partitions: Partitions,
                 stored: Callable[[str, list[str]], dict[str, np.ndarray]]) -> None:
        self.embeddings = embeddings
        self.model_name = embedding_model_name(embeddings)
        self.dim = dim
        self._partitions = partitions
        self._stored = stored  # (user, content hashes) -> the user's stored vectors
        self._queries = VectorCache(_QUERY_CACHE)  # by query text
        self._texts = VectorCache(_VECTOR_CACHE)  # by content hash

    def use(self, embeddings: Embeddings) -> None:
        """Switch to another model (re-embedding): every cached vector is forgotten."""
        self.embeddings = embeddings
        self.model_name = embedding_model_name(embeddings)
        self.forget()

    def keep_queries(self, count: int) -> None:
        """Cache at least ``count`` query vectors (benchmarks re-asking many questions)."""
        self._queries.capacity = max(self._queries.capacity, count)

    def forget(self) -> None:
        self._queries.clear()
        self._texts.clear()

    def check_dim(self, dim: int) -> None:
        """Adopt the first dimension seen; refuse any other after it."""
        if self.dim is None:
            self.dim = dim
        elif dim != self.dim:
            raise EmbeddingMismatchError(
                f"embedding has {dim} dimensions; this store holds {self.dim}-dimensional vectors",
                stored=str(self.dim), given=str(dim),
            )

    # ------------------------------------------------------------------ queries
    def query(self, query: str) -> np.ndarray:
        """The normalised query vector (cached): shared by search and the pipeline."""
        vec = self._queries.get(query)
        return vec if vec is not None else self._remember(
            query, self.embeddings.embed_query(query))

    async def aquery(self, query: str) -> np.ndarray:
        vec = self._queries.get(query)
        return vec if vec is not None else self._remember(
            query, await self.embeddings.aembed_query(query))

    def _remember(self, query: str, raw: Sequence[float]) -> np.ndarray:
        vec = unit_vector(check_embeddings([raw], 1, allow_zero=True)[0])
        self._queries.put_many([(query, vec)])
        return vec

    # ------------------------------------------------------------------ texts
    def missing(self, prepared: list[PreparedOp], user_id: str | None
                ) -> tuple[dict[str, str], dict[str, np.ndarray]]:
        """Texts (by digest) with no vector yet, and the known vectors of the others.

        Returned, not kept: concurrent calls (async twins, threads) must not see each
        other's.
        """
        wanted: dict[str, str] = {}
        for op in prepared:
            if op.digest is not None and op.text is not None and op.vector is None:
                wanted.setdefault(op.digest, op.text)
        if not wanted:
            return {}, {}
        known = self.known(user_id, wanted)
        return {h: text for h, text in wanted.items() if h not in known}, known

    def known(self, user_id: str | None, wanted: dict[str, str]) -> dict[str, np.ndarray]:
        """Stored vectors for these texts (by digest): identical text is not embedded twice.

        Found among the vectors this process embedded recently, in the user's loaded
        partition, or else among the user's current rows.
        """
        known = self._texts.get_many(wanted)
        rest = [h for h in wanted if h not in known]
        if rest and user_id is not None:
            part = self._partitions.cached(user_id)
            if part is not None:
                for h in rest:
                    vec = part.vector_of(h)
                    if vec is not None:
                        known[h] = vec
                rest = [h for h in rest if h not in known]
            if rest and part is None:
                known.update(self._stored(user_id, rest))
        return known

    def vectors(self, prepared: list[PreparedOp], missing: dict[str, str],
                raw: Sequence[Sequence[float]],
                known: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every new text's unit vector by digest; caller-supplied vectors normalised."""
        vectors = dict(known)
        if missing:
            matrix = normalize_rows(check_embeddings(raw, len(missing)))
            if matrix.shape[0] != len(missing):
                raise EmbeddingMismatchError(
                    f"the model returned {matrix.shape[0]} vectors for {len(missing)} texts")
            self.check_dim(matrix.shape[1])
            vectors.update(zip(missing, matrix))
        for op in prepared:
            if op.vector is not None:
                self.check_dim(op.vector.shape[0])
                op.vector = normalize_rows(op.vector)[0]
        return vectors

    def committed(self, vectors: dict[str, np.ndarray]) -> None:
        """These texts are stored now: remember their vectors."""
        self._texts.put_many(vectors.items())
