"""Searching one user: a fresh partition, the pure ranking over it, then the hits' rows.

A default search costs one version lookup (the partition is fresh) or a load of the
user's rows (first search, or another process wrote), in-memory ranking of that user's
memories, and one statement for the ``k`` rows returned. Only ``user_id``'s data is read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine

from ..errors import EmbeddingMismatchError, InvalidInputError
from ..models import ScoredMemory
from ..retrieval.hybrid import Ranked, rank
from ..retrieval.options import SearchOptions
from ..validation import check_min_score, check_user_id
from .embedder import Embedder
from .filters import SearchFilters, build_filter_query
from .partitions import Partitions, PartitionView
from .reader import Reader
from .schema import memories, read_meta

__all__ = ["Searcher", "search_args"]


class Searcher:
    """Gathers one user's candidates and returns ranked memories."""

    def __init__(self, engine: Engine, reader: Reader, partitions: Partitions,
                 embedder: Embedder, *, check_model: bool) -> None:
        self.engine = engine
        self.reader = reader
        self.partitions = partitions
        self.embedder = embedder
        self.check_model = check_model

    def search(self, query: str, vector: np.ndarray, user_id: str, k: int,
               filters: SearchFilters, min_score: float | None, options: SearchOptions,
               now: datetime) -> list[ScoredMemory]:
        return self._run(user_id, vector, filters, lambda view: rank(
            view, query, vector, k, options, now, min_score, self.embedder.query))

    def by_vector(self, vector: np.ndarray, user_id: str, k: int, filters: SearchFilters,
                  min_score: float | None) -> list[ScoredMemory]:
        """Plain cosine order, no re-ranking (``search_by_vector``)."""
        def nearest(view: PartitionView) -> list[Ranked]:
            return [Ranked(pk, score, score, False) for pk, score in view.dense(vector, k)
                    if min_score is None or score >= min_score]
        return self._run(user_id, vector, filters, nearest)

    def _run(self, user_id: str, vector: np.ndarray, filters: SearchFilters,
             ranking: Callable[[PartitionView], list[Ranked]]) -> list[ScoredMemory]:
        self.adopt_stored_dim()
        part = self.partitions.get(user_id)
        if part is None:
            return []
        if vector.shape[0] != part.dim:
            raise EmbeddingMismatchError(
                f"query vector has {vector.shape[0]} dimensions, the index {part.dim}")
        allowed = None
        if filters.needs_sql:
            with self.engine.connect() as conn:
                allowed = np.fromiter(
                    (r[0] for r in conn.execute(build_filter_query(
                        user_id, filters, columns=[memories.c.pk]))), dtype=np.int64)
            if allowed.size == 0:
                return []
        with part.lock:
            ranked = ranking(part.view(filters.include_superseded, allowed))
        if not ranked:
            return []
        rows = self.reader.memories(user_id, [r.pk for r in ranked])
        return [ScoredMemory(rows[r.pk], r.score, r.cosine, r.keyword_match)
                for r in ranked if r.pk in rows]  # a row deleted meanwhile is left out

    def adopt_stored_dim(self) -> None:
        """Opened empty, but another process may have stored the first vectors since."""
        if self.embedder.dim is not None:
            return
        with self.engine.connect() as conn:
            stored = read_meta(conn)
        if "embedding_dim" not in stored:
            return
        if self.check_model and stored.get("embedding_model") != self.embedder.model_name:
            raise EmbeddingMismatchError(
                f"another process stored vectors of {stored.get('embedding_model')!r} in "
                f"this store; this one uses {self.embedder.model_name!r}",
                stored=stored.get("embedding_model"), given=self.embedder.model_name)
        self.embedder.dim = int(stored["embedding_dim"])


def search_args(query: Any, user_id: Any, k: Any, include_superseded: bool,
                filters: dict[str, Any], min_score: Any = None
                ) -> tuple[str, int, SearchFilters, float | None]:
    """Check a search's arguments before any work (the query must be text to embed)."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("query must be a non-empty string", field="query")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 10_000:
        raise InvalidInputError("k must be an integer from 1 to 10000", field="k")
    parsed = SearchFilters.of(include_superseded=include_superseded, **filters) \
        if filters else SearchFilters.plain(include_superseded)
    return check_user_id(user_id), k, parsed, check_min_score(min_score)
