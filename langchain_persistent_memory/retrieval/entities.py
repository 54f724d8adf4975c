"""Entities in ranking: the query's entities, memories about them, and one hop beyond.

Pure functions over what the store holds per user (each memory's subject and mentioned
entity keys, and which memories mention a key); no I/O, nothing of ``store/``.

* The query's entities are the user's known entity keys found among the query's word
  n-grams, so "what does melanie like" finds "melanie" without capitals.
* A memory whose subject (its speaker) is a query entity gains ``entity_weight`` of its
  relevance; one that only mentions one gains half of that.
* One hop: entities that the best candidates mention, other than the query's and the
  user's common ones, bring in the other memories that mention them ("Sweden" in a memory
  about a necklace links to the one about moving from home) at ``hop_weight`` of the
  seed's relevance.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from ..entities import entity_key

__all__ = ["MAX_QUERY_WORDS", "entity_bonus", "hop_scores", "query_entities"]

MAX_QUERY_WORDS = 4  # longest entity name matched in a query, in words
_HOP_SEEDS = 5  # the best candidates whose entities lead one hop further
_HOP_MAX_MEMORIES = 12  # an entity mentioned more often than this is too common to link by


def query_entities(query: str, known: Callable[[str], bool]) -> set[str]:
    """Keys of the user's entities named in ``query`` (longest match wins per position)."""
    words = entity_key(query.replace("?", " ")).split()
    found: set[str] = set()
    i = 0
    while i < len(words):
        for n in range(min(MAX_QUERY_WORDS, len(words) - i), 0, -1):
            key = " ".join(words[i:i + n])
            if known(key):
                found.add(key)
                i += n
                break
        else:
            i += 1
    return found


def entity_bonus(subject: str | None, mentions: Collection[str], wanted: set[str],
                 weight: float) -> float:
    """The multiplier of a memory's relevance for the query's entities ``wanted``."""
    if not wanted or weight == 0.0:
        return 1.0
    if subject is not None and subject in wanted:
        return 1.0 + weight
    if any(key in wanted for key in mentions):
        return 1.0 + weight / 2
    return 1.0


def hop_scores(relevance: Mapping[int, float], mentions: Callable[[int], Collection[str]],
               members: Callable[[str, int], list[int] | None], wanted: set[str],
               weight: float) -> dict[int, float]:
    """Scores of memories one shared entity away from the best candidates.

    ``members(key, limit)`` lists the memories that mention ``key``, or None when more than
    ``limit`` do. Each reached memory gets ``weight`` times its best seed's relevance.
    """
    if weight == 0.0 or not relevance:
        return {}
    seeds = sorted(relevance, key=relevance.__getitem__, reverse=True)[:_HOP_SEEDS]
    out: dict[int, float] = {}
    for seed in seeds:
        for key in mentions(seed):
            if key in wanted:
                continue
            for pk in members(key, _HOP_MAX_MEMORIES) or ():
                if pk != seed:
                    out[pk] = max(out.get(pk, 0.0), weight * relevance[seed])
    return out
