"""Adjusting fused relevance: recency, importance, query dates, questions, MMR, de-duplication.

Pure functions over scores and vectors so they are testable without a store. Multipliers
rather than additive terms keep a strong match strong: recency and importance can reorder
near-equals but cannot lift an unrelated memory above a relevant one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from .dates import TimeRange

__all__ = ["DETAIL_WORDS", "date_factor", "detail_factor", "importance_factor", "is_question",
           "mmr_order", "recency_factor"]

_DAY_S = 86_400.0
# A memory this long (in words) gets the whole detail bonus. On LoCoMo's tuning conversations,
# 15 / 20 / 30 words at weight 0.2 gave recall@10 0.843 / 0.842 / 0.836 (benchmarks/README.md).
DETAIL_WORDS = 15
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f](?=[^.!?\u3002\uff01\uff1f]*$)")


def is_question(text: str) -> bool:
    """Whether the last sentence of ``text`` asks something (its last end mark is a "?").

    Text after the last mark (a closing quote, an emoji, an attachment note) is ignored.
    """
    end = _SENTENCE_END.search(text)
    return end is not None and end.group() in "?\uff1f"


def recency_factor(said: datetime, now: datetime, half_life_days: float, weight: float) -> float:
    """``1 - weight`` floor plus ``weight`` decaying by half every ``half_life_days``."""
    age_days = max((now - said).total_seconds() / _DAY_S, 0.0)
    return float((1.0 - weight) + weight * 0.5 ** (age_days / half_life_days))


def importance_factor(importance: float, weight: float) -> float:
    """1 at the default importance 0.5; from ``1 - weight`` (0) to ``1 + weight`` (1)."""
    return 1.0 + weight * (2.0 * importance - 1.0)


def date_factor(said: datetime, span: TimeRange | None, boost: float) -> float:
    """``1 + boost`` for a memory said within the time the query names."""
    return 1.0 + boost if span is not None and said in span else 1.0


def detail_factor(words: int, weight: float) -> float:
    """``1 + weight`` for a memory of at least ``DETAIL_WORDS`` words, less for a shorter one.

    Why: a short turn ("Thanks!", "I love it!") rarely holds the fact a query asks for, yet
    can be as near to the query's vector as the turn that says what happened. Length is a
    cheap, language-agnostic stand-in for how much a memory states.
    """
    return 1.0 + weight * min(words, DETAIL_WORDS) / DETAIL_WORDS


def mmr_order(scores: Sequence[float], vectors: np.ndarray, k: int, *, lambda_: float | None,
              dedupe_threshold: float | None) -> list[int]:
    """Indices of up to ``k`` items, best first.

    With ``lambda_`` set, maximal marginal relevance: each pick maximises
    ``lambda_ * relevance - (1 - lambda_) * max cosine to the picks so far`` (relevance
    scaled to 0..1). With ``dedupe_threshold`` set, an item whose cosine to an earlier pick
    reaches it is skipped as a near-duplicate. ``vectors`` rows must be L2-normalised.
    """
    n = len(scores)
    if n == 0:
        return []
    rel = np.asarray(scores, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 1e-12 else np.ones(n)
    # One matrix-vector product per pick, not an n x n matrix up front: k is small, and a
    # matrix-matrix product may wake BLAS threads, which costs milliseconds on a busy machine.
    track = lambda_ is not None or dedupe_threshold is not None
    picked: list[int] = []
    closest = np.full(n, -1.0)  # max cosine of each item to the picks so far
    available = np.ones(n, dtype=bool)
    while len(picked) < k and available.any():
        if lambda_ is None:
            value = np.where(available, rel, -np.inf)
        else:
            value = np.where(available, lambda_ * rel - (1 - lambda_) * np.maximum(closest, 0),
                             -np.inf)
        best = int(np.argmax(value))
        available[best] = False
        if dedupe_threshold is not None and picked and closest[best] >= dedupe_threshold:
            continue
        picked.append(best)
        if track:
            closest = np.maximum(closest, vectors @ vectors[best])
    return picked
