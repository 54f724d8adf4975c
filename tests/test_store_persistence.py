"""Persistence: reopen in a new process, partitions from SQL, several processes, schema.

Why: "survives restarts" is the product. Each test crosses a real process or file boundary:
a fresh Python process reads what the first one wrote (its partitions built from the
vectors in SQL without one model call), and live processes see each other's writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect

from langchain_persistent_memory import ANY_USER, MemoryStore, SchemaVersionError
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
    store.update(a.id, content="Prefers very short technical explanations", user_id="alice")
    lisbon = store.add("Lives in Lisbon", user_id="alice", agent_id="travel", session_id="s9")
    store.supersede(lisbon.id, "Lives in Porto", user_id="alice")
    store.delete(store.add("Temporary note", user_id="alice").id, user_id=ANY_USER)
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
    assert seen["loaded_at_open"] == 0  # opening reads no partition
    assert seen["index_mismatches"] == []  # each one loaded equals the vectors in SQL
    assert seen["texts_embedded_besides_queries"] == 0


def test_partitions_load_from_sql_on_demand_without_the_model(store_url: str,
                                                              tmp_path: Path) -> None:
    index = tmp_path / "index.lpm"
    with open_store(store_url, index) as store:
        populate(store)
        expected = dump(store, QUERIES)
    counting = HashEmbeddings()
    with open_store(store_url, index, counting) as store:
        assert store.index_info().users_loaded == 0  # opening reads nothing
        assert dump(store, QUERIES) == expected
        assert counting.texts_embedded == len(QUERIES)  # only the queries
        assert store.index_info().users_loaded == 2 and not index.exists()


def test_a_loaded_partition_follows_another_process_s_writes(tmp_path: Path) -> None:
    """Deletes, a supersession, a new user and a forgotten one, written by another store
    after this one loaded its partitions: each next search sees them."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with open_store(url, tmp_path / "a") as store:
        populate(store)
    with open_store(url, tmp_path / "a") as reader, open_store(url, tmp_path / "b") as writer:
        dump(reader, QUERIES)  # loads alice's and bob's partitions
        bob = writer.list("bob")
        for m in bob[:5]:
            writer.delete(m.id, user_id=ANY_USER)
        writer.supersede(bob[5].id, "Bob now prefers blues", user_id=ANY_USER)
        writer.add("Carol is new", user_id="carol")
        writer.forget_user("alice")
        assert dump(reader, QUERIES) == dump(writer, QUERIES)
        assert reader.search("Porto", user_id="alice") == []
        assert reader.search("blues", user_id="bob", k=1)[0].memory.content == (
            "Bob now prefers blues")
        assert index_mismatches(reader) == []


def test_a_restored_backup_is_searched_as_restored(tmp_path: Path) -> None:
    """A database restored from an older backup: nothing derived outlives it."""
    db, index = tmp_path / "m.db", tmp_path / "index.lpm"
    url = f"sqlite:///{db}"
    with open_store(url, index) as store:
        store.add("kept in the backup", user_id="u")
    shutil.copy(db, tmp_path / "backup.db")
    with open_store(url, index) as store:
        store.add("lost with the restore", user_id="u")
    shutil.copy(tmp_path / "backup.db", db)
    with open_store(url, index) as store:
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
            assert read_meta(conn)["schema_version"] == str(SCHEMA_VERSION) == "8"
        tables = inspect(store.engine).get_table_names()
        assert {"lpm_entities", "lpm_memory_entities", "lpm_provenance"} <= set(tables)  # v5, v6
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


def test_in_memory_sqlite(tmp_path: Path) -> None:
    with MemoryStore("sqlite://", embeddings=HashEmbeddings()) as store:
        assert store.index_path is None
        store.add("lives only in memory", user_id="u")
        assert store.search("memory", user_id="u")[0].memory.content == "lives only in memory"
