"""Provenance: every memory and every history event says where its write came from.

Why: a memory layer decides what a model believes about a person; "where did this come
from?" must have an answer in SQL (origin, the words and role it rests on, session, agent,
model, prompt version), survive a backup, and disappear with the user.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from langchain_persistent_memory import InvalidInputError, MemoryStore, Provenance
from langchain_persistent_memory.store.schema import provenance, read_meta, write_meta
from tests.support.embeddings import HashEmbeddings
from tests.support.snapshots import db_fingerprint

FROM_TURN = Provenance(origin="pipeline", roles=["user"], positions=[2],
                       message_ids=["run-1-msg-2"], evidence="I moved to Lisbon last spring",
                       session_id="thread-7",
                       agent_id="concierge", model="gpt-test", prompt_version="p1",
                       trust="user")


def _provenance_rows(store: MemoryStore, user_id: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(provenance)
                                .where(provenance.c.user_id == user_id)).scalar_one())


def test_every_write_path_records_its_origin_in_the_history(store: MemoryStore) -> None:
    """Before: nothing recorded the origin, role or words of a write (metadata at most)."""
    moved = store.add("The user lives in Lisbon", user_id="alice", provenance=FROM_TURN)
    [plain] = store.add_many(["The user likes tea"], user_id="alice")
    store.update(moved.id, category="home", user_id="alice",
                 provenance=Provenance(origin="ui"))
    newer = store.supersede(moved.id, "The user lives in Porto", user_id="alice",
                            provenance=Provenance(origin="tool", agent_id="concierge"))
    store.delete(newer.id, user_id="alice", provenance=Provenance(origin="cli"))

    events = store.history(moved.id, user_id="alice")
    assert [(e.event.value, e.provenance.origin if e.provenance else None) for e in events] \
        == [("ADD", "pipeline"), ("UPDATE", "ui"), ("SUPERSEDE", "tool")]
    assert events[0].provenance == FROM_TURN
    assert [(e.event.value, e.provenance.origin if e.provenance else None)
            for e in store.history(newer.id, user_id="alice")] == \
        [("ADD", "tool"), ("DELETE", "cli")]

    got = store.get(moved.id, user_id="alice", with_provenance=True).provenance
    assert got is not None and got.origin == "ui"  # the update last wrote it
    default = store.get(plain.id, user_id="alice", with_provenance=True).provenance
    assert default is not None and default.origin == "api"
    assert store.get(plain.id, user_id="alice").provenance is None  # opt-in only
    [hit] = store.search("tea", user_id="alice", k=1, with_provenance=True)
    assert hit.memory.id == plain.id and hit.memory.provenance == default


async def test_search_and_async_writes_carry_provenance(store: MemoryStore) -> None:
    memory = await store.aadd("The user lives in Lisbon", user_id="bob", provenance=FROM_TURN)
    [hit] = await store.asearch("Lisbon", user_id="bob", k=1, with_provenance=True)
    assert hit.memory.id == memory.id and hit.memory.provenance == FROM_TURN
    await store.adelete(memory.id, user_id="bob", provenance=Provenance(origin="tool"))
    events = await store.ahistory(memory.id, user_id="bob")
    assert [e.provenance.origin for e in events if e.provenance] == ["pipeline", "tool"]


def test_export_and_import_keep_provenance(store: MemoryStore, tmp_path: Path) -> None:
    memory = store.add("The user lives in Lisbon", user_id="alice", provenance=FROM_TURN)
    store.update(memory.id, importance=0.9, user_id="alice",
                 provenance=Provenance(origin="cli"))
    buffer = io.StringIO()
    store.export_jsonl(buffer)
    with MemoryStore(f"sqlite:///{tmp_path / 'restored.db'}",
                     embeddings=HashEmbeddings()) as restored:
        restored.import_jsonl(io.StringIO(buffer.getvalue()))
        assert [e.provenance for e in restored.history(memory.id, user_id="alice")] == \
            [e.provenance for e in store.history(memory.id, user_id="alice")]
        got = restored.get(memory.id, user_id="alice", with_provenance=True).provenance
        assert got is not None and got.origin == "cli"


def test_import_refuses_a_bad_provenance(sqlite_store: MemoryStore) -> None:
    sqlite_store.add("The user lives in Lisbon", user_id="alice", provenance=FROM_TURN)
    buffer = io.StringIO()
    sqlite_store.export_jsonl(buffer)
    sqlite_store.forget_user("alice")
    before = db_fingerprint(sqlite_store)
    forged = buffer.getvalue().replace('"origin":"pipeline"', '"origin":"rumour"')
    with pytest.raises(InvalidInputError, match="provenance") as caught:
        sqlite_store.import_jsonl(io.StringIO(forged))
    assert caught.value.field == "provenance"
    assert db_fingerprint(sqlite_store) == before


def test_bad_provenance_is_a_typed_error_and_writes_nothing(store: MemoryStore) -> None:
    before = store.count("alice")
    with pytest.raises(InvalidInputError, match=r"provenance\.model"):
        store.add("x", user_id="alice",
                  provenance=Provenance(origin="pipeline", model="m" * 300))
    with pytest.raises(InvalidInputError, match="provenance"):
        store.add("x", user_id="alice", provenance={"origin": "rumour"})  # type: ignore[arg-type]
    assert store.count("alice") == before and _provenance_rows(store, "alice") == 0


def test_forget_user_erases_the_users_provenance_only(store: MemoryStore) -> None:
    store.add("The user lives in Lisbon", user_id="alice", provenance=FROM_TURN)
    store.add("The user likes chess", user_id="carol")
    assert _provenance_rows(store, "alice") == 1
    store.forget_user("alice")
    assert _provenance_rows(store, "alice") == 0
    assert _provenance_rows(store, "carol") == 1


def test_a_version_6_database_gains_message_ids_and_keeps_its_provenance(
        store_url: str, tmp_path: Path) -> None:
    """v7 adds ``lpm_provenance.message_ids``: older rows read back without ids."""
    with MemoryStore(store_url, embeddings=HashEmbeddings()) as store:
        old = store.add("The user lives in Lisbon", user_id="alice",
                        provenance=FROM_TURN.model_copy(update={"message_ids": []}))
        with store.engine.begin() as conn:  # back to the version 6 layout
            conn.exec_driver_sql("ALTER TABLE lpm_provenance DROP COLUMN message_ids")
            write_meta(conn, "schema_version", "6")
    with MemoryStore(store_url, embeddings=HashEmbeddings()) as store:
        with store.engine.connect() as conn:
            assert read_meta(conn)["schema_version"] == "8"
        got = store.get(old.id, user_id="alice", with_provenance=True).provenance
        assert got is not None and got.message_ids == [] and got.positions == [2]
        new = store.add("The user likes tea", user_id="alice", provenance=FROM_TURN)
        assert store.get(new.id, user_id="alice", with_provenance=True).provenance == FROM_TURN
        buffer = io.StringIO()
        store.export_jsonl(buffer)
        assert '"message_ids":[]' in buffer.getvalue().replace(" ", "")
