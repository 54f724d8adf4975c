"""Ranking options of ``MemoryStore.search``, validated once (no I/O).

Defaults were chosen on the LoCoMo benchmark's tuning conversations and checked on the
held-out ones (benchmarks/README.md): weighted fusion at 0.5 over 80 candidates per retriever,
session context 0.5 (0.7 from a question to its answer), questions discounted by 0.15,
entities 0.5 (the query's people and names), one entity hop at 0.2, "when" questions
preferring memories that say when (0.3), the topic of a query naming entities at 0.5 on the
dense side and 0.2 among the entities' memories, longer memories preferred by up to 0.2
(detail), MMR at lambda 0.8. Recency and
importance are off by default: they trade relevance for freshness or salience, a choice only
the application can make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from ..errors import InvalidInputError

__all__ = ["MODES", "SearchOptions"]

MODES = ("hybrid", "dense", "keyword")
FUSIONS = ("weighted", "rrf")


@dataclass(frozen=True)
class SearchOptions:
    """How candidates are found and ordered.

    Attributes:
        mode: ``"hybrid"`` (vectors + keywords), ``"dense"`` (vectors only, cosine scores)
            or ``"keyword"`` (full-text only).
        fusion: ``"weighted"`` (normalised score mix) or ``"rrf"`` (reciprocal rank fusion).
        dense_weight: share of the dense score in weighted fusion, 0..1.
        candidates: how many hits each retriever contributes before fusion (≥ k).
        recency_half_life_days: if set, older memories (by ``valid_from``) lose relevance:
            a memory this old keeps half of the ``recency_weight`` part of its score.
        recency_weight: how much of the score recency may take away, 0..1.
        importance_weight: 0 ignores ``importance``; 1 lets it scale scores by 0..2.
        context_weight: share of the best session neighbour's relevance added to a
            memory's own (memories of one conversation said up to two turns before / after
            it).
        answer_weight: the share instead when that neighbour is a question said right
            before the memory (so the memory is likely its answer); with
            ``context_weight`` 0 too, neighbour lookup is off.
        question_discount: share of relevance a memory loses when it ends with a question:
            a query, itself a question, matches stored questions by their form, but the
            fact is in the answer.
        date_boost: multiplier bonus for memories said within a time the query names
            ("in May 2023", "last week"); 0 turns query-date parsing off.
        entity_weight: share of relevance a memory gains when it is about an entity the
            query names (its speaker); half of it when it only mentions one. 0 turns
            entity matching off.
        hop_weight: share of a top candidate's relevance given to the memories one shared,
            uncommon entity away from it (multi-hop questions); 0 turns the hop off.
        time_boost: multiplier bonus, for a query asking "when", of memories that say when
            something happened ("yesterday", "last May"); 0 turns it off.
        topic_weight: for a query naming the user's entities ("What activities does Melanie
            do?"), the share of the cosine to its topic (the query's vector with the names'
            directions taken out) added to the cosine to the query on the dense side; the
            memories nearest to the topic join the candidates. Hybrid mode only.
        topic_focus: the same topic's score among the memories naming those entities,
            relative to their centroid, adds up to this much to their relevance. Both 0
            turn the topic off.
        detail_weight: multiplier bonus of a memory that says something at length: up to
            ``1 + detail_weight`` at 15 words or more, in proportion below, so one-line small
            talk ("Thanks!") gives way to statements of fact; 0 turns it off.
        mmr: diversify with maximal marginal relevance (``mmr_lambda`` = relevance share);
            on by default (measured), so near-repeats give way to other evidence.
        dedupe_threshold: drop a hit whose cosine to a better hit is at least this (None: off).
    """

    mode: str = "hybrid"
    fusion: str = "weighted"
    dense_weight: float = 0.5
    candidates: int = 80
    recency_half_life_days: float | None = None
    recency_weight: float = 0.5
    importance_weight: float = 0.0
    context_weight: float = 0.5
    answer_weight: float = 0.7
    question_discount: float = 0.15
    date_boost: float = 0.5
    entity_weight: float = 0.5
    hop_weight: float = 0.2
    time_boost: float = 0.3
    topic_weight: float = 0.5
    topic_focus: float = 0.2
    detail_weight: float = 0.2
    mmr: bool = True
    mmr_lambda: float = 0.8
    dedupe_threshold: float | None = 0.98

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"mode must be one of {MODES}", field="mode")
        if self.fusion not in FUSIONS:
            raise InvalidInputError(f"fusion must be one of {FUSIONS}", field="fusion")
        for name in ("dense_weight", "recency_weight", "importance_weight", "mmr_lambda",
                     "context_weight", "answer_weight", "question_discount", "entity_weight",
                     "hop_weight", "time_boost", "topic_weight", "topic_focus",
                     "detail_weight"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        _check_range("date_boost", self.date_boost, 0.0, 100.0)
        if self.dedupe_threshold is not None:
            _check_range("dedupe_threshold", self.dedupe_threshold, -1.0, 1.0)
        if self.recency_half_life_days is not None:
            _check_range("recency_half_life_days", self.recency_half_life_days, 1e-6, 1e6)
        if (isinstance(self.candidates, bool) or not isinstance(self.candidates, int)
                or not 1 <= self.candidates <= 10_000):
            raise InvalidInputError("candidates must be an integer from 1 to 10000",
                                    field="candidates")
        if not isinstance(self.mmr, bool):
            raise InvalidInputError("mmr must be True or False", field="mmr")

    @classmethod
    def split(cls, kwargs: dict[str, Any]) -> tuple[SearchOptions, dict[str, Any]]:
        """Separate ranking options from filters in ``search(**kwargs)``."""
        names = {f.name for f in fields(cls)}
        options = {k: v for k, v in kwargs.items() if k in names}
        rest = {k: v for k, v in kwargs.items() if k not in names}
        return cls(**options), rest


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not low <= value <= high):
        raise InvalidInputError(f"{name} must be a number from {low} to {high}", field=name)
