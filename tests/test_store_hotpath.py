"""The store's fast paths give the same answers as the general ones.

Partitions are compacted in place, the index file is read in chunks into FAISS, search
rows are read with a raw SQLite cursor, and a search skips the change log when
``PRAGMA data_version`` says nothing was committed: each is checked against a plain model.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from langchain_persistent_memory import MemoryStore
from langchain_persistent_memory.store.index import PartitionedIndex
from langchain_persistent_memory.store.index_file import (
    IndexFileError,
    read_index_file,
    write_index_file,
)
from langchain_persistent_memory.store.rows import MEMORY_COLUMNS, row_to_memory
from langchain_persistent_memory.store.schema import memories
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings

DIM = 8


def _exact(model: dict[int, tuple[str, bool, np.ndarray]], user: str, q: np.ndarray,
           k: int) -> list[int]:
    mine = [(pk, float(v @ q)) for pk, (u, cur, v) in model.items() if u == user and cur]
    return [pk for pk, _ in sorted(mine, key=lambda h: (-h[1], -h[0]))[:k]]


def test_random_upserts_moves_and_removals_match_a_plain_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    index = PartitionedIndex(DIM)
    model: dict[int, tuple[str, bool, np.ndarray]] = {}
    users = ["a", "b", "c"]
    for step in range(400):
        action = rng.integers(0, 4)
        if action <= 1 or not model:  # add a small batch
            pks = rng.integers(1, 300, size=int(rng.integers(1, 6)))
            pks = np.unique(pks)
            user, cur = users[int(rng.integers(0, 3))], bool(rng.integers(0, 4))
            vecs = rng.standard_normal((len(pks), DIM)).astype(np.float32)
            index.upsert(user, cur, pks, vecs)
            for pk, v in zip(pks.tolist(), vecs):
                model[pk] = (user, cur, v)
        elif action == 2:  # remove some, present or not
            gone = rng.choice([*list(model), 999], size=min(3, len(model)), replace=False)
            index.remove(gone.tolist())
            for pk in gone.tolist():
                model.pop(pk, None)
        else:
            index.purge_user("c")
            model = {pk: e for pk, e in model.items() if e[0] != "c"}
        if step % 50 == 0:
            snap = index.snapshot()
            assert set(snap) == set(model)
            for pk, (u, cur, v) in model.items():
                assert snap[pk][:2] == (u, cur) and np.array_equal(snap[pk][2], v)
    q = rng.standard_normal(DIM).astype(np.float32)
    for user in users:
        got = [pk for pk, _ in index.search(user, q, 5, include_superseded=False)]
        assert got == _exact(model, user, q, 5)
    assert index.size() == len(model)

    path = tmp_path / "x.lpm"
    index.watermark = 42
    write_index_file(index, path, model="m")
    loaded = read_index_file(path).index
    assert loaded.watermark == 42
    assert set(loaded.snapshot()) == set(model)
    # A loaded partition must still grow and shrink.
    some_user = next(u for u, cur, _ in model.values() if cur)
    loaded.upsert(some_user, True, np.array([1000]), np.ones((1, DIM), np.float32))
    loaded.remove([1000, *list(model)[:2]])
    expected = {pk: e for pk, e in model.items() if pk not in list(model)[:2]}
    assert set(loaded.snapshot()) == set(expected)


def test_search_with_allowed_and_superseded_partitions() -> None:
    index = PartitionedIndex(2)
    index.upsert("u", True, np.array([1, 2, 3]),
                 np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32))
    index.upsert("u", False, np.array([4]), np.array([[1, 0]], dtype=np.float32))
    q = np.array([1, 0], dtype=np.float32)
    assert [pk for pk, _ in index.search("u", q, 2, include_superseded=False)] == [1, 2]
    assert [pk for pk, _ in index.search("u", q, 2, include_superseded=True)] == [4, 1]
    assert [pk for pk, _ in index.search("u", q, 5, include_superseded=False,
                                         allowed=np.array([3, 2]))] == [2, 3]
    assert index.search("nobody", q, 3, include_superseded=True) == []


def test_equal_scores_rank_the_newer_memory_first() -> None:
    index = PartitionedIndex(2)
    same = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (6, 1))
    index.upsert("u", True, np.array([3, 9, 1, 7, 5, 2]), same)
    index.upsert("u", False, np.array([8]), same[:1])
    q = np.array([0.6, 0.8], dtype=np.float32)
    assert [pk for pk, _ in index.search("u", q, 6, include_superseded=False)] == \
        [9, 7, 5, 3, 2, 1]
    assert [pk for pk, _ in index.search("u", q, 3, include_superseded=True)] == [9, 8, 7]


def _storage_address(index: PartitionedIndex, key: tuple[str, bool]) -> int:
    vectors = index._parts[key].vectors()
    return int(vectors.__array_interface__["data"][0])


def test_a_bulk_filled_partition_takes_new_vectors_without_moving() -> None:
    """A partition made from a batch keeps headroom: the next adds stay in place (moving
    100 vectors into fresh memory cost a single add ~100 us at 1M memories)."""
    index = PartitionedIndex(DIM)
    rng = np.random.default_rng(5)
    index.upsert("u", True, np.arange(1, 101), rng.standard_normal((100, DIM), np.float32))
    before = _storage_address(index, ("u", True))
    for pk in range(101, 105):
        index.upsert("u", True, np.array([pk]), rng.standard_normal((1, DIM), np.float32))
    assert _storage_address(index, ("u", True)) == before
    assert index.size("u") == 104


def test_index_file_is_read_back_across_many_small_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_persistent_memory.store import index_file

    rng = np.random.default_rng(2)
    index = PartitionedIndex(DIM)
    pk = 1
    for user, count in [("a", 3), ("b", 1), ("c", 40), ("d", 2), ("e", 7)]:
        for current in (True, False):
            pks = np.arange(pk, pk + count)
            pk += count
            index.upsert(user, current, pks, rng.standard_normal((count, DIM), np.float32))
    path = tmp_path / "x.lpm"
    write_index_file(index, path, model="m")
    monkeypatch.setattr(index_file, "_READ_CHUNK", 5 * DIM * 4)  # 5 rows; "c" is larger
    loaded = read_index_file(path).index
    expected, got = index.snapshot(), loaded.snapshot()
    assert set(got) == set(expected)
    for key, (user, current, vec) in expected.items():
        assert got[key][:2] == (user, current) and np.array_equal(got[key][2], vec)


@pytest.mark.parametrize("damage", ["flip_vector_byte", "truncate", "flip_id_byte"])
def test_damaged_index_file_is_refused(tmp_path: Path, damage: str) -> None:
    index = PartitionedIndex(DIM)
    index.upsert("a", True, np.arange(1, 21), np.ones((20, DIM), np.float32))
    path = tmp_path / "x.lpm"
    write_index_file(index, path, model="m")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-5]
    elif damage == "flip_vector_byte":
        data[-7] ^= 0x40
    else:
        data[len(data) - 20 * DIM * 4 - 3] ^= 0x01  # inside the id block
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFileError):
        read_index_file(path)


def test_raw_search_rows_equal_sqlalchemy_rows(tmp_path: Path) -> None:
    with MemoryStore(f"sqlite:///{tmp_path / 'm.db'}", embeddings=HashEmbeddings(16)) as s:
        old = s.add("lives in Berlin", user_id="u", category="fact", importance=0.7,
                    metadata={"src": "chat", "n": [1, 2]}, agent_id="ag", session_id="s1")
        s.supersede(old.id, "lives in Madrid", user_id="u")
        s.add("plays the cello", user_id="u")
        with s.engine.connect() as conn:
            rows = conn.execute(select(*MEMORY_COLUMNS)).all()
        general = {r.pk: row_to_memory(r) for r in rows}
        assert s._sync.reader is not None
        fast = s._memories_by_pk("u", list(general))
        assert fast == general  # every field, aware datetimes and parsed metadata included
        assert s._memories_by_pk("someone-else", list(general)) == {}


def test_a_commit_by_another_store_is_seen_by_the_next_search(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    emb = HashEmbeddings(16)
    with MemoryStore(url, embeddings=emb, index_path=tmp_path / "a.lpm") as a, \
            MemoryStore(url, embeddings=emb, index_path=tmp_path / "b.lpm") as b:
        a.add("green tea every morning", user_id="u")
        assert [h.memory.content for h in b.search_by_vector(
            b.embed_query("green tea"), user_id="u")] == ["green tea every morning"]
        assert b._sync.catch_up() == 0  # nothing new: answered by data_version alone
        m = a.add("black coffee at night", user_id="u")
        a.delete(m.id, user_id="u")
        b.add("tea with lemon", user_id="u")  # b's own write, applied directly
        hits = b.search_by_vector(b.embed_query("coffee tea"), user_id="u", k=5)
        assert sorted(h.memory.content for h in hits) == ["green tea every morning",
                                                         "tea with lemon"]
        with b.engine.connect() as conn:
            pks = {r[0] for r in conn.execute(select(memories.c.pk))}
        assert set(b._sync.index.snapshot()) == pks


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
    index = PartitionedIndex(DIM)
    index.upsert("big", True, np.arange(1, 2001), vecs)
    model = {pk: ("big", True, v) for pk, v in zip(range(1, 2001), vecs)}
    queries = centroids[:5] + 0.3 * rng.standard_normal((5, DIM)).astype(np.float32)
    recall = np.mean([len({pk for pk, _ in index.search("big", q, 10, include_superseded=False)}
                          & set(_exact(model, "big", q, 10))) / 10 for q in queries])
    assert recall >= 0.9
    # Removals and additions after the IVF was built are searched like the exact scan.
    best = index.search("big", queries[0], 1, include_superseded=False)[0][0]
    index.remove([best])
    assert best not in {pk for pk, _ in index.search("big", queries[0], 10,
                                                     include_superseded=False)}
    index.upsert("big", True, np.array([5000]), queries[:1] / np.linalg.norm(queries[0]))
    assert index.search("big", queries[0], 1, include_superseded=False)[0][0] == 5000
    # A filtered search stays exact.
    allowed = np.array([7, 8, 9])
    got = [pk for pk, _ in index.search("big", queries[1], 3, include_superseded=False,
                                        allowed=allowed)]
    assert sorted(got) == [7, 8, 9]


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
