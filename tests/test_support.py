"""Tests for the test-support helpers, driven through the real langchain clients.

Why: the stub and the scripted model underpin many library tests, so they must behave the way
``langchain_openai`` and ``langchain_core`` expect; a silent mismatch here would make other tests
pass or fail for the wrong reason.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel

from tests.support.fake_chat import ScriptedChatModel, tool_call_message
from tests.support.openai_stub import OpenAIStub, embed_text, last_user_text

# langchain-openai's json_schema path dumps a ParsedChatCompletion whose `parsed` field is typed
# as None, which makes pydantic warn; that is upstream behaviour, not something the stub causes.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


class Person(BaseModel):
    """Schema used for structured-output checks."""

    name: str
    age: int


def _responder(body: dict[str, Any]) -> dict[str, Any]:
    """Answer structured/tool requests sensibly and echo the prompt otherwise."""
    if body.get("response_format"):
        return {"content": json.dumps({"name": "Ann", "age": 31})}
    if body.get("tools"):
        name = body["tools"][0]["function"]["name"]
        return {"tool_calls": [{"name": name, "arguments": {"name": "Bob", "age": 42}}]}
    return {"content": f"echo: {last_user_text(body)}"}


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    """Run a stub with the structured/tool-aware responder for one test."""
    with OpenAIStub(_responder) as running:
        yield running


def _chat(stub: OpenAIStub, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=stub.base_url, api_key="sk-test", model="gpt-4o-mini", max_retries=0, **kwargs
    )


def _embeddings(stub: OpenAIStub) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(
        base_url=stub.base_url,
        api_key="sk-test",
        model="text-embedding-3-small",
        check_embedding_ctx_length=False,
        max_retries=0,
    )


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# -- OpenAI stub ----------------------------------------------------------------------------


def test_stub_base_url_and_lifecycle() -> None:
    stub = OpenAIStub()
    assert stub.start() is stub
    try:
        assert stub.base_url.startswith("http://127.0.0.1:")
        assert stub.base_url.endswith("/v1")
        reply = _chat(stub).invoke("hi")
        assert reply.content == "ok"
    finally:
        stub.stop()
    stub.stop()  # idempotent


def test_plain_invoke_records_request_and_usage(stub: OpenAIStub) -> None:
    reply = _chat(stub).invoke([SystemMessage("be brief"), HumanMessage("hello there")])
    assert reply.content == "echo: hello there"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] > 1
    assert reply.usage_metadata["total_tokens"] == (
        reply.usage_metadata["input_tokens"] + reply.usage_metadata["output_tokens"]
    )
    [request] = stub.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "gpt-4o-mini"
    assert [m["role"] for m in request["messages"]] == ["system", "user"]


def test_bind_tools_returns_tool_calls(stub: OpenAIStub) -> None:
    reply = _chat(stub).bind_tools([Person]).invoke("who?")
    assert isinstance(reply, AIMessage)
    [call] = reply.tool_calls
    assert call["name"] == "Person"
    assert call["args"] == {"name": "Bob", "age": 42}
    assert call["id"]
    assert reply.response_metadata["finish_reason"] == "tool_calls"


def test_tool_call_arguments_may_be_a_json_string() -> None:
    def responder(body: dict[str, Any]) -> dict[str, Any]:
        del body
        return {"tool_calls": [{"name": "lookup", "arguments": '{"q": "x"}'}]}

    with OpenAIStub(responder) as stub:
        reply = _chat(stub).invoke("q")
    assert reply.tool_calls[0]["args"] == {"q": "x"}


def test_structured_output_default_method_is_json_schema(stub: OpenAIStub) -> None:
    result = _chat(stub).with_structured_output(Person).invoke("who?")
    assert result == Person(name="Ann", age=31)
    [request] = stub.requests
    assert request["response_format"]["type"] == "json_schema"
    assert "tools" not in request


def test_structured_output_function_calling(stub: OpenAIStub) -> None:
    llm = _chat(stub).with_structured_output(Person, method="function_calling")
    assert llm.invoke("who?") == Person(name="Bob", age=42)
    [request] = stub.requests
    assert request["tools"][0]["function"]["name"] == "Person"


def test_structured_output_streams(stub: OpenAIStub) -> None:
    json_schema = list(_chat(stub).with_structured_output(Person).stream("who?"))
    assert json_schema[-1] == Person(name="Ann", age=31)
    tools = list(
        _chat(stub).with_structured_output(Person, method="function_calling").stream("who?")
    )
    assert tools[-1] == Person(name="Bob", age=42)


def test_streaming_text_with_usage(stub: OpenAIStub) -> None:
    chunks = list(_chat(stub, stream_usage=True).stream("stream me please"))
    assert len(chunks) > 2
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.content == "echo: stream me please"
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] > 0
    assert stub.requests[-1]["stream_options"] == {"include_usage": True}


def test_streaming_without_usage_by_default(stub: OpenAIStub) -> None:
    chunks = list(_chat(stub).stream("x"))
    assert "".join(str(c.content) for c in chunks) == "echo: x"
    assert "stream_options" not in stub.requests[-1]


def test_streaming_tool_calls(stub: OpenAIStub) -> None:
    chunks = list(_chat(stub).bind_tools([Person]).stream("who?"))
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert isinstance(full, AIMessage)
    assert full.tool_calls[0]["args"] == {"name": "Bob", "age": 42}


@pytest.mark.asyncio
async def test_async_invoke_and_stream(stub: OpenAIStub) -> None:
    llm = _chat(stub)
    reply = await llm.ainvoke("async hi")
    assert reply.content == "echo: async hi"
    pieces = [str(c.content) async for c in llm.astream("async stream")]
    assert "".join(pieces) == "echo: async stream"
    assert await llm.with_structured_output(Person).ainvoke("x") == Person(name="Ann", age=31)


def test_responder_error_maps_to_http_error() -> None:
    def responder(body: dict[str, Any]) -> dict[str, Any]:
        del body
        return {"error": "slow down", "status": 429}

    with OpenAIStub(responder) as stub, pytest.raises(openai.RateLimitError):
        _chat(stub).invoke("x")


def test_unknown_path_is_404(stub: OpenAIStub) -> None:
    status, body = _post(stub.base_url + "/nope", {"a": 1})
    assert status == 404
    assert "error" in body
    assert stub.requests[-1]["path"] == "/v1/nope"


def test_embeddings_via_langchain(stub: OpenAIStub) -> None:
    emb = _embeddings(stub)
    docs = emb.embed_documents(["the cat sat on the mat", "stock markets fell sharply"])
    query = emb.embed_query("a cat on a mat")
    assert len(docs) == 2
    assert all(len(v) == 64 for v in [*docs, query])
    assert math.isclose(_cosine(docs[0], docs[0]), 1.0, rel_tol=1e-5)
    assert _cosine(query, docs[0]) > _cosine(query, docs[1])
    # The openai client asks for base64 by default and decodes float32 itself.
    assert stub.requests[0]["encoding_format"] == "base64"
    expected = embed_text("the cat sat on the mat", 64)
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(docs[0], expected, strict=True))


@pytest.mark.asyncio
async def test_embeddings_async(stub: OpenAIStub) -> None:
    emb = _embeddings(stub)
    vector = await emb.aembed_query("hello world")
    assert vector == pytest.approx(emb.embed_query("hello world"), abs=1e-6)
    docs = await emb.aembed_documents(["a", "b c"])
    assert len(docs) == 2


def test_embeddings_raw_formats_and_inputs(stub: OpenAIStub) -> None:
    url = stub.base_url + "/embeddings"
    status, floats = _post(url, {"model": "m", "input": "Hello, hello world"})
    assert status == 200
    vector = floats["data"][0]["embedding"]
    assert vector == pytest.approx(embed_text("hello HELLO world", 64))
    assert floats["usage"]["total_tokens"] > 0

    body = {"model": "m", "input": ["Hello, hello world"], "encoding_format": "base64"}
    _, encoded = _post(url, body)
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert decoded == pytest.approx(vector, abs=1e-6)

    _, tokens = _post(url, {"model": "m", "input": [[1, 2, 3], [4]], "dimensions": 8})
    assert [len(d["embedding"]) for d in tokens["data"]] == [8, 8]
    assert tokens["data"][0]["embedding"] == pytest.approx(embed_text("1 2 3", 8))


def test_embeddings_are_deterministic_and_dim_configurable() -> None:
    assert embed_text("Same words", 16) == embed_text("same WORDS", 16)
    for wordless in ("", "!!!", "😀"):  # never all zeros: the store refuses those
        vector = embed_text(wordless, 16)
        assert sorted(vector)[-1] == 1.0 and sum(abs(x) for x in vector) == 1.0
    with OpenAIStub(embed_dim=32) as stub:
        assert len(_embeddings(stub).embed_query("x")) == 32


# -- Scripted chat model --------------------------------------------------------------------


def test_scripted_plays_back_in_order_and_records_calls() -> None:
    model = ScriptedChatModel(["first", AIMessage(content="second")])
    assert model.invoke("one").content == "first"
    assert model.invoke([HumanMessage("two")]).content == "second"
    assert model.call_count == 2
    assert [[m.content for m in call] for call in model.calls] == [["one"], ["two"]]
    with pytest.raises(AssertionError, match="exhausted"):
        model.invoke("three")


def test_scripted_default_response_after_script() -> None:
    model = ScriptedChatModel(["a"], default_response="fallback")
    assert [model.invoke("x").content for _ in range(3)] == ["a", "fallback", "fallback"]


def test_scripted_callable_sees_prompt() -> None:
    def answer(messages: list[BaseMessage]) -> str:
        return messages[-1].text.upper()

    model = ScriptedChatModel([answer])
    assert model.invoke("shout this").content == "SHOUT THIS"


def test_scripted_usage_metadata() -> None:
    model = ScriptedChatModel(["x" * 40])
    reply = model.invoke("y" * 80)
    assert reply.usage_metadata == {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30}


def test_scripted_keeps_explicit_usage() -> None:
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    model = ScriptedChatModel([AIMessage(content="hi", usage_metadata=usage)])
    assert model.invoke("whatever").usage_metadata == usage


def test_scripted_bind_tools_returns_self_with_tool_calls() -> None:
    model = ScriptedChatModel([tool_call_message("search", {"query": "cats"})])
    bound = model.bind_tools([Person])
    assert bound is model
    assert model.bound_tools == [Person]
    reply = bound.invoke("find cats")
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls[0]["name"] == "search"
    assert reply.tool_calls[0]["args"] == {"query": "cats"}


def test_scripted_with_structured_output() -> None:
    model = ScriptedChatModel([tool_call_message("Person", {"name": "Cy", "age": 7})])
    assert model.with_structured_output(Person).invoke("who?") == Person(name="Cy", age=7)
    assert model.call_count == 1


def test_scripted_with_structured_output_include_raw() -> None:
    model = ScriptedChatModel([tool_call_message("Person", {"name": "Di", "age": 9})])
    result = model.with_structured_output(Person, include_raw=True).invoke("who?")
    assert isinstance(result, dict)
    assert result["parsed"] == Person(name="Di", age=9)
    assert isinstance(result["raw"], AIMessage)
    assert result["parsing_error"] is None


def test_scripted_stream_keeps_tool_calls_and_usage() -> None:
    model = ScriptedChatModel(
        ["hello streaming world", tool_call_message("Person", {"name": "Ed", "age": 1})]
    )
    chunks = list(model.stream("s"))
    assert len(chunks) > 1
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.content == "hello streaming world"
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] == len("hello streaming world") // 4
    structured = list(model.with_structured_output(Person).stream("s"))
    assert structured[-1] == Person(name="Ed", age=1)


@pytest.mark.asyncio
async def test_scripted_async() -> None:
    model = ScriptedChatModel(
        ["async reply", tool_call_message("Person", {"name": "Fa", "age": 2}), "streamed"]
    )
    assert (await model.ainvoke("a")).content == "async reply"
    assert await model.with_structured_output(Person).ainvoke("b") == Person(name="Fa", age=2)
    pieces = [str(c.content) async for c in model.astream("c")]
    assert "".join(pieces) == "streamed"
    assert model.call_count == 3
