"""Concurrency: several processes on one SQLite file or one PostgreSQL database, and several
threads on one ``MemoryStore``. No lost writes, no "database is locked" reaching the caller,
every replica sees every other process's committed writes, and the index still equals SQL.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_persistent_memory import MemoryStore
from tests.support.concurrent_worker import USERS, fact, worker
from tests.support.consistency import index_mismatches, rows_by_id
from tests.support.crash_harness import worker_context
from tests.support.embeddings import HashEmbeddings

WRITERS = ["w0", "w1", "w2"]
READERS = ["r0"]
PER_WRITER = 24


def _run_processes(url: str, tmp_path: Path, shared_index: bool) -> list[dict]:  # type: ignore[type-arg]
    ctx = worker_context()
    names = WRITERS + READERS
    barrier = ctx.Barrier(len(names), timeout=120)
    procs = []
    for name in names:
        # SQLite: every process uses the default index file next to the database (the
        # realistic setup: they overwrite each other's saves). PostgreSQL: one file each.
        index = None if shared_index else str(tmp_path / f"{name}.lpm")
        writes = PER_WRITER if name in WRITERS else 0
        proc = ctx.Process(target=worker, args=(url, index, name, writes, WRITERS, PER_WRITER,
                                                barrier, str(tmp_path / f"{name}.json")))
        proc.start()
        procs.append(proc)
    for proc in procs:
        proc.join(180)
        assert proc.exitcode == 0
    return [json.loads((tmp_path / f"{n}.json").read_text()) for n in names]


def _check(url: str, results: list[dict], index_path: Path | None) -> None:  # type: ignore[type-arg]
    errors = [e for r in results for e in r["errors"] if "BrokenBarrierError" not in e]
    assert errors == [], errors[0]  # the cause, not the other workers' broken barrier
    for result in results:
        assert result["errors"] == [], result["errors"][0]
        assert result["unseen"] == [], f"{result['name']} cannot find {result['unseen'][:5]}"
    with MemoryStore(url, embeddings=HashEmbeddings(), index_path=index_path) as store:
        rows = rows_by_id(store)
        written = {mid: (r["name"], int(i)) for r in results for i, mid in r["ids"].items()}
        assert len(written) == len(WRITERS) * PER_WRITER
        for mid, (name, i) in written.items():  # no lost (or overwritten) writes
            assert rows[mid].content == fact(name, i)
            assert rows[mid].user_id == USERS[i % len(USERS)]
        assert len(rows) == len(written)
        assert index_mismatches(store) == []


def test_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'memories.db'}"
    results = _run_processes(url, tmp_path, shared_index=True)
    _check(url, results, None)


@pytest.mark.postgres
def test_processes_share_one_postgres_database(postgres_url: str, tmp_path: Path) -> None:
    results = _run_processes(postgres_url, tmp_path, shared_index=False)
    _check(postgres_url, results, tmp_path / "check.lpm")


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads very often so races that need unlucky timing show up in a short test."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_threads_share_one_store(store: MemoryStore, fast_switching: None) -> None:
    store.add("common text shared by everyone", user_id="seed")
    errors: list[str] = []
    kept: dict[str, tuple[str, str]] = {}
    lock = threading.Lock()

    def work(t: int) -> None:
        user = f"user{t % 3}"
        try:
            for i in range(40):
                if i % 2:  # identical text already stored: its vector is reused, not embedded
                    m = store.add("common text shared by everyone", user_id=f"{user}-{t}-{i}")
                    with lock:
                        kept[m.id] = (f"{user}-{t}-{i}", m.content)
                    continue
                m = store.add(f"thread {t} item {i} apples", user_id=user)
                if i % 6 == 0:
                    m = store.update(m.id, content=f"thread {t} item {i} pears", user_id=user)
                if i % 8 == 0:
                    store.delete(m.id, user_id=user)
                else:
                    with lock:
                        kept[m.id] = (user, m.content)
                hits = store.search(f"thread {t} item {i}", user_id=user, k=3)
                assert all(h.memory.user_id == user for h in hits)
        except Exception as exc:  # reported below; a thread must not die silently
            errors.append(f"thread {t}: {exc!r}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = rows_by_id(store)
    for mid, (user, content) in kept.items():
        assert (rows[mid].user_id, rows[mid].content) == (user, content)
    assert len(rows) == len(kept) + 1
    assert index_mismatches(store) == []
