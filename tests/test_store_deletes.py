"""Single deletes stay correct under concurrency and after the server drops connections.

Why: on PostgreSQL a user's single delete runs as one statement on connections the store
keeps in autocommit mode (no BEGIN/COMMIT, no pool reset). Kept connections are shared
by threads and can be closed by the server (restart, idle timeout, an administrator):
neither may lose, repeat or misreport a delete.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text

from langchain_persistent_memory import EventType, MemoryNotFoundError, MemoryStore
from tests.support.embeddings import HashEmbeddings


def _in_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_single_deletes_from_many_threads(store: MemoryStore) -> None:
    users = [f"u{i}" for i in range(4)]
    ids = {u: [m.id for m in store.add_many([f"{u} fact {j}" for j in range(12)], user_id=u)]
           for u in users}
    jobs = [(u, memory_id) for u in users for memory_id in ids[u]]

    def work(i: int) -> None:
        for user, memory_id in jobs[i::8]:
            assert store.delete(memory_id, user_id=user).id == memory_id

    assert _in_threads(8, work) == []
    for user in users:
        assert store.count(user) == 0
        assert store.search("fact", user_id=user, k=20) == []
        for memory_id in ids[user]:
            events = [e.event for e in store.history(memory_id, user_id=user)]
            assert events == [EventType.ADD, EventType.DELETE]


def test_one_memory_deleted_by_two_threads_at_once_is_deleted_once(store: MemoryStore) -> None:
    for round_ in range(5):
        memory = store.add(f"Plays the oboe {round_}", user_id="alice")
        outcomes: list[str] = []

        def work(_: int, memory_id: str = memory.id, outcomes: list[str] = outcomes) -> None:
            try:
                store.delete(memory_id, user_id="alice")
                outcomes.append("deleted")
            except MemoryNotFoundError:
                outcomes.append("not found")

        assert _in_threads(2, work) == []
        assert sorted(outcomes) == ["deleted", "not found"]
        events = [e.event for e in store.history(memory.id, user_id="alice")]
        assert events == [EventType.ADD, EventType.DELETE]


def test_a_delete_after_the_server_closed_the_store_s_connections(postgres_url: str) -> None:
    app = f"lpm_test_{uuid.uuid4().hex[:10]}"
    url = f"{postgres_url}&application_name={app}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with MemoryStore(url, embeddings=HashEmbeddings()) as store:
        kept = [store.add(f"Fact {i}", user_id="alice") for i in range(4)]
        store.delete(kept[0].id, user_id="alice")  # the autocommit connection is now kept
        for victim in kept[1:3]:
            with admin.connect() as conn:
                closed = conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :app"), {"app": app}).scalar_one()
            assert closed >= 1
            assert store.delete(victim.id, user_id="alice").id == victim.id
        assert [m.id for m in store.list("alice")] == [kept[3].id]
        assert [h.memory.id for h in store.search("Fact", user_id="alice")] == [kept[3].id]
        with pytest.raises(MemoryNotFoundError):
            store.delete(kept[1].id, user_id="alice")
    admin.dispose()
