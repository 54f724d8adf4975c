"""Fusing dense and keyword evidence into one relevance score (pure functions).

Two methods, both measured on LoCoMo (benchmarks/README.md):

* weighted: every candidate gets both scores — its exact cosine to the query (the store has
  every vector) and its keyword score (0 when no term matched) — each scaled to 0..1 over
  the candidate set, then mixed with ``dense_weight``. Using real scores for candidates that
  only one retriever found is what lifts it above rank-based fusion.
* rrf: reciprocal rank fusion, ``sum 1 / (k + rank)``; ignores score magnitudes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

__all__ = ["RRF_K", "min_max", "rrf", "weighted_fusion"]

RRF_K = 60
K = TypeVar("K", bound=Hashable)  # a candidate's key (memory id or integer key)


def min_max(scores: Mapping[K, float]) -> dict[K, float]:
    """Scale to 0..1 over the candidates (all equal -> all 1)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high - low <= 1e-12:
        return dict.fromkeys(scores, 1.0)
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def weighted_fusion(dense: Mapping[K, float], keyword: Mapping[K, float],
                    dense_weight: float) -> dict[K, float]:
    """``dense_weight * dense' + (1 - dense_weight) * keyword'`` over the union.

    ``dense`` should hold a cosine for every candidate; ``keyword`` only the matches
    (a missing candidate scores 0). Keyword scores are divided by the best one, so 0 stays
    "no term matched" rather than becoming the worst match.
    """
    keys = list(dict.fromkeys([*dense, *keyword]))
    dense_n = min_max({k: dense.get(k, 0.0) for k in keys})
    best = max((v for v in keyword.values() if v > 0), default=0.0)
    return {k: dense_weight * dense_n[k]
            + (1.0 - dense_weight) * (max(keyword.get(k, 0.0), 0.0) / best if best else 0.0)
            for k in keys}


def rrf(rankings: Sequence[Sequence[K]], k: int = RRF_K) -> dict[K, float]:
    """Reciprocal rank fusion of best-first rankings."""
    fused: dict[K, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return fused
