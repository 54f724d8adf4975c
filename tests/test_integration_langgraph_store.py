"""One behaviour suite for LangGraph stores, run on the reference ``InMemoryStore`` and on
``PersistentStore`` (SQLite and PostgreSQL): every behaviour we claim is checked against
LangGraph's own implementation first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore
from sqlalchemy import create_engine, text

from langchain_persistent_memory import MemoryStore
from langchain_persistent_memory.integrations.langgraph_store import PersistentStore
from tests.support.embeddings import HashEmbeddings

DIM = 256
FIELDS = ["text"]


@pytest.fixture(scope="module")
def shared_postgres(postgres_server_url: str) -> Iterator[str]:
    """One database for the module, emptied before each test (creating one per test costs
    ~2 s each on a busy server)."""
    name = f"lpm_lg_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"{postgres_server_url.rpartition('/')[0]}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _emptied(url: str) -> str:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename LIKE 'lpm%' AND tablename <> 'lpm_meta'"))]
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
    engine.dispose()
    return url


@pytest.fixture(params=["reference", "sqlite", "postgres"])
def lg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
    if request.param == "reference":
        yield InMemoryStore(index={"dims": DIM, "embed": HashEmbeddings(DIM), "fields": FIELDS})
        return
    url = (f"sqlite:///{tmp_path / 'lg.db'}" if request.param == "sqlite"
           else _emptied(request.getfixturevalue("shared_postgres")))
    memory_store = MemoryStore(url, embeddings=HashEmbeddings(DIM),
                               index_path=tmp_path / "lg.index")
    yield PersistentStore(memory_store, index={"fields": FIELDS})
    memory_store.close()


def test_put_get_overwrite_delete(lg: BaseStore) -> None:
    ns = ("users", "alice")
    assert lg.get(ns, "prefs") is None
    lg.put(ns, "prefs", {"text": "likes tea", "n": 1})
    item = lg.get(ns, "prefs")
    assert item is not None and item.value == {"text": "likes tea", "n": 1}
    assert (item.namespace, item.key) == (ns, "prefs")
    assert item.created_at.tzinfo is not None and item.updated_at >= item.created_at
    lg.put(ns, "prefs", {"text": "likes coffee"})
    assert lg.get(ns, "prefs").value == {"text": "likes coffee"}
    lg.delete(ns, "prefs")
    assert lg.get(ns, "prefs") is None


def test_namespaces_are_separate(lg: BaseStore) -> None:
    lg.put(("users", "alice"), "k", {"text": "alice's"})
    lg.put(("users", "bob"), "k", {"text": "bob's"})
    assert lg.get(("users", "alice"), "k").value == {"text": "alice's"}
    assert lg.get(("users", "bob"), "k").value == {"text": "bob's"}
    assert lg.get(("users",), "k") is None


def test_search_prefix_is_label_wise(lg: BaseStore) -> None:
    lg.put(("a", "b"), "1", {"text": "one"})
    lg.put(("a",), "2", {"text": "two"})
    lg.put(("ab",), "3", {"text": "three"})
    lg.put(("a%",), "4", {"text": "four"})
    assert {i.key for i in lg.search(("a",))} == {"1", "2"}
    assert {i.key for i in lg.search(("a", "b"))} == {"1"}
    assert {i.key for i in lg.search(("a%",))} == {"4"}
    assert {i.key for i in lg.search(())} == {"1", "2", "3", "4"}


def test_filters_with_operators(lg: BaseStore) -> None:
    ns = ("docs",)
    lg.put(ns, "a", {"text": "x", "n": 1, "kind": "note", "meta": {"lang": "en"}})
    lg.put(ns, "b", {"text": "y", "n": 5, "kind": "note", "meta": {"lang": "pt"}})
    lg.put(ns, "c", {"text": "z", "n": 9, "kind": "todo", "meta": {"lang": "en"}})

    def keys(flt: dict) -> set[str]:
        return {i.key for i in lg.search(ns, filter=flt)}

    assert keys({"kind": "note"}) == {"a", "b"}
    assert keys({"meta": {"lang": "en"}}) == {"a", "c"}
    assert keys({"n": {"$gt": 1}}) == {"b", "c"}
    assert keys({"n": {"$gte": 5, "$lt": 9}}) == {"b"}
    assert keys({"n": {"$lte": 5}, "kind": {"$eq": "note"}}) == {"a", "b"}
    assert keys({"kind": {"$ne": "note"}}) == {"c"}
    with pytest.raises(ValueError):
        lg.search(ns, filter={"n": {"$regex": "1"}})


def test_pagination_without_query(lg: BaseStore) -> None:
    for i in range(7):
        lg.put(("p",), f"k{i}", {"text": f"item {i}"})
    pages = [lg.search(("p",), limit=3, offset=o) for o in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert {i.key for p in pages for i in p} == {f"k{i}" for i in range(7)}
    assert all(i.score is None for p in pages for i in p)


def test_semantic_search_ranks_like_the_reference(lg: BaseStore) -> None:
    ns = ("memories", "alice")
    lg.put(ns, "tea", {"text": "alice drinks green tea every morning"})
    lg.put(ns, "city", {"text": "alice moved to Lisbon last year"})
    lg.put(ns, "music", {"text": "alice plays cello in an orchestra"})
    lg.put(("memories", "bob"), "tea", {"text": "bob drinks green tea every morning"})
    hits = lg.search(ns, query="green tea in the morning", limit=2)
    assert hits[0].key == "tea"
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    expected = HashEmbeddings(DIM)
    q = expected.embed_query("green tea in the morning")
    d = expected.embed_query("alice drinks green tea every morning")
    assert hits[0].score == pytest.approx(sum(a * b for a, b in zip(q, d)), abs=1e-4)
    assert all(h.namespace == ns for h in hits)


def test_semantic_search_follows_updates_and_deletes(lg: BaseStore) -> None:
    ns = ("m",)
    lg.put(ns, "x", {"text": "the sky is blue"})
    lg.put(ns, "y", {"text": "grass is green"})
    lg.put(ns, "x", {"text": "violins have strings"})
    top = lg.search(ns, query="violins strings", limit=1)[0]
    assert (top.key, top.value) == ("x", {"text": "violins have strings"})
    lg.delete(ns, "x")
    assert [h.key for h in lg.search(ns, query="violins strings")] == ["y"]


def test_semantic_search_with_filter_offset_and_unindexed_items(lg: BaseStore) -> None:
    ns = ("f",)
    lg.put(ns, "a", {"text": "red apples and pears", "kind": "fruit"})
    lg.put(ns, "b", {"text": "red cars and trucks", "kind": "vehicle"})
    lg.put(ns, "c", {"text": "red cherries", "kind": "fruit"})
    lg.put(ns, "hidden", {"text": "red red red", "kind": "fruit"}, index=False)
    fruit = lg.search(ns, query="red cherries", filter={"kind": "fruit"}, limit=5)
    assert [h.key for h in fruit[:2]] == ["c", "a"]
    assert fruit[-1].key == "hidden" and fruit[-1].score is None
    assert [h.key for h in lg.search(ns, query="red cherries", offset=1, limit=1)] == ["a"]


def test_per_call_index_fields(lg: BaseStore) -> None:
    ns = ("g",)
    lg.put(ns, "a", {"text": "unrelated words", "title": "quantum physics"}, index=["title"])
    lg.put(ns, "b", {"text": "cooking pasta"})
    assert lg.search(ns, query="quantum physics", limit=1)[0].key == "a"


def test_list_namespaces(lg: BaseStore) -> None:
    for ns in [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("z", "b")]:
        lg.put(ns, "k", {"text": "v"})
    assert lg.list_namespaces() == [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("z", "b")]
    assert lg.list_namespaces(prefix=("a", "b")) == [("a", "b", "c"), ("a", "b", "d")]
    assert lg.list_namespaces(suffix=("b",)) == [("z", "b")]
    assert lg.list_namespaces(prefix=("*", "b")) == [("a", "b", "c"), ("a", "b", "d"),
                                                     ("z", "b")]
    assert lg.list_namespaces(max_depth=2) == [("a", "b"), ("a", "x"), ("z", "b")]
    assert lg.list_namespaces(limit=2, offset=1) == [("a", "b", "d"), ("a", "x")]


@pytest.mark.parametrize("namespace", [(), ("a.b",), ("ok", ""), ("langgraph", "x")])
def test_invalid_namespaces_are_rejected(lg: BaseStore, namespace: tuple) -> None:
    with pytest.raises(InvalidNamespaceError):
        lg.put(namespace, "k", {"text": "v"})
    assert lg.list_namespaces() == []


def test_reads_in_a_batch_see_the_state_before_its_writes(lg: BaseStore) -> None:
    lg.put(("b",), "k", {"text": "old"})
    results = lg.batch([PutOp(("b",), "k", {"text": "new"}), GetOp(("b",), "k"),
                        SearchOp(("b",)), ListNamespacesOp()])
    assert results[0] is None and results[1].value == {"text": "old"}
    assert [i.value for i in results[2]] == [{"text": "old"}]
    assert results[3] == [("b",)]
    assert lg.get(("b",), "k").value == {"text": "new"}


async def test_async_api(lg: BaseStore) -> None:
    await lg.aput(("as",), "k", {"text": "async green tea"})
    assert (await lg.aget(("as",), "k")).value == {"text": "async green tea"}
    assert [h.key for h in await lg.asearch(("as",), query="green tea")] == ["k"]
    assert await lg.alist_namespaces() == [("as",)]
    await lg.adelete(("as",), "k")
    assert await lg.aget(("as",), "k") is None
