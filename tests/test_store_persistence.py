"""Persistence: reopen in a new process, index recovery from SQL, several processes, schema.

Why: "survives restarts" is the product. Each test crosses a real process or file boundary:
a fresh Python process reads what the first one wrote, a damaged index file is rebuilt from
SQL without one model call, and two live processes see each other's writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect

from langchain_persistent_memory import MemoryStore, SchemaVersionError
from langchain_persistent_memory.store.index_file import read_index_file
from langchain_persistent_memory.store.schema import SCHEMA_VERSION, read_meta, write_meta
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings
from tests.support.store_worker import dump

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [["alice", "short technical explanations"], ["alice", "Porto"], ["bob", "jazz"]]


def run_worker(args: dict[str, Any]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "tests.support.store_worker",
                             json.dumps(args)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def result_of(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _wait_for(path: Path, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        for proc in procs:
            if proc.poll() is not None:  # a worker died: show why
                result_of(proc)
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def populate(store: MemoryStore) -> None:
    a = store.add("Prefers short technical explanations", user_id="alice",
                  category="preference", importance=0.8, metadata={"source": "chat"})
    store.update(a.id, content="Prefers very short technical explanations")
    lisbon = store.add("Lives in Lisbon", user_id="alice", agent_id="travel", session_id="s9")
    store.supersede(lisbon.id, "Lives in Porto")
    store.delete(store.add("Temporary note", user_id="alice").id)
    store.add_many([f"Bob likes jazz record {i}" for i in range(20)], user_id="bob")


def open_store(url: str, index: Path, embeddings: HashEmbeddings | None = None) -> MemoryStore:
    return MemoryStore(url, embeddings=embeddings or HashEmbeddings(), index_path=index)


def test_reopen_in_a_new_process_sees_everything(store_url: str, tmp_path: Path) -> None:
    index = tmp_path / "index.lpm"
    with open_store(store_url, index) as store:
        populate(store)
        expected = dump(store, QUERIES)
    seen = result_of(run_worker({"action": "dump", "url": store_url, "index": str(index),
                                 "queries": QUERIES}))
    assert seen["users"] == expected["users"]  # every field and every history event
    assert seen["search"] == expected["search"] and all(seen["search"])
    assert seen["rebuilt"] is False  # the saved index was trusted
    assert seen["index_mismatches"] == []  # and it equals the vectors in SQL
    assert seen["texts_embedded_besides_queries"] == 0


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 200, len(data) - 100):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not an index file at all")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "deleted": _delete, "truncated": _truncate, "corrupted": _flip_bytes,
    "garbage": _garbage, "empty": _empty,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_index_is_rebuilt_from_sql_without_the_model(damage: str,
                                                             tmp_path: Path) -> None:
    url, index = f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "index.lpm"
    with open_store(url, index) as store:
        populate(store)
        expected = dump(store, QUERIES)
    DAMAGE[damage](index)
    counting = HashEmbeddings()
    with open_store(url, index, counting) as store:
        assert store._sync.rebuilt_on_open
        assert index_mismatches(store) == []
        assert counting.calls == []  # rebuilt from vectors stored in SQL
        assert dump(store, QUERIES) == {**expected, "rebuilt": True}  # mismatches: []
        assert counting.texts_embedded == len(QUERIES)  # only the queries
    assert index.stat().st_size > 100  # a good index was saved again


def test_index_recovery_on_both_backends(store_url: str, tmp_path: Path) -> None:
    index = tmp_path / "index.lpm"
    with open_store(store_url, index) as store:
        populate(store)
        expected = dump(store, QUERIES)
    for damage in (_delete, _flip_bytes):
        damage(index)
        counting = HashEmbeddings()
        with open_store(store_url, index, counting) as store:
            assert store._sync.rebuilt_on_open and counting.calls == []
            assert index_mismatches(store) == []
            assert dump(store, QUERIES)["search"] == expected["search"]


def test_stale_index_file_is_caught_up_not_rebuilt(tmp_path: Path) -> None:
    url, index = f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "index.lpm"
    with open_store(url, index) as store:
        populate(store)
    shutil.copy(index, tmp_path / "old.lpm")
    with open_store(url, index) as store:
        bob = store.list("bob")
        for m in bob[:5]:
            store.delete(m.id)
        store.supersede(bob[5].id, "Bob now prefers blues")
        store.add("Carol is new", user_id="carol")
        store.forget_user("alice")
        expected = dump(store, QUERIES)
    shutil.copy(tmp_path / "old.lpm", index)  # an index from before all that
    counting = HashEmbeddings()
    with open_store(url, index, counting) as store:
        assert not store._sync.rebuilt_on_open
        assert index_mismatches(store) == [] and counting.calls == []
        assert dump(store, QUERIES)["users"] == expected["users"]
        assert store.search("Porto", user_id="alice") == []


def test_index_from_the_future_is_not_trusted(tmp_path: Path) -> None:
    """A database restored from an older backup next to a newer index file."""
    db, index = tmp_path / "m.db", tmp_path / "index.lpm"
    url = f"sqlite:///{db}"
    with open_store(url, index) as store:
        store.add("kept in the backup", user_id="u")
    shutil.copy(db, tmp_path / "backup.db")
    with open_store(url, index) as store:
        store.add("lost with the restore", user_id="u")
    shutil.copy(tmp_path / "backup.db", db)
    with open_store(url, index) as store:
        assert store._sync.rebuilt_on_open
        assert [h.memory.content for h in store.search("kept lost", user_id="u", k=5)] == [
            "kept in the backup"]
        assert index_mismatches(store) == []


def test_two_processes_write_and_see_each_other(store_url: str, tmp_path: Path) -> None:
    observer = open_store(store_url, tmp_path / "observer.lpm")  # opened while empty
    try:
        barriers = tmp_path / "barriers"
        barriers.mkdir()
        procs = [run_worker({"action": "write", "url": store_url, "count": 25,
                             "index": str(tmp_path / f"{me}.lpm"), "name": me, "other": other,
                             "barrier_dir": str(barriers)})
                 for me, other in (("north", "south"), ("south", "north"))]
        for name in ("checked-north", "checked-south"):
            _wait_for(barriers / name, procs)
        observer.add("observer fact", user_id="shared")  # the other way round, below
        (barriers / "observer-wrote").touch()
        hits = observer.search("north fact 3", user_id="shared", k=1, mode="dense")
        assert hits[0].memory.content == "north fact 3"
        assert observer.count("shared") == 51
        assert index_mismatches(observer) == []
        north, south = (result_of(p) for p in procs)
        assert north == {"top": "south fact 7", "indexed": 50, "late": "observer fact"}
        assert south == {"top": "north fact 7", "indexed": 50, "late": "observer fact"}
    finally:
        observer.close()


def test_newer_schema_version_is_refused_and_nothing_changes(store_url: str,
                                                             tmp_path: Path) -> None:
    index = tmp_path / "index.lpm"
    with open_store(store_url, index) as store:
        store.add("written by this release", user_id="u")
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            write_meta(conn, "schema_version", str(SCHEMA_VERSION + 1))
        with pytest.raises(SchemaVersionError, match="newer"):
            open_store(store_url, index)
        with engine.begin() as conn:
            write_meta(conn, "schema_version", str(SCHEMA_VERSION))
    finally:
        engine.dispose()
    with open_store(store_url, index) as store:
        assert [m.content for m in store.list("u")] == ["written by this release"]


def test_a_version_2_database_is_upgraded_in_place(store_url: str, tmp_path: Path) -> None:
    """v3 replaced the global content-hash index by a per-user one: an old database gets
    it on open, keeps every row and still finds identical text through it."""
    index = tmp_path / "index.lpm"
    with open_store(store_url, index) as store:
        kept = store.add("Alice keeps bees", user_id="alice", category="hobby")
        store.add("Bob plays the oboe", user_id="bob")
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:  # back to the version 2 layout
            conn.exec_driver_sql("DROP INDEX ix_lpm_memories_user_hash")
            conn.exec_driver_sql("CREATE INDEX ix_lpm_memories_user "
                                 "ON lpm_memories (user_id, valid_to)")
            conn.exec_driver_sql("CREATE INDEX ix_lpm_memories_hash "
                                 "ON lpm_memories (content_hash)")
            write_meta(conn, "schema_version", "2")
    finally:
        engine.dispose()
    embeddings = HashEmbeddings()
    with open_store(store_url, index, embeddings) as store:
        names = {ix["name"] for ix in inspect(store.engine).get_indexes("lpm_memories")}
        assert "ix_lpm_memories_user_hash" in names
        assert not names & {"ix_lpm_memories_user", "ix_lpm_memories_hash"}
        with store.engine.connect() as conn:
            assert read_meta(conn)["schema_version"] == str(SCHEMA_VERSION) == "3"
        again = store.add("Alice keeps bees", user_id="alice", category="hobby")
        assert again.id == kept.id  # the duplicate is found through the new index
        assert store.add("Alice keeps bees", user_id="alice", agent_id="garden").id != kept.id
        assert embeddings.calls == []  # ... and so is the stored vector
        assert [m.content for m in store.list("bob")] == ["Bob plays the oboe"]
        assert store.search("oboe", user_id="bob", k=1)[0].memory.content == (
            "Bob plays the oboe")


def test_identical_text_of_another_user_is_embedded_again_after_a_restart(
        store_url: str, tmp_path: Path) -> None:
    """What the per-user index costs: a stored vector is found for the same user's text,
    and for other users' texts only while this process still remembers it."""
    index = tmp_path / "index.lpm"
    with open_store(store_url, index) as store:
        store.add("Prefers dark mode", user_id="alice")
    embeddings = HashEmbeddings()
    with open_store(store_url, index, embeddings) as store:
        store.add("Prefers dark mode", user_id="alice", agent_id="ui")
        assert embeddings.calls == []
    with open_store(store_url, index, embeddings) as store:
        store.add("Prefers dark mode", user_id="bob")
        assert embeddings.calls == [["Prefers dark mode"]]
        store.add("Prefers dark mode", user_id="carol")
        assert embeddings.calls == [["Prefers dark mode"]]


def test_in_memory_sqlite_and_autosave(tmp_path: Path) -> None:
    with MemoryStore("sqlite://", embeddings=HashEmbeddings()) as store:
        assert store.index_path is None
        store.add("lives only in memory", user_id="u")
        assert store.search("memory", user_id="u")[0].memory.content == "lives only in memory"
    index = tmp_path / "auto.lpm"
    store = MemoryStore(f"sqlite:///{tmp_path / 'a.db'}", embeddings=HashEmbeddings(),
                        index_path=index, autosave_every=3)
    try:
        store.add_many(["one", "two"], user_id="u")
        assert not index.exists()
        store.add("three", user_id="u")
        assert index.exists()  # saved without waiting for close
    finally:
        store.close()


def test_autosave_rewrites_the_index_each_time_it_doubles(tmp_path: Path) -> None:
    """Bulk ingest must not rewrite the whole file every few percent of growth, and a
    crash must never have more than half the index to replay."""
    index = tmp_path / "grow.lpm"
    saved_sizes: list[int] = []
    with MemoryStore(f"sqlite:///{tmp_path / 'g.db'}", embeddings=HashEmbeddings(),
                     index_path=index, autosave_every=1) as store:
        for i in range(64):
            store.add(f"fact number {i}", user_id="u")
            size = read_index_file(index).index.size() if index.exists() else 0
            if not saved_sizes or size != saved_sizes[-1]:
                saved_sizes.append(size)
            assert (i + 1) - size <= max(1, (i + 1) // 2)  # unsaved: at most half
    # Each save is at about twice the size of the previous one (1, 2, 3, 5, 9, 17, 33).
    assert all(b >= 2 * a - 1 for a, b in pairwise(saved_sizes[1:])), saved_sizes
    assert saved_sizes[-1] >= 32 and len(saved_sizes) <= 8, saved_sizes
