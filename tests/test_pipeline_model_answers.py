"""Answers that do not fit the schema, over the real ``langchain-openai`` client: every
structured-output method recovers the operations or skips the turn cleanly, never raises.

Why: local models (Ollama, vLLM, llama.cpp) often answer with code fences, prose, single
quotes, trailing commas, truncated JSON or fields under other names. With ``ChatOpenAI``'s
default ``json_schema`` method such an answer used to raise a pydantic ``ValidationError``
out of ``process()`` (and a background turn was lost with only a log line).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI

from langchain_persistent_memory import ANY_USER, MemoryManager, MemoryStore
from tests.support.bad_answers import DROPPED, RECOVERED, SKIPPED, USER
from tests.support.embeddings import HashEmbeddings
from tests.support.fake_chat import ScriptedChatModel
from tests.support.openai_stub import OpenAIStub

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
METHODS = ["json_schema", "function_calling", "json_mode"]
# Tool-call arguments that are a JSON list: the client cannot even build the message, so
# there is nothing to recover; the turn is skipped cleanly instead.
UNREADABLE = {("bare_list", "function_calling")}


class Script:
    """What the stub answers: the raw text, as content or as tool-call arguments."""

    def __init__(self) -> None:
        self.raw = ""

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            return {"tool_calls": [{"name": name, "arguments": self.raw}]}
        return {"content": self.raw}


@pytest.fixture(scope="module")
def wire() -> Iterator[tuple[OpenAIStub, Script]]:
    script = Script()
    with OpenAIStub(script) as stub:
        yield stub, script


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    s = MemoryStore(f"sqlite:///{tmp_path / 'm.db'}", embeddings=HashEmbeddings())
    s.add("The user has a cat.", user_id="alice")
    yield s
    s.close()


def _manager(store: MemoryStore, stub: OpenAIStub, method: str) -> MemoryManager:
    llm = ChatOpenAI(base_url=stub.base_url, api_key="sk-test", model="gpt-4o-mini",
                     max_retries=0)
    return MemoryManager(store, llm, structured_output_method=method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(RECOVERED))
def test_recoverable_answers_are_recovered_in_one_call(wire: Any, store: MemoryStore,
                                                       method: str, case: str) -> None:
    stub, script = wire
    script.raw, expected = RECOVERED[case]
    result = _manager(store, stub, method).process(USER, user_id="alice")
    if (case, method) in UNREADABLE:
        assert result.status == "skipped" and "could not be read" in (result.error or "")
        return
    assert result.status == "applied" and result.llm_calls == 1, result
    assert sorted(c.memory.content for c in result.operations if c.action == "add") == \
        sorted(expected)
    stored = {m.content: m for m in store.list("alice")}
    for content in expected:
        origin = store.get(stored[content].id, with_provenance=True, user_id=ANY_USER).provenance
        assert origin is not None and origin.roles == ["user"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(SKIPPED))
def test_unusable_answers_skip_the_turn_with_the_reason(
        wire: Any, store: MemoryStore, method: str, case: str,
        caplog: pytest.LogCaptureFixture) -> None:
    stub, script = wire
    script.raw = SKIPPED[case]
    with caplog.at_level(logging.WARNING, "langchain_persistent_memory.pipeline"):
        result = _manager(store, stub, method).process(USER, user_id="alice")
    assert result.status == "skipped" and result.error and result.llm_calls == 2, result
    assert [m.content for m in store.list("alice")] == ["The user has a cat."]
    assert any("skipped" in r.message for r in caplog.records)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(DROPPED))
def test_ungrounded_or_cut_facts_are_dropped_and_counted(wire: Any, store: MemoryStore,
                                                         method: str, case: str) -> None:
    stub, script = wire
    script.raw = DROPPED[case]
    result = _manager(store, stub, method).process(USER, user_id="alice")
    assert result.status == "applied" and result.operations == () and result.dropped
    assert result.llm_calls == 2  # the one repair was tried
    assert [m.content for m in store.list("alice")] == ["The user has a cat."]


def test_json_schema_answer_missing_op_does_not_raise_out_of_process(
        wire: Any, store: MemoryStore) -> None:
    """The exact failure of issue #15: ``operations.0.op Field required`` raised before."""
    stub, script = wire
    script.raw = '{"operations": [{"handle": "m1", "content": "The user likes tea."}]}'
    result = _manager(store, stub, "json_schema").process(USER, user_id="alice")
    assert result.status == "skipped" and "op" in (result.error or "")


def test_background_turn_with_a_bad_answer_is_reported_not_lost(
        wire: Any, store: MemoryStore) -> None:
    stub, script = wire
    script.raw = SKIPPED["unknown_op"]
    manager = _manager(store, stub, "json_schema")
    future = manager.submit(USER, user_id="alice")
    assert manager.flush(timeout=30)
    result = future.result()  # no exception: a ProcessResult saying why
    assert result.status == "skipped" and "op" in (result.error or "")
    manager.close()


@pytest.mark.parametrize("case", sorted(RECOVERED))
def test_scripted_model_text_answers_are_recovered(store: MemoryStore, case: str) -> None:
    """The same corpus through a model without the wire (plain message content)."""
    raw, expected = RECOVERED[case]
    llm = ScriptedChatModel([AIMessage(content=raw)], quote_user=False)
    result = MemoryManager(store, llm).process(USER, user_id="alice")
    assert sorted(c.memory.content for c in result.operations if c.action == "add") == \
        sorted(expected)
