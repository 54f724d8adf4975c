"""Forgetting: after ``forget_user`` no byte of the user's text (nor their user id) survives —
not in SQL rows, history, entities and their links, the change log, the keyword (FTS) index,
the vector index, the SQLite file, its WAL/SHM, the index files or an export. Checked by
searching raw files for markers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from langchain_persistent_memory import MemoryStore, Provenance
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings

MARK = "QZXVMARK"  # the victim's text
VICTIM = "qzxv.user@example.com"  # the victim's id: often personal data itself
KEEP = "KEEPWXYZ"  # another user's text: must survive (and proves the scan can see text)


def _fill(store: MemoryStore) -> None:
    """The victim's marker in every field and code path that keeps text."""
    for i in range(40):
        store.add(f"{KEEP} neighbour note {i} about cooking pasta", user_id="keep")
    m = store.add(f"secret {MARK} about the garden plan", user_id=VICTIM,
                  category=f"{MARK}cat", metadata={"note": f"{MARK} meta", f"{MARK}key": 1},
                  agent_id=f"{MARK}agent", session_id=f"{MARK}session",
                  provenance=Provenance(origin="pipeline", roles=["user"], positions=[0],
                                        evidence=f"my {MARK} garden plan is secret",
                                        session_id=f"{MARK}thread", agent_id=f"{MARK}bot"))
    store.update(m.id, content=f"secret {MARK} revised garden plan", user_id=VICTIM,
                 provenance=Provenance(origin="ui", evidence=f"{MARK} typed in the UI"))
    store.supersede(m.id, f"{MARK} moved the garden plan", user_id=VICTIM)
    for i in range(60):  # enough rows to spread over many pages and FTS segments
        memory = store.add(f"victim {MARK} fact {i} tulips{i} roses", user_id=VICTIM)
        if i % 3 == 0:
            store.delete(memory.id, user_id=VICTIM)
    store.add(f"{MARK}son: I met {MARK}ina in Paris", user_id=VICTIM)  # speaker, name
    store.add(f"I met my friend Ella (Mel{MARK}) in Rome", user_id=VICTIM)  # an alias
    assert store.search(f"{MARK} tulips7", user_id=VICTIM, k=1, mode="keyword")
    with store.engine.connect() as conn:  # positive control: entities and links were written
        for table in ("lpm_entities", "lpm_memory_entities"):
            rows = conn.execute(text(f"SELECT * FROM {table} WHERE user_id = :u"),
                                {"u": VICTIM}).all()
            assert any(MARK.lower() in str(r).lower() for r in rows), table
        aliases = conn.execute(text("SELECT aliases FROM lpm_memory_entities "
                                    "WHERE user_id = :u AND entity_key = 'ella'"),
                               {"u": VICTIM}).scalar_one()
        assert f"Mel{MARK}" in str(aliases), aliases  # JSON text on SQLite, a list on PG


def _raw_hits(folder: Path, needle: str) -> dict[str, int]:
    """How often ``needle`` occurs in each file's bytes (UTF-8 and UTF-16, any case)."""
    hits = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes().lower()
        count = sum(data.count(needle.lower().encode(enc)) for enc in ("utf-8", "utf-16-le"))
        if count:
            hits[path.name] = count
    return hits


def test_forget_user_leaves_no_trace_in_sqlite_files(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    url = f"sqlite:///{folder / 'memories.db'}"
    store = MemoryStore(url, embeddings=HashEmbeddings())
    other = MemoryStore(url, embeddings=HashEmbeddings(), index_path=folder / "other.lpm")
    _fill(store)
    store.search("garden", user_id=VICTIM)  # both processes hold the victim's partition
    other.search("garden", user_id=VICTIM)
    assert _raw_hits(folder, MARK)  # positive control: the scan finds text before forgetting
    assert _raw_hits(folder, VICTIM)

    assert store.forget_user(VICTIM) == 2 + 60 - 20 + 2
    store.export_jsonl(folder / "export.jsonl")
    assert other.search("garden", user_id=VICTIM) == []  # the other one sees it at once
    assert other.index_info(VICTIM).users_loaded == 0

    assert _raw_hits(folder, MARK) == {}
    assert _raw_hits(folder, VICTIM) == {}
    assert "memories.db" in _raw_hits(folder, KEEP)  # the neighbour's data is still there
    assert store.search(f"{MARK} garden", user_id=VICTIM, k=5) == []
    assert store.search(f"{MARK} tulips7", user_id=VICTIM, k=5, mode="keyword") == []
    assert store.count(VICTIM, include_superseded=True) == 0
    assert store.index_info(VICTIM).users_loaded == 0
    assert index_mismatches(store) == []
    other.close()
    store.close()
    assert _raw_hits(folder, MARK) == {}  # closing (index save, last checkpoint) adds none
    assert _raw_hits(folder, VICTIM) == {}


@pytest.mark.postgres
def test_forget_user_removes_every_row_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL: every table (incl. the tsvector column) is free of the marker.

    Dead tuples are PostgreSQL's to reclaim (VACUUM); see the Guarantees section.
    """
    with MemoryStore(postgres_url, embeddings=HashEmbeddings(),
                     index_path=tmp_path / "index.lpm") as store:
        _fill(store)
        with store.engine.connect() as conn:  # positive control: provenance holds the text
            rows = conn.execute(text("SELECT t::text FROM lpm_provenance t")).scalars().all()
            assert sum(MARK.lower() in r.lower() for r in rows) >= 2
        store.forget_user(VICTIM)
        store.export_jsonl(tmp_path / "export.jsonl")
        with store.engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            assert {"lpm_memories", "lpm_provenance"} <= set(tables)
            found = {}
            for table in tables:
                rows = conn.execute(text(f'SELECT t::text FROM "{table}" t')).scalars().all()
                found[table] = sum(MARK.lower() in r.lower() or VICTIM in r for r in rows)
                if table == "lpm_memories":
                    assert sum(KEEP.lower() in r.lower() for r in rows) == 40
        assert set(found.values()) == {0}, found
        assert _raw_hits(tmp_path, MARK) == {} and _raw_hits(tmp_path, VICTIM) == {}
        assert index_mismatches(store) == []


_READER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN")
conn.execute("SELECT count(*) FROM lpm_memories").fetchone()  # holds a read snapshot
print("reading", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def test_forget_user_with_a_reader_in_another_process_raises_and_stalls_nobody(
        tmp_path: Path) -> None:
    """Before: forget_user blocked for the reader's whole duration (the checkpoint waited
    with the write lock held), other users' adds stalled, and it returned with only a log
    warning while the WAL still held the erased text."""
    import subprocess
    import sys
    import threading
    import time

    from langchain_persistent_memory import ForgetIncompleteError

    folder = tmp_path / "data"
    store = MemoryStore(f"sqlite:///{folder / 'memories.db'}", embeddings=HashEmbeddings())
    _fill(store)
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(folder / "memories.db"), "12"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
        stalls: list[float] = []

        def neighbour_writes() -> None:
            for i in range(10):
                started = time.monotonic()
                store.add(f"{KEEP} written during the forget {i}", user_id="keep")
                stalls.append(time.monotonic() - started)
                time.sleep(0.2)

        writer = threading.Thread(target=neighbour_writes)
        started = time.monotonic()
        writer.start()
        with pytest.raises(ForgetIncompleteError) as caught:
            store.forget_user(VICTIM)
        took = time.monotonic() - started
        writer.join()
        assert took < 8, f"forget_user waited {took:.1f} s for the reader"
        # 2 garden-plan versions, 60 facts less the 20 deleted, 2 entity sentences
        assert caught.value.removed == 2 + 60 - 20 + 2 and caught.value.wal_frames > 0
        assert "read transaction" in str(caught.value) and caught.value.user_id == VICTIM
        assert max(stalls) < 3, stalls  # other users' writes never wait for the reader
        assert store.count(VICTIM, include_superseded=True) == 0  # the rows are gone anyway
    finally:
        reader.wait(timeout=30)
    assert store.forget_user(VICTIM) == 0  # the reader ended: this call empties the WAL
    assert _raw_hits(folder, MARK) == {}
    assert store.count("keep") == 50
    store.close()
