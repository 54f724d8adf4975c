"""``POST /v1/turns`` with a real chat model path (``--model openai:gpt-4o-mini`` through
``init_chat_model`` and ``langchain-openai``, against the local OpenAI-compatible stub): the
caller gets 202 at once while the model is still thinking, and the pipeline's extraction
and supersession land in the tenant's store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_persistent_memory import MemoryClient
from tests.support.openai_stub import OpenAIStub
from tests.support.service import RunningService
from tests.test_pipeline_openai import responder

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")]
MODEL_DELAY_S = 1.5


def slow_responder(body: dict[str, Any]) -> dict[str, Any]:
    time.sleep(MODEL_DELAY_S)
    return responder(body)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    with OpenAIStub(slow_responder) as stub:
        db = tmp_path_factory.mktemp("turns") / "memories.db"
        running = RunningService(
            f"sqlite:///{db}", keys="acme:k-acme",
            extra=("--rate-limit", "0", "--model", "openai:gpt-4o-mini"),
            env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": stub.base_url},
            log=Path(db).with_suffix(".log"))
        yield running
        running.stop()


def test_turns_return_at_once_and_the_model_runs_behind(service: RunningService) -> None:
    with MemoryClient(service.base_url, api_key="k-acme") as client:
        started = time.monotonic()
        first = client.submit("I moved to Paris", user_id="ivy")
        second = client.submit("Actually I moved to Berlin", user_id="ivy")
        submitted_in = time.monotonic() - started
        assert submitted_in < MODEL_DELAY_S  # two turns queued faster than one model call
        assert client.job(first)["status"] in ("queued", "running")

        assert client.flush(timeout=60)
        done = [client.job(j) for j in (first, second)]
        assert [j["status"] for j in done] == ["done", "done"]
        assert done[0]["result"]["status"] == "applied"
        assert done[0]["result"]["llm_calls"] == 1
        assert [op["action"] for op in done[1]["result"]["operations"]] == ["supersede"]
        [current] = client.list("ivy")
        assert current.content == "The user lives in Berlin."
        assert [m.content for m in client.list("ivy", include_superseded=True)
                if not m.is_current] == ["The user lives in Paris."]


def test_a_turn_through_the_client_keeps_its_message_positions_and_ids(
        service: RunningService) -> None:
    """The client sends empty messages and ids on, so provenance points at the caller's
    message, not at its index in a shortened list."""
    from langchain_core.messages import AIMessage, HumanMessage

    with MemoryClient(service.base_url, api_key="k-acme") as client:
        job = client.process([HumanMessage("Hi", id="h-0"), AIMessage("Hello!", id="a-1"),
                              HumanMessage("", id="h-2"),
                              HumanMessage("Guess what, I moved to Oslo", id="h-3")],
                             user_id="kim")
        assert job["status"] == "done" and job["result"]["status"] == "applied"
        [memory] = client.list("kim")
        [added] = client.history(memory.id, user_id="kim")
        assert added.provenance is not None and added.provenance.origin == "pipeline"
        assert added.provenance.positions == [3] and added.provenance.message_ids == ["h-3"]
