"""The pipeline over the real ``langchain-openai`` client and an OpenAI-compatible stub server.

Why: this is the wire path users run (``ChatOpenAI`` + ``OpenAIEmbeddings``). Both structured
output methods are exercised: ``json_schema`` (ChatOpenAI's default; JSON in the message
content) and ``function_calling`` (a tool call named after the schema).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from langchain_persistent_memory import MemoryManager, MemoryStore
from tests.support.openai_stub import OpenAIStub, estimate_tokens, last_user_text

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


def decide(prompt: str) -> dict[str, Any]:
    """A rule-following 'model': supersede the city when the user says they moved."""
    memories = dict(re.findall(r"^\[(m\d+)\] \([^)]*\) (.*)$", prompt, re.M))
    said = prompt.split("<conversation>")[-1]
    operations: list[dict[str, Any]] = []
    moved = re.search(r"moved to (\w+)", said)
    if moved:
        city = moved.group(1)
        old = next((h for h, t in memories.items() if "lives in" in t), None)
        content = f"The user lives in {city}."
        operations.append({"op": "SUPERSEDE", "handle": old, "content": content,
                           "category": "location", "importance": 0.8} if old else
                          {"op": "ADD", "content": content, "category": "location"})
        operations[-1]["evidence"] = moved.group(0)
    return {"operations": operations}


def responder(body: dict[str, Any]) -> dict[str, Any]:
    answer = decide(last_user_text(body))
    if body.get("response_format"):
        return {"content": json.dumps(answer)}
    name = body["tools"][0]["function"]["name"]
    return {"tool_calls": [{"name": name, "arguments": answer}]}


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(responder) as running:
        yield running


@pytest.fixture
def openai_store(stub: OpenAIStub, tmp_path: Path) -> Iterator[MemoryStore]:
    embeddings = OpenAIEmbeddings(base_url=stub.base_url, api_key="sk-test",
                                  model="text-embedding-3-small",
                                  check_embedding_ctx_length=False, max_retries=0)
    store = MemoryStore(f"sqlite:///{tmp_path / 'm.db'}", embeddings=embeddings)
    yield store
    store.close()


def chat(stub: OpenAIStub) -> ChatOpenAI:
    return ChatOpenAI(base_url=stub.base_url, api_key="sk-test", model="gpt-4o-mini",
                      max_retries=0)


@pytest.mark.parametrize("method", [None, "json_schema", "function_calling", "json_mode"])
def test_move_is_a_supersession_over_the_wire(stub: OpenAIStub, openai_store: MemoryStore,
                                              method: str | None):
    manager = MemoryManager(openai_store, chat(stub), structured_output_method=method)
    first = manager.process("Hi! I just moved to Paris.", user_id="alice")
    second = manager.process("Big news: I moved to Berlin last month.", user_id="alice")
    assert [c.action for c in first.operations] == ["add"]
    assert [c.action for c in second.operations] == ["supersede"]
    assert second.operations[0].previous.content == "The user lives in Paris."
    hits = openai_store.search("Where does the user live?", user_id="alice")
    assert hits[0].memory.content == "The user lives in Berlin."

    calls = stub.requests_to("/v1/chat/completions")
    assert len(calls) == 2  # one model call per turn
    if method == "function_calling":
        assert calls[0]["tools"][0]["function"]["name"] == "MemoryOperations"
    elif method == "json_mode":
        assert calls[0]["response_format"] == {"type": "json_object"}
        assert '"operations"' in calls[0]["messages"][0]["content"]  # schema in the prompt
    else:
        assert calls[0]["response_format"]["json_schema"]["name"] == "MemoryOperations"
    assert second.input_tokens == estimate_tokens(json.dumps(calls[1]["messages"]))
    assert second.output_tokens > 0
    assert stub.requests_to("/v1/embeddings")  # the real embeddings client was used


async def test_aprocess_over_the_wire(stub: OpenAIStub, openai_store: MemoryStore):
    manager = MemoryManager(openai_store, chat(stub))
    await manager.aprocess("I moved to Oslo", user_id="bob")
    result = await manager.aprocess("Update: I moved to Bergen", user_id="bob")
    assert [c.action for c in result.operations] == ["supersede"]
    assert [m.content for m in await openai_store.alist("bob")] == ["The user lives in Bergen."]


def test_http_error_propagates_and_writes_nothing(openai_store: MemoryStore):
    with OpenAIStub(lambda body: {"error": "rate limited", "status": 429}) as failing:
        manager = MemoryManager(openai_store, chat(failing))
        with pytest.raises(Exception, match="rate limited"):
            manager.process("I moved to Rome", user_id="carol")
    assert openai_store.count("carol") == 0
