"""Every public call of ``MemoryStore`` on SQLite and PostgreSQL (the ``store`` fixture).

Why: the store is what every integration builds on; each call must do what its docstring says
on both backends, keep users apart, and leave SQL and the FAISS index in agreement.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from langchain_persistent_memory import (
    ANY_USER,
    AddOp,
    DeleteOp,
    EventType,
    InvalidInputError,
    MemoryNotFoundError,
    MemoryStore,
    SupersedeOp,
    UpdateOp,
)
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings
from tests.support.snapshots import db_fingerprint

DAY = timedelta(days=1)


def contents(hits: list) -> list[str]:
    return [h.memory.content if hasattr(h, "memory") else h.content for h in hits]


def test_add_get_and_fields(store: MemoryStore) -> None:
    when = datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    m = store.add("Prefers short technical explanations", user_id="alice", agent_id="tutor",
                  session_id="s1", category="preference", importance=0.8,
                  metadata={"source": "chat", "n": [1, {"x": None}]}, valid_from=when)
    got = store.get(m.id, user_id="alice")
    assert got == m
    assert (got.user_id, got.agent_id, got.session_id) == ("alice", "tutor", "s1")
    assert (got.category, got.importance, got.valid_from) == ("preference", 0.8, when)
    assert got.metadata == {"source": "chat", "n": [1, {"x": None}]}
    assert got.is_current and got.valid_to is None and got.superseded_by is None
    assert got.created_at == got.updated_at and got.created_at.tzinfo is not None
    assert len(got.content_hash) == 64
    vec = store.get(m.id, with_embedding=True, user_id="alice").embedding
    assert vec is not None and len(vec) == 64
    assert abs(sum(x * x for x in vec) - 1) < 1e-5
    assert store.get(m.id, user_id="alice") == m
    with pytest.raises(MemoryNotFoundError):
        store.get(m.id, user_id="bob")  # another user's id looks missing


def test_add_identical_text_returns_existing(store: MemoryStore) -> None:
    first = store.add("Drinks oat milk", user_id="a")
    assert store.add("Drinks oat milk", user_id="a").id == first.id
    assert store.add("Drinks oat milk", user_id="a", agent_id="other").id != first.id
    assert store.add("Drinks oat milk", user_id="b").id != first.id
    assert store.count("a") == 2 and store.count() == 3


def test_update_changes_text_vector_and_history(store: MemoryStore) -> None:
    m = store.add("Works at Acme as an engineer", user_id="u", category="job")
    updated = store.update(m.id, content="Works at Globex as a manager", importance=0.9,
                           metadata={"v": 2}, user_id="u")
    assert (updated.id, updated.content, updated.importance) == (
        m.id, "Works at Globex as a manager", 0.9)
    assert updated.metadata == {"v": 2} and updated.category == "job"
    assert updated.updated_at > m.updated_at and updated.created_at == m.created_at
    assert store.get(m.id, user_id="u") == updated
    hits = store.search("Globex manager", user_id="u", k=1, mode="dense")
    assert hits[0].memory.id == m.id and hits[0].score > 0.5
    events = store.history(m.id, user_id="u")
    assert [e.event for e in events] == [EventType.ADD, EventType.UPDATE]
    assert (events[1].old_content, events[1].new_content) == (
        "Works at Acme as an engineer", "Works at Globex as a manager")
    store.update(m.id, category="work", user_id="u")  # fields only
    assert store.get(m.id, user_id="u").category == "work" and len(store.history(m.id,
            user_id="u")) == 3
    with pytest.raises(MemoryNotFoundError):
        store.update(m.id, importance=0.1, user_id="intruder")
    assert index_mismatches(store) == []


def test_supersede_keeps_old_row_and_hides_it(store: MemoryStore) -> None:
    old = store.add("Lives in Lisbon", user_id="u", category="home", importance=0.7)
    new = store.supersede(old.id, "Lives in Porto", user_id="u")
    before = store.get(old.id, user_id="u")
    assert before.valid_to is not None and before.superseded_by == new.id
    assert not before.is_current and new.is_current
    assert (new.category, new.importance) == ("home", 0.7)  # carried over
    assert contents(store.search("Lives in", user_id="u", k=5)) == ["Lives in Porto"]
    both = contents(store.search("Lives in", user_id="u", k=5, include_superseded=True))
    assert sorted(both) == ["Lives in Lisbon", "Lives in Porto"]
    assert store.count("u") == 1 and store.count("u", include_superseded=True) == 2
    assert contents(store.list("u")) == ["Lives in Porto"]
    assert [e.event for e in store.history(old.id,
            user_id="u")] == [EventType.ADD, EventType.SUPERSEDE]
    assert store.history(old.id, user_id="u")[1].metadata == {"superseded_by": new.id}
    assert store.history(new.id, user_id=ANY_USER)[0].metadata == {"supersedes": old.id}
    with pytest.raises(InvalidInputError, match="already superseded"):
        store.supersede(old.id, "Lives in Faro", user_id="u")
    assert index_mismatches(store) == []


def test_supersede_valid_from_ends_old_row_then(store: MemoryStore) -> None:
    old = store.add("Owns a bike", user_id="u")
    moment = datetime(2030, 1, 1, tzinfo=timezone.utc)
    new = store.supersede(old.id, "Owns a car", valid_from=moment, user_id="u")
    assert store.get(old.id, user_id="u").valid_to == moment and new.valid_from == moment


def test_delete_then_search_and_history_survives(store: MemoryStore) -> None:
    keep = store.add("Allergic to peanuts", user_id="u")
    gone = store.add("Allergic to shellfish", user_id="u")
    assert store.index_info("u").vectors == 0  # loaded by the user's first search
    assert len(store.search("Allergic", user_id="u")) == 2
    assert store.index_info("u").vectors == 2
    deleted = store.delete(gone.id, reason="wrong", user_id="u")
    assert deleted.id == gone.id and deleted.content == "Allergic to shellfish"
    assert store.index_info("u").vectors == 1  # removed from the loaded partition at once
    assert contents(store.search("Allergic to shellfish", user_id="u", k=5)) == [
        "Allergic to peanuts"]
    with pytest.raises(MemoryNotFoundError):
        store.get(gone.id, user_id="u")
    events = store.history(gone.id, user_id="u")
    assert [e.event for e in events] == [EventType.ADD, EventType.DELETE]
    assert events[1].old_content == "Allergic to shellfish" and events[1].metadata == {
        "reason": "wrong"}
    with pytest.raises(MemoryNotFoundError):
        store.delete(gone.id, user_id="u")
    with pytest.raises(MemoryNotFoundError):
        store.delete(keep.id, user_id="someone else")
    assert store.get(keep.id, user_id="u").is_current
    assert index_mismatches(store) == []


def test_list_count_users_and_paging(store: MemoryStore) -> None:
    store.add_many([f"note {i}" for i in range(5)], user_id="b")
    store.add("only one", user_id="a")
    assert store.users() == ["a", "b"]
    assert store.count() == 6 and store.count("b") == 5 and store.count("nobody") == 0
    listed = store.list("b")
    assert sorted(contents(listed)) == [f"note {i}" for i in range(5)]
    assert contents(store.list("b", limit=2)) == contents(listed)[:2]
    assert contents(store.list("b", limit=2, offset=2)) == contents(listed)[2:4]
    later = store.add("newest", user_id="b")
    assert store.list("b")[0].id == later.id  # newest first


def test_forget_user_erases_everything_of_that_user_only(store: MemoryStore) -> None:
    gone = store.add_many(["secret one", "secret two"], user_id="leaver")
    store.supersede(gone[0].id, "secret three", user_id="leaver")
    kept = store.add("stays", user_id="stayer")
    assert store.search("secret", user_id="leaver") and store.index_info("leaver").vectors == 3
    assert store.forget_user("leaver") == 3
    assert store.users() == ["stayer"] and store.count("leaver", include_superseded=True) == 0
    assert store.search("secret", user_id="leaver") == []
    assert store.index_info("leaver").users_loaded == 0
    for m in gone:
        with pytest.raises(MemoryNotFoundError):
            store.history(m.id, user_id=ANY_USER)
    assert store.get(kept.id, user_id="stayer").content == "stays"
    assert store.forget_user("leaver") == 0
    assert index_mismatches(store) == []


def test_add_many_is_one_call_and_accepts_dicts_and_ops(store: MemoryStore) -> None:
    emb = store.embeddings
    assert isinstance(emb, HashEmbeddings)
    added = store.add_many(["plain text", {"content": "a dict", "category": "c",
                                           "importance": 0.2, "metadata": {"k": 1}},
                            AddOp(content="an op", agent_id="bot")], user_id="u")
    assert len(emb.calls) == 1
    assert [(m.content, m.category, m.agent_id) for m in added] == [
        ("plain text", None, None), ("a dict", "c", None), ("an op", None, "bot")]
    assert store.count("u") == 3
    with pytest.raises(InvalidInputError, match="unknown fields"):
        store.add_many([{"content": "x", "colour": "red"}], user_id="u")


def test_add_many_with_one_bad_item_writes_nothing(store: MemoryStore) -> None:
    store.add("existing", user_id="u")
    before = db_fingerprint(store)
    with pytest.raises(InvalidInputError):
        store.add_many(["fine", "also fine", {"content": "bad", "importance": 7}], user_id="u")
    assert db_fingerprint(store) == before


def test_apply_mixes_operations_in_one_transaction(store: MemoryStore) -> None:
    a = store.add("Likes cats", user_id="u")
    b = store.add("Lives in Rome", user_id="u")
    c = store.add("Plays golf", user_id="u")
    results = store.apply([AddOp(content="Likes dogs"), UpdateOp(memory_id=a.id, importance=1),
                           SupersedeOp(memory_id=b.id, content="Lives in Milan"),
                           DeleteOp(memory_id=c.id)], user_id="u")
    assert [r.kind for r in results] == ["add", "update", "supersede", "delete"]
    assert results[1].previous is not None and results[1].previous.importance == 0.5
    assert results[2].previous is not None and results[2].previous.id == b.id
    assert sorted(contents(store.list("u"))) == ["Likes cats", "Likes dogs", "Lives in Milan"]
    assert index_mismatches(store) == []


@pytest.mark.parametrize("bad_op", [
    DeleteOp(memory_id="00000000-0000-0000-0000-000000000000"),
    UpdateOp(memory_id="OWNED_BY_OTHER", content="hijack"),
    SupersedeOp(memory_id="ALREADY_SUPERSEDED", content="again"),
    UpdateOp(memory_id="OWN", importance=3),
])
def test_apply_with_one_bad_op_writes_nothing(store: MemoryStore, bad_op: object) -> None:
    own = store.add("mine", user_id="u")
    other = store.add("theirs", user_id="v")
    old = store.add("old news", user_id="u")
    store.supersede(old.id, "new news", user_id="u")
    ids = {"OWNED_BY_OTHER": other.id, "ALREADY_SUPERSEDED": old.id, "OWN": own.id}
    if hasattr(bad_op, "memory_id") and bad_op.memory_id in ids:  # type: ignore[attr-defined]
        bad_op = bad_op.model_copy(update={"memory_id": ids[bad_op.memory_id]})  # type: ignore
    assert index_mismatches(store) == []  # loads both users' partitions
    before = db_fingerprint(store)
    with pytest.raises((InvalidInputError, MemoryNotFoundError)):
        store.apply([AddOp(content="a brand new fact"), UpdateOp(memory_id=own.id,
                                                                 content="changed"),
                     DeleteOp(memory_id=old.id), bad_op], user_id="u")  # type: ignore[list-item]
    assert db_fingerprint(store) == before
    assert store.index_info().vectors == 4 and index_mismatches(store) == []


def test_apply_admin_scope_edits_any_user_but_cannot_add(store: MemoryStore) -> None:
    m = store.add("x", user_id="u")
    store.apply([UpdateOp(memory_id=m.id, importance=0.1)], user_id=ANY_USER)
    assert store.get(m.id, user_id="u").importance == 0.1
    with pytest.raises(InvalidInputError, match="user_id"):
        store.apply([AddOp(content="y")], user_id=ANY_USER)


def test_search_filters(store: MemoryStore) -> None:
    t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    store.add("tea in the garden", user_id="u", category="food", agent_id="a1",
              session_id="s1", metadata={"src": "chat", "n": 1, "ok": True, "f": 0.5},
              valid_from=t)
    store.add("tea at the office", user_id="u", category="work", agent_id="a2",
              session_id="s2", metadata={"src": "email", "n": 2, "ok": False, "f": 1.5},
              valid_from=t + 10 * DAY)
    store.add("tea with friends", user_id="u", category="social", valid_from=t + 20 * DAY)

    def find(**filters: object) -> list[str]:
        return sorted(contents(store.search("tea", user_id="u", k=10, **filters)))

    assert len(find()) == 3
    assert find(category="food") == ["tea in the garden"]
    assert find(category=["food", "social"]) == ["tea in the garden", "tea with friends"]
    assert find(agent_id="a2") == ["tea at the office"]
    assert find(session_id="s1") == ["tea in the garden"]
    assert find(metadata={"src": "email"}) == ["tea at the office"]
    assert find(metadata={"n": 1}) == ["tea in the garden"]
    assert find(metadata={"ok": False}) == ["tea at the office"]
    assert find(metadata={"f": 1.5}) == ["tea at the office"]
    assert find(metadata={"src": "chat", "n": 2}) == []
    assert find(since=t + 5 * DAY) == ["tea at the office", "tea with friends"]
    assert find(until=t + 5 * DAY) == ["tea in the garden"]
    assert find(since=t + 5 * DAY, until=t + 15 * DAY) == ["tea at the office"]
    assert find(category="nothing") == []
    assert sorted(contents(store.list("u", category="work"))) == ["tea at the office"]
    with pytest.raises(InvalidInputError, match="unknown filter"):
        store.search("tea", user_id="u", colour="red")


def test_min_score_and_k(store: MemoryStore) -> None:
    store.add_many([f"alpha beta {i}" for i in range(8)] + ["zeta eta theta"], user_id="u")
    assert len(store.search("alpha beta", user_id="u", k=3)) == 3
    everything = store.search("alpha beta", user_id="u", k=20, mode="dense")
    assert len(everything) >= 8
    hits = store.search("alpha beta", user_id="u", k=20, min_score=0.5, mode="dense")
    assert hits == [h for h in everything if h.score >= 0.5]
    assert 5 <= len(hits) < 9 and "zeta eta theta" not in contents(hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_search_by_vector_matches_search(store: MemoryStore) -> None:
    store.add_many(["red apples", "green pears", "ripe green pears and apples"], user_id="u")
    by_text = store.search("green pears", user_id="u", k=3, mode="dense")
    by_vec = store.search_by_vector(store.embed_query("green pears"), user_id="u", k=3)
    assert [h.memory.id for h in by_vec] == [h.memory.id for h in by_text]


def test_isolation_few_far_memories_are_not_crowded_out(store: MemoryStore) -> None:
    """A user with 3 memories far from the query still gets exactly their own top-k."""
    store.add_many([f"quantum physics lecture notes part {i}" for i in range(400)],
                   user_id="physicist")
    mine = store.add_many(["banana bread recipe", "sourdough starter feeding",
                           "tomato soup"], user_id="cook")
    for k in (1, 2, 3, 10):
        hits = store.search("quantum physics lecture notes", user_id="cook", k=k,
                            mode="dense")
        assert len(hits) == min(k, 3)
        assert {h.memory.user_id for h in hits} == {"cook"}
    assert {h.memory.id for h in store.search("quantum physics", user_id="cook", k=10)} == {
        m.id for m in mine}
    assert all(h.memory.user_id == "physicist"
               for h in store.search("banana bread recipe", user_id="physicist", k=50))
    assert store.search("banana", user_id="nobody") == []


def test_context_managers_and_closed_store(store_url: str, tmp_path: Path) -> None:
    with MemoryStore(store_url, embeddings=HashEmbeddings(),
                     index_path=tmp_path / "cm.lpm") as s:
        s.add("inside the with block", user_id="u")
    with pytest.raises(InvalidInputError, match="closed"):
        s.add("after close", user_id="u")
    with pytest.raises(InvalidInputError, match="closed"):
        s.search("anything", user_id="u")
    s.close()  # twice is fine
    with MemoryStore(store_url, embeddings=HashEmbeddings(),
                     index_path=tmp_path / "cm.lpm") as again:
        assert contents(again.list("u")) == ["inside the with block"]


async def test_async_context_manager_and_every_twin(store_url: str, tmp_path: Path) -> None:
    async with MemoryStore(store_url, embeddings=HashEmbeddings(),
                           index_path=tmp_path / "a.lpm") as s:
        m = await s.aadd("async fact one", user_id="u", category="c")
        many = await s.aadd_many(["async fact two", "async fact three"], user_id="u")
        assert (await s.aget(m.id, user_id="u")).content == "async fact one"
        updated = await s.aupdate(m.id, content="async fact uno", user_id="u")
        assert updated.content == "async fact uno"
        new = await s.asupersede(many[0].id, "async fact dos", user_id="u")
        assert (await s.aget(many[0].id, user_id="u")).superseded_by == new.id
        await s.adelete(many[1].id, user_id="u")
        results = await s.aapply([AddOp(content="async fact four")], user_id="u")
        assert results[0].kind == "add"
        assert [e.event for e in await s.ahistory(m.id,
                user_id="u")] == [EventType.ADD, EventType.UPDATE]
        assert sorted(contents(await s.alist("u"))) == [
            "async fact dos", "async fact four", "async fact uno"]
        assert await s.acount("u") == 3
        hits = await s.asearch("async fact uno", user_id="u", k=1)
        assert hits[0].memory.id == m.id
        assert await s.aforget_user("u") == 4
    with pytest.raises(InvalidInputError, match="closed"):
        await s.aadd("late", user_id="u")


async def test_concurrent_async_writes_do_not_mix_up_vectors(store: MemoryStore) -> None:
    """Two aadd_many calls in flight together: each must use its own reused vectors."""

    class SlowAsync(HashEmbeddings):
        async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
            await asyncio.sleep(0.05)
            return self.embed_documents(texts)

    store.embeddings = SlowAsync()
    store.add("a text stored earlier", user_id="other")
    first, second = await asyncio.gather(
        store.aadd_many(["a text stored earlier", "brand new one"], user_id="x"),
        store.aadd_many(["another brand new"], user_id="y"))
    assert contents(first) == ["a text stored earlier", "brand new one"]
    assert contents(second) == ["another brand new"]
    assert index_mismatches(store) == []


async def test_many_concurrent_async_adds(store: MemoryStore) -> None:
    added = await asyncio.gather(*[store.aadd(f"parallel memory {i}", user_id=f"u{i % 3}")
                                   for i in range(30)])
    assert len({m.id for m in added}) == 30
    assert store.count() == 30
    assert index_mismatches(store) == []


def test_stats(store: MemoryStore) -> None:
    old = store.add("one", user_id="a")
    store.supersede(old.id, "two", user_id="a")
    store.add("three", user_id="b")
    stats = store.stats()
    assert (stats["memories"], stats["superseded"], stats["users"]) == (2, 1, 2)
    assert stats["history_events"] == 4 and stats["indexed_vectors"] == 0  # none searched
    store.search("one", user_id="a", include_superseded=True)
    assert store.stats()["indexed_vectors"] == 2 and store.stats()["users_loaded"] == 1
    assert stats["dimension"] == 64 and stats["embedding_model"] == store.model_name


@pytest.mark.parametrize("mode", ["dense", "hybrid", "keyword"])
def test_store_opened_empty_sees_first_vectors_written_elsewhere(store_url: str, tmp_path: Path,
                                                                  mode: str) -> None:
    """No vectors (and no dimension) when opened: the next search must still catch up."""
    reader = MemoryStore(store_url, embeddings=HashEmbeddings(), index_path=tmp_path / "r.lpm")
    try:
        with MemoryStore(store_url, embeddings=HashEmbeddings(),
                         index_path=tmp_path / "w.lpm") as writer:
            writer.add("hello keyword world", user_id="x")
        hits = reader.search("hello keyword", user_id="x", mode=mode)
        assert contents(hits) == ["hello keyword world"]
    finally:
        reader.close()
