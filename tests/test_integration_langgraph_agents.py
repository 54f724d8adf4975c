"""PersistentStore beyond the reference suite: persistence, TTL, bad input, and real agents
(``create_agent(store=...)`` and LangMem's memory tools) driven by a scripted model."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain.tools import ToolRuntime, tool
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.store.base import InvalidNamespaceError, PutOp, SearchOp

from langchain_persistent_memory import InvalidInputError, MemoryStore
from langchain_persistent_memory.integrations.langgraph_store import PersistentStore
from langchain_persistent_memory.scopes import NamespaceScope
from tests.support.embeddings import HashEmbeddings
from tests.support.fake_chat import ScriptedChatModel, tool_call_message

# langmem's dependency trustcall still imports a deprecated LangGraph name.
pytestmark = pytest.mark.filterwarnings("ignore:Importing Send from langgraph.constants")


def _open(tmp_path: Path, **kwargs: object) -> tuple[MemoryStore, PersistentStore]:
    memory_store = MemoryStore(f"sqlite:///{tmp_path / 'lg.db'}",
                               embeddings=HashEmbeddings(256), **kwargs)
    return memory_store, PersistentStore(memory_store, index={"fields": ["content"]})


def test_items_and_semantic_index_survive_a_restart(tmp_path: Path) -> None:
    ms, lg = _open(tmp_path)
    lg.put(("notes",), "tea", {"content": "alice drinks green tea"})
    lg.put(("notes",), "city", {"content": "alice lives in Lisbon"})
    ms.close()
    ms, lg = _open(tmp_path)
    assert lg.get(("notes",), "tea").value == {"content": "alice drinks green tea"}
    assert lg.search(("notes",), query="green tea", limit=1)[0].key == "tea"
    ms.close()


def test_namespaces_index_into_their_own_scope_not_user_memories(tmp_path: Path) -> None:
    ms, lg = _open(tmp_path)
    ms.add("alice likes green tea", user_id="alice")
    lg.put(("memories", "alice"), "k", {"content": "namespace green tea"})
    assert [h.memory.content for h in ms.search("green tea", user_id="alice")] == \
        ["alice likes green tea"]
    assert [i.key for i in lg.search(("memories", "bob"), query="green tea")] == []
    ms.close()


def test_a_namespace_is_never_readable_listable_or_forgettable_as_a_user(
        tmp_path: Path) -> None:
    """Before: user_id="langgraph:memories.bob" searched that namespace's text, users()
    listed it and forget_user of that string wiped its index."""
    ms, lg = _open(tmp_path)
    ms.add("alice likes green tea", user_id="alice")
    lg.put(("memories", "bob"), "k", {"content": "bob's private green tea note"})
    forged = "langgraph:memories.bob"
    for call in (lambda: ms.search("green tea", user_id=forged),
                 lambda: ms.list(forged), lambda: ms.count(forged),
                 lambda: ms.forget_user(forged), lambda: ms.add("planted", user_id=forged)):
        with pytest.raises(InvalidInputError, match="reserved for LangGraph"):
            call()
    assert ms.users() == ["alice"]
    assert ms.stats()["users"] == 1
    assert [i.key for i in lg.search(("memories", "bob"), query="green tea")] == ["k"]
    assert ms.count(NamespaceScope(forged)) == 1  # the namespace's own kind still reaches it
    ms.close()


def test_purge_erases_a_long_hashed_sub_namespace_history(tmp_path: Path) -> None:
    """Before: a sub-namespace too long to be readable (its scope is a hash) kept the text
    of its deleted items in the history after purge of its parent."""
    ms, lg = _open(tmp_path)
    deep = ("memories", "alice", "x" * 300)
    lg.put(deep, "a", {"content": "alice's hidden diary entry"})
    lg.delete(deep, "a")
    lg.put(("memories", "bob"), "b", {"content": "bob's note"})
    assert lg.purge(("memories", "alice")) == 0  # no item left, only history
    ms.close()
    raw = (tmp_path / "lg.db").read_bytes()
    wal = tmp_path / "lg.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert b"hidden diary" not in raw
    assert b"bob's note" in raw


def test_ttl_expires_refreshes_and_sweeps(tmp_path: Path) -> None:
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    ms = MemoryStore(f"sqlite:///{tmp_path / 'ttl.db'}", embeddings=HashEmbeddings(256))
    lg = PersistentStore(ms, index={"fields": ["content"]}, ttl={"default_ttl": 10},
                         clock=lambda: now[0])
    lg.put(("t",), "short", {"content": "short lived"})
    lg.put(("t",), "forever", {"content": "kept"}, ttl=None)
    now[0] += timedelta(minutes=8)
    assert lg.get(("t",), "short") is not None  # refreshes: expires 10 min from now
    now[0] += timedelta(minutes=8)
    assert lg.get(("t",), "short", refresh_ttl=False) is not None
    now[0] += timedelta(minutes=3)
    assert lg.get(("t",), "short") is None
    assert [i.key for i in lg.search(("t",), query="short lived")] == ["forever"]
    assert lg.sweep_ttl() == 1
    # the expired item's index entry is gone too
    assert ms.count(NamespaceScope("langgraph:t")) == 1
    ms.close()


def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    ms, lg = _open(tmp_path)
    with pytest.raises(InvalidNamespaceError, match="tuple of strings"):
        lg.batch([PutOp("memories", "k", {"content": "x"})])  # type: ignore[arg-type]
    with pytest.raises(InvalidNamespaceError):
        lg.batch([PutOp(("a", 1), "k", {"content": "x"})])  # type: ignore[arg-type]
    with pytest.raises(InvalidNamespaceError):
        lg.search("memories")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="unknown store operation"):
        lg.batch([("get", ("a",), "k")])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="unknown filter operator"):
        lg.batch([SearchOp(("a",), filter={"n": {"$like": 1}})])
    with pytest.raises(InvalidInputError, match="JSON"):
        lg.put(("a",), "k", {"content": object()})
    with pytest.raises(InvalidInputError, match="content"):
        lg.put(("a",), "k", {"content": "x" * 200_000})  # rejected by the memory store
    assert lg.list_namespaces() == [] and ms.users() == []
    with pytest.raises(InvalidInputError, match="embeddings"):
        PersistentStore(ms, index={"embed": HashEmbeddings(256), "fields": ["content"]})
    ms.close()


def _last_tool_text(messages: list[BaseMessage]) -> str:
    return next(m.content for m in reversed(messages) if isinstance(m, ToolMessage))


def test_create_agent_tools_use_the_store_through_the_runtime(tmp_path: Path) -> None:
    ms, lg = _open(tmp_path)

    @tool
    def remember(fact: str, runtime: ToolRuntime) -> str:
        """Remember a fact about the current user."""
        user = runtime.config["configurable"]["user_id"]
        runtime.store.put(("facts", user), str(len(fact)), {"content": fact})
        return "saved"

    @tool
    def recall(query: str, runtime: ToolRuntime) -> str:
        """Recall facts about the current user."""
        user = runtime.config["configurable"]["user_id"]
        return json.dumps([i.value["content"]
                           for i in runtime.store.search(("facts", user), query=query)])

    model = ScriptedChatModel([
        tool_call_message("remember", {"fact": "prefers window seats"}), "noted",
        tool_call_message("recall", {"query": "seats"}), lambda m: _last_tool_text(m),
        tool_call_message("recall", {"query": "seats"}), lambda m: _last_tool_text(m),
    ])
    agent = create_agent(model, [remember, recall], store=lg)
    agent.invoke({"messages": [("user", "I like window seats")]},
                 {"configurable": {"user_id": "alice"}})
    ms.close()
    ms, lg = _open(tmp_path)  # a new process: only the database is shared
    agent = create_agent(model, [remember, recall], store=lg)
    alice = agent.invoke({"messages": [("user", "where do I sit?")]},
                         {"configurable": {"user_id": "alice"}})
    assert json.loads(alice["messages"][-1].content) == ["prefers window seats"]
    bob = agent.invoke({"messages": [("user", "where do I sit?")]},
                       {"configurable": {"user_id": "bob"}})
    assert json.loads(bob["messages"][-1].content) == []
    ms.close()


async def test_langmem_memory_tools_with_persistent_store(tmp_path: Path) -> None:
    from langmem import create_manage_memory_tool, create_search_memory_tool

    ms, lg = _open(tmp_path)
    tools = [create_manage_memory_tool(namespace=("memories", "{user_id}")),
             create_search_memory_tool(namespace=("memories", "{user_id}"))]
    model = ScriptedChatModel([
        tool_call_message("manage_memory", {"content": "User loves hiking in the Alps"}),
        "saved",
        tool_call_message("search_memory", {"query": "hiking"}),
        lambda m: _last_tool_text(m),
    ])
    agent = create_agent(model, tools, store=lg)
    cfg = {"configurable": {"user_id": "alice"}}
    await agent.ainvoke({"messages": [("user", "I love hiking in the Alps")]}, cfg)
    result = await agent.ainvoke({"messages": [("user", "what do I love?")]}, cfg)
    found = json.loads(result["messages"][-1].content)
    assert [f["value"]["content"] for f in found] == ["User loves hiking in the Alps"]
    assert found[0]["namespace"] == ["memories", "alice"] and found[0]["score"] > 0
    assert lg.list_namespaces() == [("memories", "alice")]
    assert isinstance(result["messages"][-1], AIMessage)
    ms.close()


def test_memory_errors_of_foreign_tools_reach_the_model_not_the_caller(tmp_path: Path) -> None:
    from langmem import create_search_memory_tool

    from langchain_persistent_memory.integrations.middleware import MemoryToolErrorMiddleware

    ms, lg = _open(tmp_path)
    lg.put(("memories", "alice"), "k", {"content": "alice likes tea"})
    tools = [create_search_memory_tool(namespace=("memories", "{user_id}"))]
    script = [tool_call_message("search_memory", {"query": "tea",
                                                  "filter": {"n": {"$regex": "x"}}}),
              tool_call_message("search_memory", {"query": "tea"}), "done"]
    then_dotted = [tool_call_message("search_memory", {"query": "tea"}), "done"]
    agent = create_agent(ScriptedChatModel(script + then_dotted), tools, store=lg,
                         middleware=[MemoryToolErrorMiddleware()])
    result = agent.invoke({"messages": [("user", "tea?")]},
                          {"configurable": {"user_id": "alice"}})
    bad, good = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert bad.status == "error" and "unknown filter operator '$regex'" in bad.content
    assert "alice likes tea" in good.content and result["messages"][-1].content == "done"

    dotted = agent.invoke({"messages": [("user", "tea?")]},  # "." is not allowed in labels
                          {"configurable": {"user_id": "alice.smith"}})
    assert "InvalidNamespaceError" in next(
        m.content for m in dotted["messages"] if isinstance(m, ToolMessage))

    bare = create_agent(ScriptedChatModel(list(script)), tools, store=lg)
    with pytest.raises(InvalidInputError):  # what the middleware prevents
        bare.invoke({"messages": [("user", "tea?")]}, {"configurable": {"user_id": "alice"}})
    ms.close()


def test_purge_leaves_no_text_behind(tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from langchain_persistent_memory.store.schema import history

    ms, lg = _open(tmp_path)
    lg.put(("memories", "alice"), "a", {"content": "alice's secret diary entry"})
    lg.put(("memories", "alice", "work"), "b", {"content": "alice's salary"})
    lg.put(("memories", "bob"), "c", {"content": "bob's note"})
    lg.delete(("memories", "alice"), "a")

    def history_rows(scope: str) -> int:
        with ms.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(history)
                                .where(history.c.user_id == scope)).scalar_one()

    assert history_rows("langgraph:memories.alice") == 2  # add + delete, text kept
    with pytest.raises(InvalidNamespaceError):
        lg.purge(())
    assert lg.purge(("memories", "alice")) == 1
    assert history_rows("langgraph:memories.alice") == 0
    assert history_rows("langgraph:memories.alice.work") == 0
    assert lg.list_namespaces() == [("memories", "bob")]
    assert [i.key for i in lg.search(("memories",), query="salary diary note")] == ["c"]
    with pytest.raises(InvalidInputError, match="NUL"):
        lg.put(("x",), "k", {"content": "ok", "raw": "a\x00b"}, index=False)
    ms.close()
