"""``store.search`` ranking options end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from langchain_persistent_memory import InvalidInputError, MemoryStore

MAY = datetime(2023, 5, 8, tzinfo=timezone.utc)
JULY = datetime(2023, 7, 2, tzinfo=timezone.utc)


def contents(hits: list) -> list[str]:
    return [h.memory.content for h in hits]


def test_hybrid_finds_what_either_retriever_finds(store: MemoryStore) -> None:
    store.add_many(["Alice's passport number ends in 4471", "Alice enjoys long walks",
                    "Alice bought a red kayak"], user_id="alice")
    hybrid = contents(store.search("passport 4471", user_id="alice", k=1))
    assert hybrid == ["Alice's passport number ends in 4471"]
    async_hits = contents(await_search(store, "passport 4471"))
    assert async_hits == hybrid


def await_search(store: MemoryStore, query: str) -> list:
    import asyncio

    return asyncio.run(store.asearch(query, user_id="alice", k=1))


def test_session_context_lifts_the_answer_next_to_the_question(store: MemoryStore) -> None:
    turns = ["Bob: how often do you go sailing on the lake?", "Alice: every second weekend",
             "Bob: did you watch the match?", "Alice: no, I was busy"]
    store.add_many([{"content": t, "session_id": "s1"} for t in turns], user_id="alice")
    store.add_many(["Alice: my sister visits often", "Alice: the weather is grey"],
                   user_id="alice")
    query = "how often does Alice go sailing on the lake"
    with_context = contents(store.search(query, user_id="alice", k=2))
    assert sorted(with_context) == sorted(turns[:2])
    without = contents(store.search(query, user_id="alice", k=2, context_weight=0.0,
                                    answer_weight=0.0))
    assert turns[1] not in without


def test_a_question_hands_relevance_to_its_answer(store: MemoryStore) -> None:
    turns = ["Bob: what is the name of your new puppy?", "Alice: she is called Coco",
             "Bob: nice, see you", "Alice: bye"]
    store.add_many([{"content": t, "session_id": "s1"} for t in turns], user_id="alice")
    query = "what is the name of Alice's new puppy"

    def score(text: str, **options: float) -> float:
        hits = store.search(query, user_id="alice", k=4, mmr=False, **options)
        return next(h.score for h in hits if h.memory.content == text)

    # The answer gains answer_weight (not context_weight) of the question's relevance ...
    assert score(turns[1], answer_weight=0.9) > score(turns[1], answer_weight=0.5) \
        > score(turns[1], answer_weight=0.1)
    # ... and the question itself keeps 1 - question_discount of its own.
    assert score(turns[0], question_discount=0.15) == pytest.approx(
        0.85 * score(turns[0], question_discount=0.0))
    assert score(turns[1], question_discount=0.5) == score(turns[1], question_discount=0.0)


def test_query_dates_prefer_memories_said_then(store: MemoryStore) -> None:
    store.add("Alice went to the concert", user_id="alice", valid_from=JULY)
    store.add("Alice went to the concert hall", user_id="alice", valid_from=MAY)
    store.add_many(["Alice went to the dentist", "Alice bought a lamp"], user_id="alice")
    hits = contents(store.search("concert in May 2023", user_id="alice", k=2))
    assert hits[0] == "Alice went to the concert hall"
    hits = contents(store.search("concert in July 2023", user_id="alice", k=2))
    assert hits[0] == "Alice went to the concert"


def test_recency_and_importance_reorder_equals(store: MemoryStore) -> None:
    old = store.add("Alice's favourite food is ramen", user_id="alice", valid_from=MAY)
    new = store.add("Alice's favourite food is pho", user_id="alice", valid_from=JULY,
                    importance=0.2)
    query = "Alice favourite food"
    recent = store.search(query, user_id="alice", k=2, recency_half_life_days=7)
    assert recent[0].memory.id == new.id
    store.update(old.id, importance=1.0, user_id="alice")
    important = store.search(query, user_id="alice", k=2, importance_weight=1.0)
    assert important[0].memory.id == old.id


def test_near_duplicates_do_not_fill_the_top_k(store: MemoryStore) -> None:
    store.add_many(["Alice likes green tea", "Alice likes green tea!", "Alice plays chess"],
                   user_id="alice")
    hits = contents(store.search("Alice likes green tea", user_id="alice", k=2))
    assert "Alice plays chess" in hits
    both = contents(store.search("Alice likes green tea", user_id="alice", k=2,
                                 dedupe_threshold=None))
    assert "Alice plays chess" not in both


def test_min_score_is_a_cosine_floor_in_every_mode(store: MemoryStore) -> None:
    store.add_many(["Alice likes green tea", "unrelated words entirely"], user_id="alice")
    for mode in ("hybrid", "dense", "keyword"):
        hits = store.search("Alice likes green tea", user_id="alice", k=5, mode=mode,
                            min_score=0.9)
        assert contents(hits) == ["Alice likes green tea"]


def test_bad_options_are_rejected_before_searching(store: MemoryStore) -> None:
    store.add("Alice likes green tea", user_id="alice")
    for bad in ({"mode": "magic"}, {"dense_weight": 2}, {"colour": "red"}):
        with pytest.raises(InvalidInputError):
            store.search("tea", user_id="alice", **bad)


def test_a_memory_that_says_something_beats_short_small_talk(store: MemoryStore) -> None:
    """A one-line "Nice garden!" matches the query about as well as the turn that says what
    grew in the garden (slightly better: it is short); the detail bonus (longer memories
    gain up to ``detail_weight``) puts the statement first."""
    fact = "Alice: This spring I planted tomatoes in the garden and the garden gave us beans too"
    store.add_many(["Alice: Nice garden!", fact, "Alice: The dentist was fine",
                    "Alice: We bought a lamp for the hall"], user_id="alice")

    def first(**options: float) -> str:
        return contents(store.search("Alice garden", user_id="alice", k=2, **options))[0]

    assert first(detail_weight=0.0) == "Alice: Nice garden!"
    assert first() == fact
    with pytest.raises(InvalidInputError):
        store.search("Alice garden", user_id="alice", detail_weight=1.5)
