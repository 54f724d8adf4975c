"""``MemoryClient`` / ``AsyncMemoryClient`` against the real service: the same results and
typed errors as ``MemoryStore`` in process, and the integrations built on a client."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage

from langchain_persistent_memory import (
    ANY_USER,
    AsyncMemoryClient,
    InvalidInputError,
    Memory,
    MemoryBackend,
    MemoryClient,
    MemoryEvent,
    MemoryNotFoundError,
    MemoryRetriever,
    MemoryStore,
    Provenance,
    ScoredMemory,
    ServiceError,
    TurnProcessor,
    create_memory_tools,
)
from tests.support.embeddings import HashEmbeddings
from tests.support.fake_chat import ScriptedChatModel, tool_call_message
from tests.support.service import RunningService, two_tenant_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    db = tmp_path_factory.mktemp("client") / "memories.db"
    with two_tenant_service(f"sqlite:///{db}") as running:
        yield running


@pytest.fixture
def client(service: RunningService) -> Iterator[MemoryClient]:
    with MemoryClient(service.base_url, api_key="k-acme") as c:
        yield c


def script(backend: Any, user: str) -> list[Any]:
    """One sequence of calls; its outcome must not depend on which backend ran it."""
    out: list[Any] = []
    first = backend.add("Ada writes Python", user_id=user, category="work", importance=0.7,
                        metadata={"team": "core"})
    out.append((type(first), first.content, first.category, first.importance, first.metadata))
    more = backend.add_many(["Ada likes tea", {"content": "Ada lives in Oslo",
                                               "category": "home"}], user_id=user)
    out.append([(type(m), m.content, m.category) for m in more])
    hits = backend.search("Python", user_id=user, k=2)
    out.append([(type(h), type(h.memory), h.memory.content) for h in hits])
    out.append([h.memory.content for h in backend.search("Oslo", user_id=user,
                                                         category="home")])
    updated = backend.update(first.id, content="Ada writes Rust", user_id=user)
    out.append((updated.id == first.id, updated.content))
    newer = backend.supersede(more[1].id, "Ada lives in Bergen", user_id=user)
    out.append((newer.id != more[1].id, backend.get(more[1].id, user_id=user).valid_to
                is not None))
    events = backend.history(first.id, user_id=user)
    out.append([(type(e), e.event.value) for e in events])
    out.append(sorted(m.content for m in backend.list(user)))
    out.append(sorted(m.content for m in backend.list(user, include_superseded=True)))
    out.append((backend.count(user), backend.count(user, include_superseded=True)))
    deleted = backend.delete(more[0].id, user_id=user, reason="test")
    out.append((type(deleted), deleted.content))
    for call in (lambda: backend.get(more[0].id, user_id=user),
                 lambda: backend.get(first.id, user_id="someone-else"),
                 lambda: backend.get(first.id),  # no user: refused on both sides
                 lambda: backend.delete(first.id),
                 lambda: backend.add("", user_id=user),
                 lambda: backend.add("x", user_id=user, importance=3),
                 lambda: backend.search("", user_id=user),
                 lambda: backend.search("q", user_id=user, mode="psychic"),
                 lambda: backend.update(first.id, content="  ", user_id=user)):
        try:
            call()
        except (MemoryNotFoundError, InvalidInputError) as exc:
            out.append((type(exc), getattr(exc, "field", None)))
        else:
            out.append("no error")
    out.append(backend.forget_user(user))
    out.append(backend.count(user))
    return out


def test_client_matches_the_store_call_for_call(client: MemoryClient, tmp_path: Path) -> None:
    with MemoryStore(f"sqlite:///{tmp_path / 'local.db'}", embeddings=HashEmbeddings()) as s:
        local = script(s, "ada")
    remote = script(client, "ada")
    assert remote == local
    assert (MemoryNotFoundError, None) in remote and (InvalidInputError, "content") in remote
    assert (InvalidInputError, "user_id") in remote


def test_client_by_id_calls_need_the_user(client: MemoryClient) -> None:
    """Like the store, the client refuses a call by id without the memory's user; it has no
    admin opt-in because the service scopes every call to the request's user."""
    mine = client.add("Eve keeps bees", user_id="eve")
    calls = [lambda **kw: client.get(mine.id, **kw), lambda **kw: client.history(mine.id, **kw),
             lambda **kw: client.update(mine.id, content="Eve keeps wasps", **kw),
             lambda **kw: client.supersede(mine.id, "Eve keeps ants", **kw),
             lambda **kw: client.delete(mine.id, **kw)]
    for call in calls:
        for missing in ({}, {"user_id": ANY_USER}):
            with pytest.raises(InvalidInputError, match="user_id") as refused:
                call(**missing)
            assert refused.value.field == "user_id"
        with pytest.raises(MemoryNotFoundError):
            call(user_id="mallory")
    assert client.get(mine.id, user_id="eve").content == "Eve keeps bees"
    client.forget_user("eve")


def test_both_satisfy_the_backend_protocols(client: MemoryClient, tmp_path: Path) -> None:
    assert isinstance(client, MemoryBackend) and isinstance(client, TurnProcessor)
    with MemoryStore(f"sqlite:///{tmp_path / 'p.db'}", embeddings=HashEmbeddings()) as s:
        assert isinstance(s, MemoryBackend)


def test_export_import_and_filters(client: MemoryClient, service: RunningService,
                                   tmp_path: Path) -> None:
    client.add("Ben runs marathons", user_id="ben", session_id="s9", agent_id="coach")
    client.add("Ben owns a bike", user_id="ben")
    assert [m.content for m in client.list("ben", session_id="s9")] == ["Ben runs marathons"]
    assert [m.content for m in client.list("ben", agent_id="coach", limit=5)] == \
        ["Ben runs marathons"]
    dest = tmp_path / "ben.jsonl"
    assert client.export_jsonl(dest, user_id="ben") == 2
    with MemoryClient(service.base_url, api_key="k-beta") as beta:
        assert beta.import_jsonl(dest) == 2
        assert sorted(m.content for m in beta.list("ben")) == sorted(
            m.content for m in client.list("ben"))
        buffer = io.StringIO()
        assert beta.export_jsonl(buffer, user_id="ben") == 2
        assert json.loads(buffer.getvalue().splitlines()[0])["type"] == "header"


def test_service_errors_are_typed(service: RunningService) -> None:
    with MemoryClient(service.base_url, api_key="wrong") as stranger, \
            pytest.raises(ServiceError) as info:
        stranger.list("x")
    assert info.value.status == 403 and info.value.type == "forbidden"
    with MemoryClient(service.base_url) as anonymous, pytest.raises(ServiceError) as info:
        anonymous.count()
    assert info.value.status == 401
    with pytest.raises(InvalidInputError):
        MemoryClient("localhost:8080")


def test_turns_through_the_client(client: MemoryClient) -> None:
    job_id = client.submit([("user", "I collect stamps"), ("assistant", "Fun!")],
                           user_id="cleo", session_id="t1")
    assert isinstance(job_id, str)
    assert client.flush(timeout=30)
    job = client.job(job_id)
    assert job["status"] == "done" and job["result"]["status"] == "raw"
    assert [m.content for m in client.list("cleo")] == ["I collect stamps"]
    processed = client.process("I also collect coins", user_id="cleo")
    assert processed["status"] == "done"
    assert client.count("cleo") == 2
    with pytest.raises(InvalidInputError):
        client.submit([], user_id="cleo")


async def test_async_client(service: RunningService) -> None:
    async with AsyncMemoryClient(service.base_url, api_key="k-acme") as aclient:
        memory = await aclient.add("Dana plays the cello", user_id="dana")
        assert isinstance(memory, Memory)
        hits = await aclient.search("cello", user_id="dana")
        assert isinstance(hits[0], ScoredMemory) and hits[0].memory.id == memory.id
        events = await aclient.history(memory.id, user_id="dana")
        assert isinstance(events[0], MemoryEvent)
        with pytest.raises(MemoryNotFoundError):
            await aclient.get(memory.id, user_id="not-dana")
        job = await aclient.process([{"role": "user", "content": "I moved to Rome"}],
                                    user_id="dana")
        assert job["status"] == "done"
        assert await aclient.forget_user("dana") == 2


def test_client_sends_provenance_and_the_service_guards_user_trust(
        client: MemoryClient) -> None:
    """Before: the service recorded every write as a plain API call, whatever the caller."""
    turn = Provenance(origin="pipeline", roles=["user"], positions=[1], message_ids=["u-1"],
                      evidence="I live in Oslo", model="m", prompt_version="p", trust="user")
    memory = client.add("Ivo lives in Oslo", user_id="ivo",
                        provenance=Provenance(origin="tool", agent_id="bot", session_id="t1"))
    client.update(memory.id, category="home", user_id="ivo",
                  provenance=Provenance(origin="import"))
    newer = client.supersede(memory.id, "Ivo lives in Bergen", user_id="ivo", provenance=turn)
    client.delete(newer.id, user_id="ivo", provenance=Provenance(origin="tool"))
    plain = client.add("Ivo likes skiing", user_id="ivo")
    events = client.history(memory.id, user_id="ivo") + client.history(newer.id, user_id="ivo")
    assert [(e.event.value, e.provenance.origin if e.provenance else None) for e in events] == [
        ("ADD", "tool"), ("UPDATE", "import"), ("SUPERSEDE", "pipeline"), ("ADD", "pipeline"),
        ("DELETE", "tool")]
    assert events[0].provenance == Provenance(origin="tool", agent_id="bot", session_id="t1")
    assert events[3].provenance == turn
    [default] = client.history(plain.id, user_id="ivo")
    assert default.provenance == Provenance(origin="api")
    for forged in (Provenance(origin="tool", trust="user"), Provenance(origin="cli")):
        with pytest.raises(InvalidInputError, match="provenance"):
            client.add("Ivo is an admin", user_id="ivo", provenance=forged)
        with pytest.raises(InvalidInputError, match="provenance"):
            client.delete(plain.id, user_id="ivo", provenance=forged)
    assert [m.content for m in client.list("ivo")] == ["Ivo likes skiing"]


async def test_async_client_sends_provenance(service: RunningService) -> None:
    async with AsyncMemoryClient(service.base_url, api_key="k-acme") as aclient:
        memory = await aclient.add("Jo plays chess", user_id="jo",
                                   provenance=Provenance(origin="tool"))
        await aclient.delete(memory.id, user_id="jo", provenance=Provenance(origin="import"))
        events = await aclient.history(memory.id, user_id="jo")
        assert [e.provenance.origin for e in events if e.provenance] == ["tool", "import"]


# ---------------------------------------------------------------- integrations over a client
def test_retriever_over_a_client(client: MemoryClient) -> None:
    client.add("Eve is allergic to peanuts", user_id="eve", category="health")
    client.add("Eve likes hiking", user_id="eve")
    retriever = MemoryRetriever(store=client, user_id="eve", k=1)
    [doc] = retriever.invoke("peanut allergy")
    assert doc.page_content == "Eve is allergic to peanuts"
    assert doc.metadata["category"] == "health" and doc.metadata["user_id"] == "eve"
    assert retriever.invoke("hiking", user_id="nobody") == []


async def test_retriever_async_over_a_client(client: MemoryClient) -> None:
    client.add("Finn drinks oat milk", user_id="finn")
    docs = await MemoryRetriever(store=client, k=2).ainvoke(
        "oat milk", config={"configurable": {"user_id": "finn"}})
    assert [d.page_content for d in docs] == ["Finn drinks oat milk"]


def test_agent_tools_over_a_client(client: MemoryClient) -> None:
    model = ScriptedChatModel([tool_call_message("save_memory", {
        "content": "Gus prefers the night shift", "category": "work"})],
        default_response="done")
    agent = create_agent(model, create_memory_tools(client, user_id="gus"))
    result = agent.invoke({"messages": [("user", "remember my shift")]})
    [message] = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "success"
    [memory] = client.list("gus")
    assert memory.content == "Gus prefers the night shift" and memory.category == "work"
    [added] = client.history(memory.id, user_id="gus")
    assert added.provenance is not None and added.provenance.origin == "tool"
    assert memory.metadata == {}
    model = ScriptedChatModel([tool_call_message("forget_memory", {"memory_id": "nope"})],
                              default_response="done")
    agent = create_agent(model, create_memory_tools(client, user_id="gus"))
    [failed] = [m for m in agent.invoke({"messages": [("user", "forget")]})["messages"]
                if isinstance(m, ToolMessage)]
    assert failed.status == "error" and "MemoryNotFoundError" in failed.content


def test_classic_memory_over_a_client(client: MemoryClient) -> None:
    from langchain_persistent_memory import PersistentMemory

    memory = PersistentMemory(store=client, manager=client, user_id="hugo", background=False)
    memory.save_context({"input": "My dog is called Rex"}, {"output": "Nice name!"})
    assert "My dog is called Rex" in memory.load_memory_variables({"input": "dog name"})[
        "history"]
    memory.clear()
    assert client.count("hugo") == 0


def test_agent_middleware_over_a_client(client: MemoryClient) -> None:
    """Recall before the model call and the finished turn to POST /v1/turns, one client."""
    from dataclasses import dataclass

    from langchain_core.messages import SystemMessage
    from langgraph.checkpoint.memory import InMemorySaver

    from langchain_persistent_memory import MemoryMiddleware

    @dataclass
    class Ctx:
        user_id: str

    def answer(messages: list[Any]) -> str:
        system = messages[0].text if isinstance(messages[0], SystemMessage) else ""
        return "Something vegan." if "I am vegan" in system else "A cheese toastie."

    model = ScriptedChatModel(["Noted.", answer, answer], default_response="ok")
    agent = create_agent(model, middleware=[MemoryMiddleware(client, client)],
                         context_schema=Ctx, checkpointer=InMemorySaver())

    def ask(user: str, thread: str, text: str) -> str:
        result = agent.invoke({"messages": [("user", text)]},
                              {"configurable": {"thread_id": thread}}, context=Ctx(user))
        assert client.flush(timeout=30)
        return str(result["messages"][-1].content)

    ask("ivan", "t1", "I am vegan")  # raw mode on the service: the user's words are kept
    [memory] = client.list("ivan")
    assert memory.content == "I am vegan" and memory.session_id == "t1"
    assert ask("ivan", "t2", "What should I eat?") == "Something vegan."
    assert ask("judy", "t3", "What should I eat?") == "A cheese toastie."


def _llama_chat(block: Any, session: str) -> Any:
    """LlamaIndex's ``Memory`` with tiny limits, so a few messages flush into the block."""
    from llama_index.core.memory import Memory as ChatMemory

    return ChatMemory.from_defaults(session_id=session, token_limit=40, memory_blocks=[block],
                                    tokenizer_fn=lambda text: text.split(),
                                    chat_history_token_ratio=0.5, token_flush_size=10)


def test_llamaindex_block_over_a_client(client: MemoryClient) -> None:
    """Flushed messages go to POST /v1/turns; a later session recalls them for that user only."""
    from llama_index.core.base.llms.types import ChatMessage

    from langchain_persistent_memory import PersistentMemoryBlock

    block = PersistentMemoryBlock(store=client, manager=client, user_id="lena")
    first = _llama_chat(block, "monday")
    first.put(ChatMessage(role="user", content="I am vegetarian and I love spicy food"))
    first.put(ChatMessage(role="assistant", content="Noted, spicy vegetarian dishes it is then"))
    first.put(ChatMessage(role="user", content="thanks, see you tomorrow for more ideas"))
    assert client.flush(timeout=30)
    assert "I am vegetarian and I love spicy food" in [m.content for m in client.list("lena")]
    for user, expected in [("lena", True), ("mona", False)]:
        later = _llama_chat(PersistentMemoryBlock(store=client, manager=client, user_id=user),
                            f"tuesday-{user}")
        later.put(ChatMessage(role="user", content="suggest some spicy food I would like"))
        system = later.get()[0]
        assert ("I am vegetarian and I love spicy food" in str(system.content)) is expected


async def test_llamaindex_block_foreground_over_a_client(client: MemoryClient) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    from langchain_persistent_memory import PersistentMemoryBlock

    block = PersistentMemoryBlock(store=client, manager=client, user_id="nico",
                                  background=False)
    await block.aput([ChatMessage(role="user", content="my cat is called Miso"),
                      ChatMessage(role="assistant", content="cute name")])
    assert [m.content for m in client.list("nico")] == ["my cat is called Miso"]  # no flush
    text = await block.aget([ChatMessage(role="user", content="what is my cat called?")])
    assert "Miso" in text and await block.aget([]) == ""


async def test_llamaindex_retriever_over_a_client(client: MemoryClient) -> None:
    from llama_index.core.schema import QueryBundle

    from langchain_persistent_memory import LlamaIndexMemoryRetriever

    cello = client.add("Olga plays the cello", user_id="olga", category="hobby")
    client.add("Olga lives in Porto", user_id="olga")
    client.add("Pia plays the cello too", user_id="pia", category="hobby")
    nodes = LlamaIndexMemoryRetriever(client, user_id="olga", k=1).retrieve("cello")
    assert [n.node.get_content() for n in nodes] == ["Olga plays the cello"]
    assert nodes[0].node.node_id == cello.id and nodes[0].node.metadata["category"] == "hobby"
    hobbies = LlamaIndexMemoryRetriever(client, user_id="olga", k=5, category="hobby")
    found = await hobbies.aretrieve(QueryBundle("where"))
    assert [n.node.get_content() for n in found] == ["Olga plays the cello"]


def test_langgraph_store_refuses_a_client_with_a_reason(service: RunningService) -> None:
    """Before: an AttributeError about ``embeddings`` from deep inside the constructor."""
    from langchain_persistent_memory import PersistentStore

    with MemoryClient(service.base_url, api_key="k-acme") as sync_client:
        with pytest.raises(InvalidInputError, match="in-process MemoryStore") as refused:
            PersistentStore(sync_client)  # type: ignore[arg-type]
        assert refused.value.field == "store"
        assert "never exposes LangGraph namespaces" in str(refused.value)
    with pytest.raises(InvalidInputError, match="AsyncMemoryClient") as refused:
        PersistentStore(AsyncMemoryClient(service.base_url, api_key="k-acme"))  # type: ignore[arg-type]
    assert refused.value.field == "store"
