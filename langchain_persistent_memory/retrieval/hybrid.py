"""One search's ranking: dense and keyword candidates, fused, re-weighted, diversified.

Pure code over a :class:`CandidatePool`, which the store builds from one user's partition
(vectors, keyword statistics and a few facts per memory, all already in memory): no I/O
here, and nothing of ``store/`` is imported. The pool only ever holds the memories the
search may return (the user's, current unless asked otherwise, passing the filters).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, Protocol

import numpy as np

from .dates import asks_when, parse_query_time
from .entities import (
    entity_bonus,
    hop_scores,
    query_entities,
    topic_scores,
    topic_text,
    without_names,
)
from .fusion import rrf, weighted_fusion
from .options import SearchOptions
from .rerank import date_factor, detail_factor, importance_factor, mmr_order, recency_factor

__all__ = ["CandidatePool", "Embed", "Facts", "Ranked", "rank"]

_CONTEXT_SEEDS = 20  # the best candidates whose session neighbours are looked up
_CONTEXT_SPAN = 3  # neighbours are found among memories within this many keys
_ENTITY_CANDIDATES = 12  # a query entity named by at most this many memories adds them all
_CONTEXT_REACH = 2  # neighbours up to this many turns away count (question, answer, follow-up)
_TOPIC_CANDIDATES = 40  # the memories nearest to the query's topic join the candidates
_FOCUS_CANDIDATES = 20  # and so do the entity's memories with the best focus score
_TOPIC_MAX_MEMORIES = 5000  # an entity named more often is scored by the whole query only

Embed = Callable[[str], np.ndarray]  # a text's unit vector (the store's cached query embedding)


class Facts(NamedTuple):
    """What ranking needs to know of a memory besides its vector."""

    session_id: str | None
    valid_from: datetime
    importance: float
    question: bool  # its last sentence asks something (see ``rerank.is_question``)
    subject: str | None = None  # key of the entity it is about (its speaker), if any
    mentions: frozenset[str] = frozenset()  # keys of the other entities it names
    timed: bool = False  # it says when something happened ("yesterday", "in 2022")
    words: int = 0  # its length in words (``detail_factor``)


class Ranked(NamedTuple):
    """One result: the memory's key, its ranking score and its absolute relevance."""

    pk: int
    score: float
    cosine: float
    keyword_match: bool


class CandidatePool(Protocol):
    """The memories one search may return, as the store holds them in memory."""

    def dense(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        """The ``n`` nearest ``(pk, cosine)``, best first."""
        ...

    def keyword(self, query: str, n: int) -> dict[int, float]:
        """Keyword scores (higher is better) of the ``n`` best matches of ``query``."""
        ...

    def vectors(self, pks: list[int]) -> np.ndarray:
        """The unit vectors of ``pks``, one row each."""
        ...

    def facts(self, pk: int) -> Facts: ...

    def neighbours(self, pks: list[int], span: int) -> list[int]:
        """Memories of the same session as one of ``pks`` whose key is within ``span``."""
        ...

    def knows_entity(self, key: str) -> bool:
        """Whether some memory of the user names the entity ``key``."""
        ...

    def entity_keys(self, key: str) -> set[str]:
        """The entities a known name means: itself, and those it is an alias of."""
        ...

    def entity_members(self, key: str, limit: int) -> list[int] | None:
        """The visible memories naming ``key`` (subject or mention); None if over ``limit``."""
        ...


def rank(pool: CandidatePool, query: str, vector: np.ndarray, k: int,
         options: SearchOptions, now: datetime, min_score: float | None,
         embed: Embed | None = None) -> list[Ranked]:
    """The ``k`` best memories of ``pool`` for ``query`` under ``options``, best first.

    ``min_score`` is always a cosine-similarity floor (its meaning in every mode); the
    score is the final ranking score, relative to this search's candidates. ``embed``
    embeds the names of the query's entities (cached by the store: one model call per
    name, not per search) to take them out of the query's vector; without it, no topic.
    """
    n = max(options.candidates, k)
    dense: dict[int, float] = {}
    if options.mode != "keyword":
        dense = dict(pool.dense(vector, n))
    keyword = pool.keyword(query, n) if options.mode != "dense" else {}
    ids = list(dict.fromkeys([*dense, *keyword]))
    if not ids:
        return []
    wanted = query_entities(query, pool.knows_entity, pool.entity_keys) \
        if options.entity_weight > 0 or options.hop_weight > 0 else set()
    for key in sorted(wanted):  # the few memories naming an uncommon entity are candidates
        ids += [pk for pk in pool.entity_members(key, _ENTITY_CANDIDATES) or ()
                if pk not in dense and pk not in keyword]
    about = _about(pool, query, wanted, embed, options, vector)
    if about is not None:
        ids += about.candidates
    ids = list(dict.fromkeys(ids))
    vectors = pool.vectors(ids)

    def similarity(rows: np.ndarray) -> list[float]:
        """The dense side of fusion: the cosine to the query, plus to its topic."""
        scores = rows @ vector
        if about is not None:
            scores = scores + options.topic_weight * (rows @ about.vector)
        return scores.tolist()  # type: ignore[no-any-return]

    cosine = dict(zip(ids, (vectors @ vector).tolist()))
    similar = cosine if about is None else dict(zip(ids, similarity(vectors)))
    facts = {pk: pool.facts(pk) for pk in ids}

    def gather(extra: list[int]) -> None:
        """Add candidates found late (session neighbours, entity hops)."""
        nonlocal vectors
        if not extra:
            return
        more = pool.vectors(extra)
        vectors = np.concatenate([vectors, more])
        cosine.update(zip(extra, (more @ vector).tolist()))
        if about is not None:
            similar.update(zip(extra, similarity(more)))
        facts.update((pk, pool.facts(pk)) for pk in extra)
        ids.extend(extra)

    focus = {} if about is None else about.focus
    if options.mode == "keyword":
        relevance = dict(keyword)
    else:
        relevance = _fuse(options, similar, dense, keyword, focus)
        context = options.context_weight > 0 or options.answer_weight > 0
        if context:
            seeds = sorted(relevance, key=relevance.__getitem__, reverse=True)[:_CONTEXT_SEEDS]
            gather([pk for pk in pool.neighbours(seeds, _CONTEXT_SPAN) if pk not in cosine])
        questions = {pk for pk in ids if facts[pk].question}
        if context:
            relevance = _with_context(_fuse(options, similar, dense, keyword, focus), facts,
                                      questions, options)
        if options.question_discount > 0:
            relevance = {pk: score * (1.0 - options.question_discount)
                         if pk in questions else score for pk, score in relevance.items()}
        if options.hop_weight > 0:
            hops = hop_scores(relevance, lambda pk: facts[pk].mentions, pool.entity_members,
                              wanted, options.hop_weight)
            gather([pk for pk in hops if pk not in cosine])
            for pk, score in hops.items():
                relevance[pk] = relevance.get(pk, 0.0) + score

    span = parse_query_time(query, now) if options.date_boost > 0 else None
    when = options.time_boost > 0 and asks_when(query)
    scores = []
    for pk in ids:
        fact = facts[pk]
        score = relevance.get(pk, 0.0)
        if options.recency_half_life_days is not None:
            score *= recency_factor(fact.valid_from, now, options.recency_half_life_days,
                                    options.recency_weight)
        if options.importance_weight:
            score *= importance_factor(fact.importance, options.importance_weight)
        score *= date_factor(fact.valid_from, span, options.date_boost)
        score *= entity_bonus(fact.subject, fact.mentions, wanted, options.entity_weight)
        if when and fact.timed:
            score *= 1.0 + options.time_boost
        score *= detail_factor(fact.words, options.detail_weight)
        if min_score is not None and cosine[pk] < min_score:
            score = -np.inf
        scores.append(score)
    keep = [i for i, s in enumerate(scores) if s != -np.inf]
    order = mmr_order([scores[i] for i in keep], vectors[keep], k,
                      lambda_=options.mmr_lambda if options.mmr else None,
                      dedupe_threshold=options.dedupe_threshold)
    return [Ranked(ids[keep[i]], float(scores[keep[i]]), cosine[ids[keep[i]]],
                   ids[keep[i]] in keyword) for i in order]


def _fuse(options: SearchOptions, cosine: dict[int, float], dense: dict[int, float],
          keyword: dict[int, float], focus: dict[int, float]) -> dict[int, float]:
    if options.mode == "dense":
        out = dict(cosine)
    elif options.fusion == "rrf":
        out = rrf([sorted(dense, key=dense.__getitem__, reverse=True),
                   sorted(keyword, key=keyword.__getitem__, reverse=True)])
    else:
        out = weighted_fusion(cosine, keyword, options.dense_weight)
    best = max((focus[pk] for pk in out if pk in focus), default=0.0)
    if best > 0:  # the focus score, over the best candidate's, adds up to topic_focus
        for pk, score in out.items():
            out[pk] = score + options.topic_focus * max(focus.get(pk, 0.0), 0.0) / best
    return out


class _About(NamedTuple):
    """What a query naming entities asks about them: its topic's vector, the memories
    nearest to it, and the focus score of each memory naming the entities."""

    vector: np.ndarray
    candidates: list[int]
    focus: dict[int, float]


def _about(pool: CandidatePool, query: str, wanted: set[str], embed: Embed | None,
           options: SearchOptions, query_vector: np.ndarray) -> _About | None:
    """The topic of a query naming entities ("What activities does Melanie do?"): its
    vector without the names' directions; None when there is none or the options are off."""
    if embed is None or not wanted or options.mode != "hybrid" or \
            options.topic_weight == options.topic_focus == 0.0:
        return None
    if topic_text(query, wanted) is None:  # nothing but names and function words
        return None
    vector = without_names(query_vector, [embed(key) for key in sorted(wanted)])
    if vector is None:
        return None
    candidates = [pk for pk, _ in pool.dense(vector, _TOPIC_CANDIDATES)] \
        if options.topic_weight > 0 else []
    focus: dict[int, float] = {}
    if options.topic_focus > 0:
        members = list(dict.fromkeys(pk for key in sorted(wanted) for pk in
                                     pool.entity_members(key, _TOPIC_MAX_MEMORIES) or ()))
        if len(members) >= 2:
            focus = dict(zip(members, topic_scores(pool.vectors(members), vector).tolist()))
            candidates += sorted(focus, key=focus.__getitem__, reverse=True)[:_FOCUS_CANDIDATES]
    return _About(vector, candidates, focus)


def _with_context(relevance: dict[int, float], facts: dict[int, Facts],
                  questions: set[int], options: SearchOptions) -> dict[int, float]:
    """Add the best share of a session neighbour's relevance to each memory's own.

    A turn of a conversation often only makes sense next to the ones around it ("I see
    them once a week" answers "how often do you see sunsets?"): the query matches one, the
    fact is in another. A neighbour up to two turns away gives ``context_weight`` of its
    relevance; a question gives the turn right after it (its answer) ``answer_weight``
    instead. Neighbours are the session's candidates in key order, and only within
    ``_CONTEXT_SPAN`` keys (not across a gap among the candidates).
    """
    by_session: dict[str, list[int]] = {}
    for pk, fact in facts.items():
        if fact.session_id is not None:
            by_session.setdefault(fact.session_id, []).append(pk)
    out = dict(relevance)
    for members in by_session.values():
        members.sort()
        for pos, pk in enumerate(members):
            best = 0.0
            for step in range(1, _CONTEXT_REACH + 1):
                for j in (pos - step, pos + step):
                    if not 0 <= j < len(members) or abs(members[j] - pk) > _CONTEXT_SPAN:
                        continue
                    near = members[j]
                    share = options.answer_weight if j == pos - 1 and near in questions \
                        else options.context_weight
                    best = max(best, share * relevance.get(near, 0.0))
            out[pk] = relevance.get(pk, 0.0) + best
    return out
