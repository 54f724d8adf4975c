"""Per-user partitions: loaded on demand under a memory budget, fresh against SQL, ranked
alike on both backends; writes of different users never wait on each other."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from langchain_persistent_memory import MemoryStore, StoreClosedError
from langchain_persistent_memory.store.partitions import parse_budget
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings

TOPICS = ["hiking in the alps", "baking sourdough bread", "playing the cello",
          "growing tomatoes", "watching meteor showers", "learning japanese"]


def _fill(store: MemoryStore, users: int, per_user: int = 12) -> None:
    for u in range(users):
        store.add_many([f"user {u} enjoys {TOPICS[(u + i) % len(TOPICS)]} note {i}"
                        for i in range(per_user)], user_id=f"u{u}")


def test_partitions_stay_within_the_memory_budget(tmp_path: Path) -> None:
    with MemoryStore(f"sqlite:///{tmp_path / 'm.db'}", embeddings=HashEmbeddings(),
                     memory_budget=60_000) as store:
        _fill(store, 20)
        assert store.index_info().users_loaded == 0
        for u in range(20):
            hits = store.search("enjoys playing the cello", user_id=f"u{u}", k=3)
            assert hits and all(h.memory.user_id == f"u{u}" for h in hits)
            info = store.index_info()
            assert info.bytes <= info.budget == 60_000
        assert 1 < store.index_info().users_loaded < 20  # older users were let go
        assert store.index_info("u19").users_loaded == 1
        assert store.index_info("u0").users_loaded == 0
        # An evicted user is loaded again, equal to SQL.
        assert store.search("cello", user_id="u0", k=1)[0].memory.user_id == "u0"
        assert index_mismatches(store) == []


def test_memory_budget_sizes() -> None:
    assert parse_budget("512MB") == 512 << 20
    assert parse_budget("2GiB") == 2 << 30
    assert parse_budget(1000) == 1000
    with pytest.raises(ValueError, match="memory_budget"):
        parse_budget("a lot")
    with pytest.raises(ValueError, match="memory_budget"):
        parse_budget(-1)


def test_hits_carry_an_absolute_relevance_beside_the_ranking_score(store: MemoryStore) -> None:
    store.add("Alice adopted a greyhound called Comet", user_id="a")
    [hit] = store.search("Alice adopted a greyhound called Comet", user_id="a")
    memory, score = hit  # still unpacks as (memory, score)
    assert memory.content.startswith("Alice") and score == hit.score
    assert hit.cosine == pytest.approx(1.0, abs=1e-5) and hit.keyword_match is True
    store.add("The weather was mild", user_id="a")
    hits = store.search("greyhound", user_id="a", k=2)
    assert [h.keyword_match for h in hits] == [True, False]
    assert hits[1].cosine is not None and hits[1].cosine < hits[0].cosine


def test_sqlite_and_postgres_rank_alike(tmp_path: Path, postgres_url: str) -> None:
    """Keyword statistics are the same Python code over the same rows on both backends."""
    ranked = []
    for url in (f"sqlite:///{tmp_path / 'm.db'}", postgres_url):
        with MemoryStore(url, embeddings=HashEmbeddings()) as store:
            _fill(store, 3, per_user=30)
            ranked.append([[(h.memory.content, round(h.score, 6), h.keyword_match)
                            for h in store.search(query, user_id="u1", k=8, **options)]
                           for query in ("cello and tomatoes", "meteor showers note 7")
                           for options in ({}, {"mode": "keyword"})])
    assert ranked[0] == ranked[1] and all(ranked[0])


def test_a_call_interrupted_by_close_raises_a_typed_error(tmp_path: Path) -> None:
    store = MemoryStore(f"sqlite:///{tmp_path / 'm.db'}", embeddings=HashEmbeddings())
    _fill(store, 5)
    errors: list[BaseException] = []

    def busy() -> None:
        try:
            for i in range(100_000):
                store.search("cello", user_id=f"u{i % 5}", k=3)
                store.add(f"note {i}", user_id=f"u{i % 5}")
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=busy)
    worker.start()
    time.sleep(0.3)
    store.close()
    worker.join(timeout=30)
    assert not worker.is_alive() and len(errors) == 1
    assert isinstance(errors[0], StoreClosedError), repr(errors[0])


def test_a_write_waits_only_for_writes_of_the_same_user(postgres_url: str) -> None:
    """Another transaction holds user a's version row: a write for b goes through at once,
    a write for a waits for it (no global lock on PostgreSQL)."""
    with MemoryStore(postgres_url, embeddings=HashEmbeddings()) as store:
        store.add("first of a", user_id="a")
        with store.engine.connect() as other:  # another connection: another transaction
            other.exec_driver_sql("UPDATE lpm_users SET version = version + 1 "
                                  "WHERE user_id = 'a'")
            started = time.monotonic()
            store.add("first of b", user_id="b")
            assert time.monotonic() - started < 2.0
            done = threading.Event()
            blocked = threading.Thread(target=lambda: (store.add("second of a", user_id="a"),
                                                       done.set()))
            blocked.start()
            assert not done.wait(0.5)  # a's writer waits for the row lock ...
            other.commit()
        blocked.join(timeout=10)
        assert done.is_set()  # ... and goes through once it is released
        assert store.count("a") == 2 and index_mismatches(store) == []
