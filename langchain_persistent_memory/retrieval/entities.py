"""Entities in ranking: the query's entities, memories about them, and one hop beyond.

Pure functions over what the store holds per user (each memory's subject and mentioned
entity keys, and which memories mention a key); no I/O, nothing of ``store/``.

* The query's entities are the user's known entity keys and aliases found among the
  query's word n-grams, so "what does melanie like" finds "melanie" without capitals and
  "what does my sister like" finds Anna when a memory said "my sister Anna".
* A memory whose subject (its speaker) is a query entity gains ``entity_weight`` of its
  relevance; one that only mentions one gains half of that.
* The topic: a query naming an entity ("What activities does Melanie do?") is mostly the
  name to an embedding model, and so is every memory said by or about Melanie. The query's
  vector with the name's direction taken out (reflected: ``q - 2 (q.n) n``) is compared
  with the memories, and with the entity's memories relative to their centroid (what they
  share, the name and the speaker's manner, cancels out), so the memories about activities
  rise among all of Melanie's.
* One hop: entities that the best candidates mention, other than the query's and the
  user's common ones, bring in the other memories that mention them ("Sweden" in a memory
  about a necklace links to the one about moving from home) at ``hop_weight`` of the
  seed's relevance.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import numpy as np

from ..entities import entity_key
from .words import STOPWORDS

__all__ = ["MAX_QUERY_WORDS", "entity_bonus", "hop_scores", "query_entities", "topic_scores",
           "topic_text", "without_names"]

MAX_QUERY_WORDS = 4  # longest entity name matched in a query, in words
_HOP_SEEDS = 5  # the best candidates whose entities lead one hop further
_HOP_MAX_MEMORIES = 12  # an entity mentioned more often than this is too common to link by
# How far a name's direction is pushed out of the query: 1 removes it, 2 reflects it. On
# LoCoMo's tuning conversations 1.0 / 1.5 / 2.0 / 3.0 gave nDCG@10 0.676 / 0.681 / 0.682 /
# 0.677 (benchmarks/README.md).
_NAME_REFLECTION = 2.0
_PUNCTUATION = ".,;:!?\"'()[]{}\u201c\u201d\u2018\u2019"


def query_entities(query: str, known: Callable[[str], bool],
                   resolve: Callable[[str], Collection[str]] | None = None) -> set[str]:
    """Keys of the user's entities named in ``query`` (longest match wins per position);
    ``resolve`` maps a matched name to the entities it means (an alias to its entity)."""
    found = _split_names(query, known)[0]
    return set(found) if resolve is None else {key for name in found for key in resolve(name)}


def _split_names(query: str, known: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """The query as (entity keys ``known`` accepts, the other words as written, lower case)."""
    raw = [w for w in query.replace("?", " ").split() if entity_key(w)]
    words = [entity_key(w) for w in raw]
    found: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_QUERY_WORDS, len(words) - i), 0, -1):
            key = " ".join(words[i:i + n])
            if known(key):
                found.append(key)
                i += n
                break
        else:
            if words[i] not in STOPWORDS:
                rest.append(raw[i].strip(_PUNCTUATION).lower())
            i += 1
    return found, rest


def topic_text(query: str, wanted: set[str]) -> str | None:
    """What ``query`` asks about its entities ``wanted``: its content words without their
    names (None when nothing is left: then the query has no topic to score)."""
    return " ".join(_split_names(query, wanted.__contains__)[1]) or None


def without_names(query: np.ndarray, names: list[np.ndarray]) -> np.ndarray | None:
    """The unit ``query`` vector with each name's unit vector reflected out of it (None if
    nothing is left): what the query asks besides who it names."""
    vector = query.astype(np.float64)
    for name in names:
        vector = vector - _NAME_REFLECTION * float(vector @ name) * name
    norm = float(np.linalg.norm(vector))
    return None if norm < 1e-6 else (vector / norm).astype(np.float32)


def topic_scores(rows: np.ndarray, topic: np.ndarray) -> np.ndarray:
    """Cosine of the ``topic`` vector to each row, both taken relative to the rows'
    centroid (rows: the unit vectors of one entity's memories)."""
    centre = rows.mean(axis=0)
    rel = rows - centre
    query = topic - centre
    norms = np.linalg.norm(rel, axis=1) * float(np.linalg.norm(query))
    scores: np.ndarray = (rel @ query) / np.maximum(norms, 1e-9)
    return scores


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
