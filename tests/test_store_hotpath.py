"""The store's fast paths give the same answers as the general ones.

Partitions are compacted in place and updated by a process's own writes, search rows are
read with raw driver cursors, and freshness is one version lookup per search: each is
checked against a plain model or the general path.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from langchain_persistent_memory import MemoryStore
from langchain_persistent_memory.store.partitions import UserPartition
from langchain_persistent_memory.store.reader import LoadedRow, Reader
from langchain_persistent_memory.store.rows import MEMORY_COLUMNS, row_to_memory
from langchain_persistent_memory.store.schema import memories
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings

DIM = 8
WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _rows(pks: list[int], current: bool, vecs: np.ndarray) -> list[LoadedRow]:
    return [(pk, None, f"memory {pk}", WHEN, 0.5, current, f"h{pk}", v, ())
            for pk, v in zip(pks, vecs)]


def _exact(model: dict[int, tuple[bool, np.ndarray]], q: np.ndarray, k: int) -> list[int]:
    mine = [(pk, float(v @ q)) for pk, (cur, v) in model.items() if cur]
    return [pk for pk, _ in sorted(mine, key=lambda h: (-h[1], -h[0]))[:k]]


def _dense(part: UserPartition, q: np.ndarray, k: int, superseded: bool = False,
           allowed: np.ndarray | None = None) -> list[int]:
    return [pk for pk, _ in part.view(superseded, allowed).dense(q, k)]


def test_random_upserts_moves_and_removals_match_a_plain_model() -> None:
    rng = np.random.default_rng(1)
    part = UserPartition("u", 1, DIM)
    model: dict[int, tuple[bool, np.ndarray]] = {}
    for step in range(400):
        if rng.integers(0, 3) <= 1 or not model:  # add or move a small batch
            pks = np.unique(rng.integers(1, 300, size=int(rng.integers(1, 6)))).tolist()
            cur = bool(rng.integers(0, 4))
            vecs = rng.standard_normal((len(pks), DIM)).astype(np.float32)
            part.upsert(_rows(pks, cur, vecs))
            model.update((pk, (cur, v)) for pk, v in zip(pks, vecs))
        else:  # remove some, present or not
            gone = rng.choice([*list(model), 999], size=min(3, len(model)), replace=False)
            part.remove(gone.tolist())
            for pk in gone.tolist():
                model.pop(pk, None)
        if step % 50 == 0:
            snap = part.snapshot()
            assert set(snap) == set(model)
            for pk, (cur, v) in model.items():
                assert snap[pk][0] == cur and np.array_equal(snap[pk][1], v)
        q = rng.standard_normal(DIM).astype(np.float32)
        assert _dense(part, q, 5) == _exact(model, q, 5)
    assert part.size() == len(model)


def test_search_with_allowed_and_superseded_partitions() -> None:
    part = UserPartition("u", 1, 2)
    part.upsert(_rows([1, 2, 3], True, np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32)))
    part.upsert(_rows([4], False, np.array([[1, 0]], dtype=np.float32)))
    q = np.array([1, 0], dtype=np.float32)
    assert _dense(part, q, 2) == [1, 2]
    assert _dense(part, q, 2, superseded=True) == [4, 1]
    assert _dense(part, q, 5, allowed=np.array([3, 2])) == [2, 3]
    assert part.view(False, None).keyword("4", 5) == {}  # superseded: not seen
    assert list(part.view(True, None).keyword("4", 5)) == [4]


def test_equal_scores_rank_the_newer_memory_first() -> None:
    part = UserPartition("u", 1, 2)
    same = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (6, 1))
    part.upsert(_rows([3, 9, 1, 7, 5, 2], True, same))
    part.upsert(_rows([8], False, same[:1]))
    q = np.array([0.6, 0.8], dtype=np.float32)
    assert _dense(part, q, 6) == [9, 7, 5, 3, 2, 1]
    assert _dense(part, q, 3, superseded=True) == [9, 8, 7]


def test_a_bulk_filled_partition_takes_new_vectors_without_moving() -> None:
    """A partition made from a batch keeps headroom: the next adds stay in place (moving
    100 vectors into fresh memory cost a single add ~100 us at 1M memories)."""
    part = UserPartition("u", 1, DIM)
    rng = np.random.default_rng(5)
    part.upsert(_rows(list(range(1, 101)), True, rng.standard_normal((100, DIM), np.float32)))
    before = part.current.vectors().__array_interface__["data"][0]
    for pk in range(101, 105):
        part.upsert(_rows([pk], True, rng.standard_normal((1, DIM), np.float32)))
    assert part.current.vectors().__array_interface__["data"][0] == before
    assert part.size() == 104


def test_raw_search_rows_equal_sqlalchemy_rows(tmp_path: Path) -> None:
    with MemoryStore(f"sqlite:///{tmp_path / 'm.db'}", embeddings=HashEmbeddings(16)) as s:
        old = s.add("lives in Berlin", user_id="u", category="fact", importance=0.7,
                    metadata={"src": "chat", "n": [1, 2]}, agent_id="ag", session_id="s1")
        s.supersede(old.id, "lives in Madrid", user_id="u")
        s.add("plays the cello", user_id="u")
        with s.engine.connect() as conn:
            rows = conn.execute(select(*MEMORY_COLUMNS)).all()
        general = {r.pk: row_to_memory(r) for r in rows}
        reader = Reader(s.engine)
        try:
            fast = reader.memories("u", list(general))
            assert fast == general  # every field, aware datetimes and parsed metadata
            assert reader.memories("someone-else", list(general)) == {}
        finally:
            reader.close()


def test_a_commit_by_another_store_is_seen_by_the_next_search(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    emb = HashEmbeddings(16)
    with MemoryStore(url, embeddings=emb, index_path=tmp_path / "a.lpm") as a, \
            MemoryStore(url, embeddings=emb, index_path=tmp_path / "b.lpm") as b:
        a.add("green tea every morning", user_id="u")
        assert [h.memory.content for h in b.search_by_vector(
            b.embed_query("green tea"), user_id="u")] == ["green tea every morning"]
        version = b.index_info("u")
        m = a.add("black coffee at night", user_id="u")
        a.delete(m.id, user_id="u")
        b.add("tea with lemon", user_id="u")  # b's own write, applied directly
        hits = b.search_by_vector(b.embed_query("coffee tea"), user_id="u", k=5)
        assert sorted(h.memory.content for h in hits) == ["green tea every morning",
                                                         "tea with lemon"]
        assert version.vectors == 1 and index_mismatches(b) == []


def test_large_partitions_search_through_an_ivf_index_kept_in_step(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_persistent_memory.store import index as index_module

    monkeypatch.setattr(index_module, "APPROX_MIN_VECTORS", 1000)
    monkeypatch.setattr(index_module, "_ANN_CELLS", 16)
    monkeypatch.setattr(index_module, "_ANN_PROBES", 4)
    rng = np.random.default_rng(3)
    centroids = rng.standard_normal((10, DIM)).astype(np.float32)
    vecs = centroids[rng.integers(0, 10, 2000)] + 0.3 * rng.standard_normal((2000, DIM))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    part = UserPartition("big", 1, DIM)
    part.upsert(_rows(list(range(1, 2001)), True, vecs))
    model = {pk: (True, v) for pk, v in zip(range(1, 2001), vecs)}
    queries = centroids[:5] + 0.3 * rng.standard_normal((5, DIM)).astype(np.float32)
    recall = np.mean([len(set(_dense(part, q, 10)) & set(_exact(model, q, 10))) / 10
                      for q in queries])
    assert recall >= 0.9
    # Removals and additions after the IVF was built are searched like the exact scan.
    best = _dense(part, queries[0], 1)[0]
    part.remove([best])
    assert best not in _dense(part, queries[0], 10)
    part.upsert(_rows([5000], True, queries[:1] / np.linalg.norm(queries[0])))
    assert _dense(part, queries[0], 1) == [5000]
    # A filtered search stays exact.
    assert sorted(_dense(part, queries[1], 3, allowed=np.array([7, 8, 9]))) == [7, 8, 9]


def test_batched_sqlite_inserts_name_every_row_right(tmp_path: Path) -> None:
    """Adds are multi-row INSERTs whose keys are derived from the last rowid; 3,000 rows
    take two statements. The index, the returned memories and the keyword index must
    all agree with what SQLite stored."""
    with MemoryStore(f"sqlite:///{tmp_path / 'm.db'}", embeddings=HashEmbeddings(DIM)) as s:
        s.add("an older memory", user_id="u")
        added = s.add_many([f"note number {i} word{i}" for i in range(3000)], user_id="u")
        assert index_mismatches(s) == []
        with s.engine.connect() as conn:
            stored = dict(conn.execute(select(memories.c.id, memories.c.content)).all())
        assert all(stored[m.id] == m.content for m in added)
        for i in (0, 2046, 2047, 2999):
            hits = s.search(f"word{i}", user_id="u", k=1, mode="keyword")
            assert [h.memory.id for h in hits] == [added[i].id]


def test_a_write_that_finds_the_database_locked_is_retried(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with MemoryStore(f"sqlite:///{db}", embeddings=HashEmbeddings(DIM),
                     engine_kwargs={"busy_timeout_s": 0.01}) as s:
        s.add("first", user_id="u")
        other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock ...
        release = threading.Timer(0.3, other.execute, ["COMMIT"])  # ... for 0.3 s
        release.start()
        try:
            started = time.monotonic()
            assert s.add("second", user_id="u").content == "second"
            assert time.monotonic() - started >= 0.25
        finally:
            release.join()
            other.close()
        assert s.count("u") == 2


def test_ids_of_a_big_user_are_looked_up_by_the_unique_index(tmp_path: Path) -> None:
    """Schema v3's planner statistics: without them SQLite scanned all of a user's rows to
    find a few of their memories by id (hybrid search's candidate lookup)."""
    with MemoryStore(f"sqlite:///{tmp_path / 'm.db'}", embeddings=HashEmbeddings(DIM)) as s:
        ids = [m.id for m in s.add_many([f"note {i}" for i in range(300)], user_id="u")]
        query = select(memories.c.id).where(memories.c.id.in_(ids[:100]),
                                            memories.c.user_id == "u")
        with s.engine.connect() as conn:
            sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = " ".join(r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "sqlite_autoindex_lpm_memories_1 (id=?)" in plan
            assert sorted(conn.execute(query).scalars()) == sorted(ids[:100])


def test_long_postings_scored_as_arrays_rank_like_the_plain_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A big user's common words are scored with numpy: same scores, same order."""
    from langchain_persistent_memory.store import keyword

    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(40)]
    index = keyword.KeywordIndex()
    for pk in range(1, 1500):
        index.add(pk, keyword.analyse(" ".join(rng.choice(words, int(rng.integers(3, 12))))))
    index.remove(range(100, 200))
    for query in ("w1 w2", "w3", "w5 w6 w7 w39"):
        terms, phrases = keyword.query_terms(query), keyword.query_phrases(query)
        monkeypatch.setattr(keyword, "_ARRAY_MIN", 10**9)
        plain = index.search(terms, phrases, 50, lambda pk: pk % 3 != 0)
        monkeypatch.setattr(keyword, "_ARRAY_MIN", 1)
        arrays = index.search(terms, phrases, 50, lambda pk: pk % 3 != 0)
        assert list(arrays) == list(plain) and len(plain) == 50
        assert np.allclose(list(arrays.values()), list(plain.values()))
    # The arrays follow later adds and removals of the term.
    index.add(5000, keyword.analyse("w3 w3 w3"))
    assert next(iter(index.search(["w3"], [], 5, lambda pk: True))) == 5000
    index.remove([5000])
    assert 5000 not in index.search(["w3"], [], 2000, lambda pk: True)
