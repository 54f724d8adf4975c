"""PersistentMemory in classic chains: a ConversationChain remembers a preference across two
real processes; LLMChain and the async path; bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.prompts import PromptTemplate

from langchain_persistent_memory import InvalidInputError, MemoryManager, MemoryStore
from langchain_persistent_memory.integrations.classic_memory import PersistentMemory
from tests.support.fake_chat import ScriptedChatModel, tool_call_message

pytestmark = pytest.mark.filterwarnings(
    "ignore::langchain_core._api.LangChainDeprecationWarning")
ROOT = Path(__file__).resolve().parents[1]


def _answer(messages: list[BaseMessage]) -> str:
    prompt = messages[-1].text
    return "You prefer green tea." if "prefers green tea" in prompt else "I don't know yet."


def chat_once(db: str, text: str, extracted: str | None) -> str:
    """One process's conversation turn (run in a subprocess by the test)."""
    from langchain_classic.chains import ConversationChain

    from tests.support.embeddings import HashEmbeddings

    store = MemoryStore(f"sqlite:///{db}", embeddings=HashEmbeddings())
    ops = [{"op": "ADD", "content": extracted, "category": "preference"}] if extracted else []
    manager = MemoryManager(store, llm=ScriptedChatModel(
        [tool_call_message("MemoryOperations", {"operations": ops})]))
    memory = PersistentMemory(store=store, manager=manager, user_id="alice")
    chain = ConversationChain(llm=ScriptedChatModel([_answer]), memory=memory)
    reply = chain.invoke({"input": text})["response"]
    manager.close()  # the background turn is processed before the process ends
    store.close()
    return reply


def _in_process(db: Path, text: str, extracted: str | None) -> str:
    code = (f"from tests.test_integration_classic_memory import chat_once; "
            f"print(chat_once({str(db)!r}, {text!r}, {extracted!r}))")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_conversation_chain_remembers_across_two_processes(tmp_path: Path) -> None:
    db = tmp_path / "memories.db"
    first = _in_process(db, "I always drink green tea, never coffee.",
                        "The user prefers green tea over coffee.")
    assert first == "I don't know yet."
    second = _in_process(db, "What should I drink?", None)
    assert second == "You prefer green tea."


@pytest.fixture
def manager(sqlite_store: MemoryStore) -> MemoryManager:
    m = MemoryManager(sqlite_store)  # raw mode: user messages are stored as said
    yield m
    m.close()


def test_llm_chain_with_memory_and_budget(sqlite_store: MemoryStore,
                                          manager: MemoryManager) -> None:
    from langchain_classic.chains import LLMChain

    for i in range(30):
        sqlite_store.add(f"fact number {i} about the user and their garden", user_id="bob")
    memory = PersistentMemory(store=sqlite_store, manager=manager, user_id="bob",
                              k=30, max_tokens=120, memory_key="memories",
                              background=False)
    model = ScriptedChatModel(default_response="ok")
    prompt = PromptTemplate.from_template("{memories}\nQuestion: {question}")
    chain = LLMChain(llm=model, prompt=prompt, memory=memory)
    chain.invoke({"question": "what grows in my garden?"})
    sent = model.calls[0][-1].text
    assert "garden" in sent and len(sent.encode()) / 3 <= 120 + 20
    assert sent.count("fact number") < 30  # the budget cut the list
    assert [m.content for m in sqlite_store.list("bob", limit=1)] == ["what grows in my garden?"]


async def test_async_and_messages(sqlite_store: MemoryStore, manager: MemoryManager) -> None:
    sqlite_store.add("carol is learning Portuguese", user_id="carol")
    memory = PersistentMemory(store=sqlite_store, manager=manager, user_id="carol",
                              return_messages=True, background=False)
    loaded = await memory.aload_memory_variables({"input": "which language am I learning?"})
    [message] = loaded["history"]
    assert isinstance(message, SystemMessage) and "Portuguese" in message.content
    await memory.asave_context({"input": "I also play chess"}, {"response": "nice"})
    assert sqlite_store.count("carol") == 2
    recent = memory.load_memory_variables({"input": "   "})["history"]  # no search, window only
    assert [(type(m).__name__, m.content) for m in recent] == [
        ("HumanMessage", "I also play chess"), ("AIMessage", "nice")]


def test_users_stay_apart_and_bad_input(sqlite_store: MemoryStore,
                                        manager: MemoryManager) -> None:
    sqlite_store.add("dan's bank PIN hint is his dog's name", user_id="dan")
    eve = PersistentMemory(store=sqlite_store, manager=manager, user_id="eve")
    assert eve.load_memory_variables({"input": "bank PIN hint"}) == {"history": ""}
    with pytest.raises(InvalidInputError, match="input_key"):
        eve.load_memory_variables({"a": "x", "b": "y"})
    with pytest.raises(ValueError, match="user_id"):
        PersistentMemory(store=sqlite_store, manager=manager, user_id=" ")
    eve.save_context({"input": "I like hiking"}, {"response": "ok"})
    eve.clear()
    assert sqlite_store.count("eve") == 0 and sqlite_store.count("dan") == 1
    assert json.loads(json.dumps(eve.memory_variables)) == ["history"]
