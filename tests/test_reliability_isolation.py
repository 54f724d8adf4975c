"""Isolation, property-based: for random users, memories and queries a user-scoped search
returns only that user's memories, and exactly the top-k of a brute-force numpy scan of that
user's stored vectors (ties compared by score, not order). Also through the integrations.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from langchain_persistent_memory import AddOp, MemoryStore, SupersedeOp
from langchain_persistent_memory.store.schema import memories
from tests.support.embeddings import HashEmbeddings

DIM = 8
# Ids that look alike, differ by case/space/SQL wildcards, or try injection.
ODD_USERS = ["alice", "Alice", "alice ", "a%", "a_", "%", "' OR '1'='1", "ünï", "😀",
             "x" * 256, "a.b", "langgraph.a"]
users_st = st.lists(st.one_of(st.sampled_from(ODD_USERS),
                              st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]),
                                      min_size=1, max_size=12).filter(str.strip)),
                    min_size=1, max_size=4, unique=True)
# Small integer components: many exact ties between vectors.
vector_st = st.lists(st.integers(-2, 2), min_size=DIM, max_size=DIM).filter(any)
memory_st = st.tuples(st.integers(0, 3), vector_st, st.sampled_from([None, "a", "b"]),
                      st.booleans())
query_st = st.tuples(st.integers(0, 3), vector_st, st.integers(1, 12), st.booleans(),
                     st.sampled_from([None, "a", "b"]))
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,  # stable in CI
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def _unit(v: Any) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def _fill(store: MemoryStore, users: list[str], items: list[tuple[Any, ...]]) -> None:
    for i, (u, vec, category, superseded) in enumerate(items):
        user = users[u % len(users)]
        mid = store.apply([AddOp(content=f"memory {i} of {user}", embedding=vec,
                                 category=category)], user_id=user)[0].memory.id
        if superseded:  # the new version gets its text's (hash) embedding
            store.apply([SupersedeOp(memory_id=mid, content=f"memory {i} v2 sunny")],
                        user_id=user)


def _brute_force(store: MemoryStore, user: str, q: np.ndarray, k: int,
                 include_superseded: bool, category: str | None) -> dict[str, float]:
    """Scores of the user's top-k straight from SQL rows: the oracle."""
    query = select(memories.c.id, memories.c.embedding).where(memories.c.user_id == user)
    if not include_superseded:
        query = query.where(memories.c.valid_to.is_(None))
    if category is not None:
        query = query.where(memories.c.category == category)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return {mid: float(np.frombuffer(blob, dtype="<f4") @ q) for mid, blob in rows}


def _check_search(store: MemoryStore, users: list[str], queries: list[tuple[Any, ...]]) -> None:
    for u, vec, k, include_superseded, category in queries:
        user = users[u % len(users)]
        q = _unit(vec)
        filters = {"category": category} if category else {}
        hits = store.search_by_vector(q, user_id=user, k=k,
                                      include_superseded=include_superseded, **filters)
        oracle = _brute_force(store, user, q, k, include_superseded, category)
        assert all(h.memory.user_id == user for h in hits)
        assert len({h.memory.id for h in hits}) == len(hits) == min(k, len(oracle))
        for h in hits:  # every hit is the user's, with its true score
            assert h.score == pytest.approx(oracle[h.memory.id], abs=1e-5)
        best = sorted(oracle.values(), reverse=True)[:k]
        assert [h.score for h in hits] == pytest.approx(best, abs=1e-5)


@pytest.fixture
def memory_store() -> Iterator[MemoryStore]:
    with MemoryStore("sqlite://", embeddings=HashEmbeddings(dim=DIM), index_path=None) as s:
        yield s


@given(users=users_st, items=st.lists(memory_st, max_size=30),
       queries=st.lists(query_st, min_size=1, max_size=6))
@SETTINGS
def test_scoped_search_equals_brute_force_sqlite(users: list[str], items: list[Any],
                                                 queries: list[Any]) -> None:
    with MemoryStore("sqlite://", embeddings=HashEmbeddings(dim=DIM), index_path=None) as store:
        _fill(store, users, items)
        _check_search(store, users, queries)
        # An index rebuilt from SQL alone answers the same (the replica is a function of SQL).
        store.rebuild_index()
        _check_search(store, users, queries)


@pytest.mark.postgres
@given(users=users_st, items=st.lists(memory_st, max_size=20),
       queries=st.lists(query_st, min_size=1, max_size=4))
@settings(SETTINGS, max_examples=12)
def test_scoped_search_equals_brute_force_postgres(postgres_url: str, users: list[str],
                                                   items: list[Any], queries: list[Any]) -> None:
    # One database for all examples: a fresh suffix keeps each example's users apart.
    suffix = uuid.uuid4().hex[:6]
    users = [(u[:240] + suffix) for u in users]
    with MemoryStore(postgres_url, embeddings=HashEmbeddings(dim=DIM), index_path=None) as store:
        _fill(store, users, items)
        _check_search(store, users, queries)


# ---------------------------------------------------------------- through the integrations
text_users = st.lists(st.sampled_from(ODD_USERS[:9]), min_size=2, max_size=4, unique=True)
facts = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(
    ["likes green tea", "plays chess on sunday", "lives near the sea", "allergic to nuts",
     "drives a red car", "reads about history"])), min_size=1, max_size=12)


@given(users=text_users, items=facts, asker=st.integers(0, 3),
       query=st.sampled_from(["tea", "chess sunday", "sea", "nuts allergy", "car", "history"]))
@settings(SETTINGS, max_examples=25)
def test_retriever_and_tools_return_only_the_callers_memories(
        memory_store: MemoryStore, users: list[str], items: list[Any], asker: int,
        query: str) -> None:
    from langchain_persistent_memory.integrations.retriever import MemoryRetriever
    from langchain_persistent_memory.integrations.tools import create_memory_tools

    suffix = uuid.uuid4().hex[:6]  # the store is shared across examples
    users = [u[:240] + suffix for u in users]
    owner: dict[str, str] = {}
    for u, text in items:
        user = users[u % len(users)]
        owner[memory_store.add(f"{text} {suffix}", user_id=user).id] = user
    me = users[asker % len(users)]
    mine = {mid for mid, user in owner.items() if user == me}

    # The store's own scoped answer is the oracle: each integration must return exactly it
    # (an empty answer passes a subset check, so "nothing" would look isolated).
    expected = [h.memory.id for h in memory_store.search(query, user_id=me, k=20)]
    assert set(expected) <= mine
    assert bool(expected) == bool(mine)  # the caller's memories are found when they exist

    docs = MemoryRetriever(store=memory_store, user_id=me, k=20).invoke(query)
    assert [d.id for d in docs] == expected
    assert {d.metadata["user_id"] for d in docs} <= {me}
    docs = MemoryRetriever(store=memory_store, k=20).invoke(
        query, config={"metadata": {"user_id": me}})
    assert [d.id for d in docs] == expected

    search = next(t for t in create_memory_tools(memory_store) if t.name == "search_memories")
    runtime = SimpleNamespace(context={"user_id": me}, config={})
    found = json.loads(search.func(query=query, runtime=runtime, k=20))
    assert [f["id"] for f in found] == expected
    # Every memory of the caller is reachable (scoping does not hide the caller's own).
    every = memory_store.search_by_vector(np.ones(DIM), user_id=me, k=100)
    assert {h.memory.id for h in every} == mine


labels = st.sampled_from(["a", "ab", "b", "a%", "a_b", "ü"])


@given(spaces=st.lists(st.tuples(labels, labels), min_size=1, max_size=4, unique=True),
       puts=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(
           ["green tea", "chess game", "sea view", "red car"])), min_size=1, max_size=10),
       asker=st.integers(0, 3))
@settings(SETTINGS, max_examples=25)
def test_langgraph_store_search_stays_in_its_namespace(
        memory_store: MemoryStore, spaces: list[tuple[str, str]], puts: list[Any],
        asker: int) -> None:
    from langchain_persistent_memory.integrations.langgraph_store import PersistentStore

    root = uuid.uuid4().hex[:8]  # the store is shared across examples
    lg = PersistentStore(memory_store)
    where: dict[str, tuple[str, ...]] = {}
    for i, (s, text) in enumerate(puts):
        ns = (root, *spaces[s % len(spaces)])
        lg.put(ns, f"k{i}", {"text": text})
        where[f"k{i}"] = ns
    ns = (root, *spaces[asker % len(spaces)])
    for query in ("tea", "car view", None):
        got = lg.search(ns, query=query, limit=50)
        # Exact namespace or a true sub-namespace (label-wise prefix), never "a" ~ "ab".
        assert all(item.namespace[:len(ns)] == ns for item in got)
        assert {item.key for item in got} == {k for k, n in where.items() if n[:len(ns)] == ns}


def test_middleware_injects_only_the_callers_memories(sqlite_store: MemoryStore) -> None:
    """Every user's memories match the question equally well; each run must see its own."""
    from langchain.agents import create_agent

    from langchain_persistent_memory import MemoryManager
    from langchain_persistent_memory.integrations.middleware import MemoryMiddleware
    from tests.support.fake_chat import ScriptedChatModel, tool_call_message

    users = ODD_USERS[:8]
    for n, user in enumerate(users):
        sqlite_store.add_many([f"snack preference {n} token{n}x{i} likes crisps"
                               for i in range(3)], user_id=user)
    extractor = ScriptedChatModel(default_response=tool_call_message(
        "MemoryOperations", {"operations": []}))
    model = ScriptedChatModel(default_response="ok")
    with MemoryManager(sqlite_store, llm=extractor) as manager:
        agent = create_agent(model, middleware=[MemoryMiddleware(
            sqlite_store, manager, k=10, background=False)])
        for n, user in enumerate(users):
            agent.invoke({"messages": [("user", "what snack preference, crisps?")]},
                         {"configurable": {"user_id": user}})
            system = model.calls[-1][0].text
            assert f"token{n}x0" in system  # the caller's memories were recalled...
            others = [m for m in range(len(users)) if m != n]
            assert not any(f"token{m}x" in system for m in others)  # ...and nobody else's
