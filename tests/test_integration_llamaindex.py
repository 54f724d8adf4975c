"""LlamaIndex: our long-term block inside ``llama_index.core.memory.Memory``, and the
retriever; the pipeline's model is scripted, the store and its index are real."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory
from llama_index.core.schema import QueryBundle

from langchain_persistent_memory import InvalidInputError, MemoryManager, MemoryStore
from langchain_persistent_memory.integrations.llamaindex import (
    LlamaIndexMemoryRetriever,
    PersistentMemoryBlock,
)
from tests.support.embeddings import HashEmbeddings
from tests.support.fake_chat import ScriptedChatModel, tool_call_message


def _memory(block: PersistentMemoryBlock, session: str) -> Memory:
    # Tiny limits so the short-term history flushes into the block after a few messages;
    # a whitespace tokenizer keeps tiktoken (which downloads) out of the test.
    return Memory.from_defaults(session_id=session, token_limit=40, memory_blocks=[block],
                                tokenizer_fn=lambda text: text.split(),
                                chat_history_token_ratio=0.5, token_flush_size=10)


def test_memory_block_remembers_across_sessions_and_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    extractor = ScriptedChatModel([tool_call_message("MemoryOperations", {"operations": [
        {"op": "ADD", "content": "The user is vegetarian and loves spicy food.",
         "category": "preference"}]})])
    store = MemoryStore(url, embeddings=HashEmbeddings())
    manager = MemoryManager(store, llm=extractor)
    block = PersistentMemoryBlock(store=store, manager=manager, user_id="alice")
    first = _memory(block, "monday")
    first.put(ChatMessage(role="user", content="I am vegetarian and I love spicy food"))
    first.put(ChatMessage(role="assistant", content="Noted, spicy vegetarian dishes it is then"))
    first.put(ChatMessage(role="user", content="thanks, see you tomorrow for more ideas"))
    assert manager.flush(timeout=30)
    assert extractor.call_count == 1 and "vegetarian" in extractor.calls[0][-1].text
    manager.close()
    store.close()

    store = MemoryStore(url, embeddings=HashEmbeddings())  # a later process
    manager = MemoryManager(store)
    for user, expected in [("alice", True), ("bob", False)]:
        block = PersistentMemoryBlock(store=store, manager=manager, user_id=user)
        later = _memory(block, f"tuesday-{user}")
        later.put(ChatMessage(role="user", content="suggest some spicy food I would like"))
        system = later.get()[0]
        assert ("The user is vegetarian and loves spicy food." in system.content) is expected
    manager.close()
    store.close()


async def test_block_can_process_in_the_foreground(sqlite_store: MemoryStore) -> None:
    manager = MemoryManager(sqlite_store)  # raw mode: user messages are stored as said
    block = PersistentMemoryBlock(store=sqlite_store, manager=manager, user_id="carol",
                                  background=False)
    await block.aput([ChatMessage(role="user", content="my cat is called Miso"),
                      ChatMessage(role="assistant", content="cute name")])
    assert [m.content for m in sqlite_store.list("carol")] == ["my cat is called Miso"]
    text = await block.aget([ChatMessage(role="user", content="what is my cat called?")])
    assert "Miso" in text and await block.aget([]) == ""
    manager.close()


def test_retriever_nodes_are_scored_and_scoped(sqlite_store: MemoryStore) -> None:
    sqlite_store.add("alice plays the cello", user_id="alice", category="hobby")
    sqlite_store.add("alice lives in Porto", user_id="alice")
    sqlite_store.add("bob plays the cello too", user_id="bob")
    nodes = LlamaIndexMemoryRetriever(sqlite_store, user_id="alice", k=1).retrieve("cello")
    assert [n.node.get_content() for n in nodes] == ["alice plays the cello"]
    assert nodes[0].score > 0 and nodes[0].node.metadata["category"] == "hobby"
    assert nodes[0].node.node_id == nodes[0].node.metadata["id"]
    filtered = LlamaIndexMemoryRetriever(sqlite_store, user_id="alice", k=5, category="hobby")
    assert len(filtered.retrieve("where")) == 1


async def test_retriever_async(sqlite_store: MemoryStore) -> None:
    sqlite_store.add("dan runs every morning", user_id="dan")
    retriever = LlamaIndexMemoryRetriever(sqlite_store, user_id="dan")
    nodes = await retriever.aretrieve(QueryBundle("running"))
    assert [n.node.get_content() for n in nodes] == ["dan runs every morning"]


def test_missing_user_is_rejected(sqlite_store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="user_id"):
        LlamaIndexMemoryRetriever(sqlite_store, user_id=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user_id"):
        PersistentMemoryBlock(store=sqlite_store, manager=MemoryManager(sqlite_store),
                              user_id="")
