"""Entity rows in SQL: written with memories, removed with them, per user, rebuildable,
carried by export/import — on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from langchain_persistent_memory import MemoryStore
from tests.support.embeddings import HashEmbeddings


def names(store: MemoryStore, user_id: str, **kw: bool) -> dict[str, int]:
    return {e.key: len(e.memory_ids) for e in store.entities(user_id, **kw)}


def test_adds_link_entities_per_user(store: MemoryStore) -> None:
    a = store.add("Caroline: I moved from Sweden to Boston", user_id="u1")
    store.add_many(["Melanie: I know Caroline loves Sweden", "Melanie: pottery class"],
                   user_id="u1")
    store.add("Bob: I hear Sweden is cold", user_id="u2")
    assert names(store, "u1") == {"caroline": 2, "melanie": 2, "sweden": 2, "boston": 1}
    assert names(store, "u2") == {"bob": 1, "sweden": 1}
    sweden = next(e for e in store.entities("u1") if e.key == "sweden")
    assert a.id in sweden.memory_ids and sweden.name == "Sweden" and sweden.kind == "name"
    caroline = next(e for e in store.entities("u1") if e.key == "caroline")
    assert caroline.kind == "person" and caroline.subject_of == 1


def test_delete_update_supersede_keep_links_in_step(store: MemoryStore) -> None:
    a = store.add("Caroline: I moved from Sweden", user_id="u")
    b = store.add("Caroline: Paris was lovely", user_id="u")
    store.delete(b.id, user_id="u")
    assert names(store, "u") == {"caroline": 1, "sweden": 1}  # "paris" is gone with it
    store.update(a.id, content="Caroline: I moved from Norway", user_id="u")
    assert names(store, "u") == {"caroline": 1, "norway": 1}
    c = store.supersede(a.id, "Caroline: I moved from Denmark", user_id="u")
    assert names(store, "u") == {"caroline": 1, "denmark": 1}  # a superseded fact's link ends
    assert names(store, "u", include_superseded=True) == \
        {"caroline": 2, "denmark": 1, "norway": 1}
    store.delete(c.id, user_id="u")
    assert "denmark" not in names(store, "u", include_superseded=True)


def test_forget_user_removes_entities_and_links_only_of_that_user(store: MemoryStore) -> None:
    store.add("Caroline: I saw Sweden", user_id="gone")
    store.add("Melanie: I saw Sweden", user_id="kept")
    store.forget_user("gone")
    with store.engine.connect() as conn:
        for table in ("lpm_entities", "lpm_memory_entities"):
            users = conn.execute(text(f"SELECT DISTINCT user_id FROM {table}")).scalars().all()
            assert users == ["kept"], table
    assert names(store, "gone") == {}


def test_export_import_carries_entities(store: MemoryStore, tmp_path: Path) -> None:
    store.add_many(["Caroline: I moved from Sweden", "Melanie: hi Caroline"], user_id="u")
    before = names(store, "u")
    store.export_jsonl(tmp_path / "out.jsonl")
    store.forget_user("u")
    assert names(store, "u") == {}
    store.import_jsonl(tmp_path / "out.jsonl")
    assert names(store, "u") == before == {"caroline": 2, "sweden": 1, "melanie": 1}


def test_migration_rebuilds_entities_from_stored_memories(tmp_path: Path) -> None:
    """A v4 database (no entity tables) gains them, filled from its memories' text."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with MemoryStore(url, embeddings=HashEmbeddings()) as store:
        store.add("Caroline: I moved from Sweden", user_id="u")
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE lpm_memory_entities"))
            conn.execute(text("DROP TABLE lpm_entities"))
            conn.execute(text("UPDATE lpm_meta SET value = '4' WHERE key = 'schema_version'"))
    with MemoryStore(url, embeddings=HashEmbeddings()) as store:
        assert names(store, "u") == {"caroline": 1, "sweden": 1}
