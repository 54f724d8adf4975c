"""One search: dense and keyword candidates, fused, re-weighted, diversified.

Runs after the query is embedded (sync or async caller alike), entirely on the store's
connections and index, within one user's scope: dense hits come from the user's FAISS
partition, keyword hits from a SQL statement that filters on ``user_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from ..models import Memory, ScoredMemory
from ..store.filters import SearchFilters, build_filter_query
from ..store.keyword import keyword_query, query_phrases, query_terms
from ..store.rows import MEMORY_COLUMNS, decode_vector, row_to_memory
from ..store.schema import memories
from .dates import parse_query_time
from .fusion import rrf, weighted_fusion
from .options import SearchOptions
from .rerank import date_factor, importance_factor, is_question, mmr_order, recency_factor

if TYPE_CHECKING:
    from ..store.memory_store import MemoryStore

__all__ = ["ranked_search"]

_CONTEXT_SEEDS = 20  # the best candidates whose session neighbours are looked up
_CONTEXT_SPAN = 3  # neighbours are found among memories within this many keys
_CONTEXT_REACH = 2  # neighbours up to this many turns away count (question, answer, follow-up)


def ranked_search(store: MemoryStore, query: str, vector: np.ndarray, user_id: str, k: int,
                  filters: SearchFilters, min_score: float | None,
                  options: SearchOptions, now: datetime) -> list[ScoredMemory]:
    """The user's ``k`` best memories for ``query`` under ``options``, best first.

    ``min_score`` is always a cosine-similarity floor (its meaning in every mode); the
    returned score is the final ranking score (the cosine itself in plain dense mode).
    """
    store._adopt_stored_dim()  # opened empty? another process may have stored vectors since
    n = max(options.candidates, k)
    found: dict[str, Memory] = {}
    dense: dict[str, float] = {}
    if options.mode != "keyword":
        for hit in store._search_vector(vector, user_id, n, filters, None):
            found[hit.memory.id] = hit.memory
            dense[hit.memory.id] = hit.score
    keyword: dict[str, float] = {}
    terms = query_terms(query)
    if options.mode != "dense" and terms:
        with store.engine.connect() as conn:
            for row in conn.execute(keyword_query(conn, user_id, filters, terms, n,
                                                  MEMORY_COLUMNS, query_phrases(query))):
                keyword[row.id] = float(row.kw_score)
                found.setdefault(row.id, row_to_memory(row))
    if not found:
        return []

    details = _details(store, user_id, list(found))
    found = {mid: m for mid, m in found.items() if mid in details}  # deleted meanwhile
    if not found:
        return []
    dense = {mid: s for mid, s in dense.items() if mid in found}
    keyword = {mid: s for mid, s in keyword.items() if mid in found}
    if options.mode == "keyword":
        relevance = dict(keyword)
    else:
        relevance = _fuse(options, vector, details, dense, keyword)
        context = options.context_weight > 0 or options.answer_weight > 0
        if context:
            seeds = sorted(relevance, key=relevance.__getitem__, reverse=True)[:_CONTEXT_SEEDS]
            known = {d.pk for d in details.values()}
            for memory, detail in _neighbours(store, user_id, filters,
                                              [details[i] for i in seeds], known):
                found[memory.id] = memory
                details[memory.id] = detail
        questions = {mid for mid, m in found.items() if is_question(m.content)}
        if context:
            relevance = _with_context(_fuse(options, vector, details, dense, keyword),
                                      details, questions, options)
        if options.question_discount > 0:
            relevance = {mid: score * (1.0 - options.question_discount)
                         if mid in questions else score for mid, score in relevance.items()}
    ids = list(found)
    vectors = np.stack([details[i].vector for i in ids])
    cosine = dict(zip(ids, (vectors @ vector).tolist()))

    span = parse_query_time(query, now) if options.date_boost > 0 else None
    scores = []
    for mid in ids:
        memory = found[mid]
        score = relevance.get(mid, 0.0)
        if options.recency_half_life_days is not None:
            score *= recency_factor(memory.valid_from, now, options.recency_half_life_days,
                                    options.recency_weight)
        if options.importance_weight:
            score *= importance_factor(memory.importance, options.importance_weight)
        score *= date_factor(memory.valid_from, span, options.date_boost)
        if min_score is not None and cosine[mid] < min_score:
            score = -np.inf
        scores.append(score)
    keep = [i for i, s in enumerate(scores) if s != -np.inf]
    order = mmr_order([scores[i] for i in keep], vectors[keep], k,
                      lambda_=options.mmr_lambda if options.mmr else None,
                      dedupe_threshold=options.dedupe_threshold)
    return [ScoredMemory(found[ids[keep[i]]], float(scores[keep[i]])) for i in order]


@dataclass(frozen=True)
class _Detail:
    pk: int
    session_id: str | None
    vector: np.ndarray


def _details(store: MemoryStore, user_id: str, ids: list[str]) -> dict[str, _Detail]:
    """Key, session and stored (normalised) vector of each candidate."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(memories.c.id, memories.c.pk, memories.c.session_id,
                                   memories.c.embedding).where(
            memories.c.id.in_(ids), memories.c.user_id == user_id)).all()
    return {r.id: _Detail(int(r.pk), r.session_id, decode_vector(r.embedding)) for r in rows}


def _fuse(options: SearchOptions, vector: np.ndarray, details: dict[str, _Detail],
          dense: dict[str, float], keyword: dict[str, float]) -> dict[str, float]:
    cosine = {mid: float(d.vector @ vector) for mid, d in details.items()}
    if options.mode == "dense":
        return cosine
    if options.fusion == "rrf":
        return rrf([sorted(dense, key=dense.__getitem__, reverse=True),
                    sorted(keyword, key=keyword.__getitem__, reverse=True)])
    return weighted_fusion(cosine, keyword, options.dense_weight)


def _neighbours(store: MemoryStore, user_id: str, filters: SearchFilters,
                seeds: list[_Detail], known: set[int]) -> list[tuple[Memory, _Detail]]:
    """Memories near the seeds (by key) in the seeds' sessions, not already ``known``.

    One primary-key lookup (an IN list, not a range scan per seed) keeps this cheap.
    """
    in_session = [d for d in seeds if d.session_id is not None]
    wanted = {d.pk + offset for d in in_session
              for offset in range(-_CONTEXT_SPAN, _CONTEXT_SPAN + 1)} - known
    if not wanted:
        return []
    query = build_filter_query(user_id, filters, columns=[*MEMORY_COLUMNS, memories.c.pk,
                                                          memories.c.embedding]).where(
        memories.c.pk.in_(sorted(wanted)),
        memories.c.session_id.in_({d.session_id for d in in_session}))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(row_to_memory(r), _Detail(int(r.pk), r.session_id, decode_vector(r.embedding)))
            for r in rows]


def _with_context(relevance: dict[str, float], details: dict[str, _Detail],
                  questions: set[str], options: SearchOptions) -> dict[str, float]:
    """Add the best share of a session neighbour's relevance to each memory's own.

    A turn of a conversation often only makes sense next to the ones around it ("I see
    them once a week" answers "how often do you see sunsets?"): the query matches one, the
    fact is in another. A neighbour up to two turns away gives ``context_weight`` of its
    relevance; a question gives the turn right after it (its answer) ``answer_weight``
    instead. Neighbours are the session's memories in key order among
    those fetched, and only within ``_CONTEXT_SPAN`` keys (not across a gap in the fetch).
    """
    by_session: dict[str, list[tuple[int, str]]] = {}
    for mid, d in details.items():
        if d.session_id is not None:
            by_session.setdefault(d.session_id, []).append((d.pk, mid))
    out = dict(relevance)
    for members in by_session.values():
        members.sort()
        for pos, (pk, mid) in enumerate(members):
            best = 0.0
            for step in range(1, _CONTEXT_REACH + 1):
                for j in (pos - step, pos + step):
                    if not 0 <= j < len(members) or abs(members[j][0] - pk) > _CONTEXT_SPAN:
                        continue
                    near = members[j][1]
                    share = options.answer_weight if j == pos - 1 and near in questions \
                        else options.context_weight
                    best = max(best, share * relevance.get(near, 0.0))
            out[mid] = relevance.get(mid, 0.0) + best
    return out
