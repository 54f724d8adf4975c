"""The keyword index on SQLite (FTS5) and PostgreSQL (tsvector): kept in the same
transactions as the rows, scoped to one user, safe against query syntax."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from langchain_persistent_memory import AddOp, DeleteOp, MemoryNotFoundError, MemoryStore
from langchain_persistent_memory.store.keyword import query_phrases
from tests.support.embeddings import HashEmbeddings


def keyword_hits(store: MemoryStore, query: str, user_id: str = "alice", **kw: object) -> list[str]:
    return [h.memory.content for h in store.search(query, user_id=user_id, k=20,
                                                   mode="keyword", **kw)]


def test_every_write_path_keeps_the_keyword_index_current(store: MemoryStore) -> None:
    first = store.add("Alice adopted a greyhound called Comet", user_id="alice")
    assert keyword_hits(store, "greyhound") == ["Alice adopted a greyhound called Comet"]

    store.update(first.id, content="Alice adopted a whippet called Comet", user_id="alice")
    assert keyword_hits(store, "greyhound") == []
    assert keyword_hits(store, "whippet") == ["Alice adopted a whippet called Comet"]

    newer = store.supersede(first.id, "Alice rehomed Comet with her sister", user_id="alice")
    assert keyword_hits(store, "whippet") == []
    assert keyword_hits(store, "whippet", include_superseded=True) == [
        "Alice adopted a whippet called Comet"]
    assert keyword_hits(store, "rehomed") == ["Alice rehomed Comet with her sister"]

    store.delete(newer.id, user_id="alice")
    assert keyword_hits(store, "rehomed") == []

    store.add_many(["Alice plays the cello", "Alice paints on Sundays"], user_id="alice")
    assert keyword_hits(store, "cello paints") and len(keyword_hits(store, "cello paints")) == 2
    assert store.forget_user("alice") == 3
    assert keyword_hits(store, "cello paints Comet whippet", include_superseded=True) == []


def test_a_failed_transaction_leaves_the_keyword_index_untouched(store: MemoryStore) -> None:
    with pytest.raises(MemoryNotFoundError):
        store.apply([AddOp(content="Alice learns the oboe"),
                     DeleteOp(memory_id="no-such-memory")], user_id="alice")
    assert keyword_hits(store, "oboe") == []


def test_keyword_search_never_crosses_users(store: MemoryStore) -> None:
    store.add_many([f"Bob's marathon training, week {i}" for i in range(30)], user_id="bob")
    store.add("Alice ran her first marathon in Boston", user_id="alice")
    for mode in ("keyword", "hybrid"):
        hits = store.search("marathon training week", user_id="alice", k=10, mode=mode)
        assert [h.memory.user_id for h in hits] == ["alice"]
    assert keyword_hits(store, "marathon", user_id="carol") == []


def test_query_syntax_is_taken_literally(store: MemoryStore) -> None:
    store.add('She said "NEAR(a b)" OR maybe * not', user_id="alice")
    for query in ['"unbalanced', "NEAR(a b)", "a OR b AND", "* -x ^y", "col:term", "'; DROP",
                  "??!!", "don't & | !"]:
        store.search(query, user_id="alice", mode="keyword")  # must not raise
    assert keyword_hits(store, '"near') == ['She said "NEAR(a b)" OR maybe * not']


def test_filters_apply_to_keyword_hits(store: MemoryStore) -> None:
    store.add("Alice's favourite tea is oolong", user_id="alice", category="food")
    store.add("Alice's oolong teapot broke", user_id="alice", category="events")
    assert keyword_hits(store, "oolong", category="food") == ["Alice's favourite tea is oolong"]


def test_stemming_matches_word_forms(store: MemoryStore) -> None:
    store.add("Alice went hiking in the Alps", user_id="alice")
    assert keyword_hits(store, "hikes") == ["Alice went hiking in the Alps"]


def test_words_side_by_side_outrank_the_same_words_apart(store: MemoryStore) -> None:
    apart = "Meteor photo, then a shower"
    together = "Alice watched a meteor shower over the hills with two cousins last night"
    store.add_many([apart, together], user_id="alice")
    assert keyword_hits(store, "meteor shower") == [together, apart]
    assert query_phrases("the meteor showers, and THE night sky") == [
        "meteor shower", "night sky"]  # stemmed


def test_an_old_database_upgrades_to_per_user_keywords(store_url: str, tmp_path: Path) -> None:
    """A v1 database goes through v2-v3 (global keyword index, change log) to v4, which
    drops them again: keyword search then runs on the user's own statistics."""
    with MemoryStore(store_url, embeddings=HashEmbeddings(), index_path=tmp_path / "i") as s:
        s.add("Alice keeps bees on the roof", user_id="alice")
        with s.engine.begin() as conn:  # back to schema version 1
            conn.exec_driver_sql("DROP TABLE lpm_users")
            conn.execute(text("UPDATE lpm_meta SET value = '1' WHERE key = 'schema_version'"))
    with MemoryStore(store_url, embeddings=HashEmbeddings(), index_path=tmp_path / "i") as s:
        assert keyword_hits(s, "bees") == ["Alice keeps bees on the roof"]
        assert not {"lpm_fts", "lpm_changes"} & set(inspect(s.engine).get_table_names())
        assert "content_tsv" not in {c["name"] for c in inspect(s.engine).get_columns(
            "lpm_memories")}


def test_forgetting_leaves_no_keyword_trace_in_the_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with MemoryStore(f"sqlite:///{db}", embeddings=HashEmbeddings()) as s:
        s.add_many([f"Alice's secret word is zyxwvutsrq number {i}" for i in range(50)],
                   user_id="alice")
        s.add("Bob keeps his own notes", user_id="bob")
        s.forget_user("alice")
        assert keyword_hits(s, "notes", user_id="bob") == ["Bob keeps his own notes"]
    assert b"zyxwvutsrq" not in db.read_bytes()
