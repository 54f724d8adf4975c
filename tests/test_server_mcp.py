"""MCP with the official SDK's own client: ``lpm mcp`` over stdio, and ``/mcp`` of
``lpm serve`` over streamable HTTP (same API keys, the user from ``X-User-Id``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

mcp = pytest.importorskip("mcp")

from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402

from langchain_persistent_memory import MemoryClient, MemoryStore, Provenance  # noqa: E402
from tests.support.embeddings import HashEmbeddings  # noqa: E402
from tests.support.service import (  # noqa: E402
    HASH_EMBEDDINGS,
    LPM,
    RunningService,
    child_env,
    two_tenant_service,
)

pytestmark = pytest.mark.integration
TOOLS = {"search_memories", "add_memory", "update_memory", "delete_memory", "list_memories"}


def payload(result: Any) -> Any:
    """A tool result's JSON (structured content when given, else its text block)."""
    assert not result.is_error, result
    if result.structured_content is not None:
        data = result.structured_content
        return data.get("result", data) if isinstance(data, dict) else data
    return json.loads(result.content[0].text)


def error_text(result: Any) -> str:
    assert result.is_error
    return str(result.content[0].text)


async def remember_and_recall(client: Client) -> str:
    """What an assistant does: add, recall, correct, list, delete. Returns the kept id."""
    tools = await client.list_tools()
    assert {t.name for t in tools.tools} == TOOLS
    for tool in tools.tools:  # the model never chooses whose memory it touches
        assert "user" not in json.dumps(tool.input_schema).lower()
    added = payload(await client.call_tool("add_memory", {"content": "Likes green tea"}))
    payload(await client.call_tool("add_memory", {"content": "Works as a nurse",
                                                  "category": "work"}))
    hits = payload(await client.call_tool("search_memories", {"query": "green tea", "k": 1}))
    assert [h["id"] for h in hits] == [added["id"]]
    newer = payload(await client.call_tool("update_memory", {
        "memory_id": added["id"], "content": "Likes black tea now"}))
    listed = payload(await client.call_tool("list_memories", {}))
    assert sorted(m["content"] for m in listed) == ["Likes black tea now", "Works as a nurse"]
    nurse = next(m["id"] for m in listed if m["content"] == "Works as a nurse")
    assert payload(await client.call_tool("delete_memory", {"memory_id": nurse})) == \
        {"deleted": nurse}
    missing = await client.call_tool("delete_memory", {"memory_id": nurse})
    assert "no memory" in error_text(missing)
    blank = await client.call_tool("add_memory", {"content": "   "})
    assert "content" in error_text(blank)
    return str(newer["id"])


async def test_stdio_server_for_one_user(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with MemoryStore(url, embeddings=HashEmbeddings()) as store:
        other = store.add("Someone else's secret", user_id="bob")
    params = StdioServerParameters(
        command=sys.executable,
        args=[*LPM[1:], "--embeddings", HASH_EMBEDDINGS, "mcp", "--db", url,
              "--user-id", "alice"],
        env=child_env(), cwd=str(tmp_path))
    async with Client(params) as client:
        kept = await remember_and_recall(client)
        assert other.id not in json.dumps(payload(
            await client.call_tool("search_memories", {"query": "secret"})))
        stolen = await client.call_tool("delete_memory", {"memory_id": other.id})
        assert "no memory" in error_text(stolen)
    with MemoryStore(url, embeddings=HashEmbeddings()) as store:
        assert [m.id for m in store.list("alice")] == [kept]
        origin = store.get(kept, user_id="alice", with_provenance=True).provenance
        assert origin == Provenance(origin="tool", agent_id="mcp")
        assert store.get(other.id, user_id="bob").content == "Someone else's secret"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    db = tmp_path_factory.mktemp("mcp") / "memories.db"
    with two_tenant_service(f"sqlite:///{db}") as running:
        yield running


def http_client(service: RunningService, headers: dict[str, str]) -> Client:
    transport = streamable_http_client(f"{service.base_url}/mcp",
                                       http_client=create_mcp_http_client(headers=headers))
    return Client(transport)


async def test_streamable_http_with_keys_and_user_header(service: RunningService) -> None:
    async with http_client(service, {"Authorization": "Bearer k-acme",
                                     "X-User-Id": "carol"}) as client:
        kept = await remember_and_recall(client)
    with MemoryClient(service.base_url, api_key="k-acme") as rest:
        assert [m.id for m in rest.list("carol")] == [kept]
        assert rest.list("dave") == []
    # the same user id in another tenant sees nothing
    async with http_client(service, {"Authorization": "Bearer k-beta",
                                     "X-User-Id": "carol"}) as client:
        assert payload(await client.call_tool("list_memories", {})) == []
        assert "no memory" in error_text(
            await client.call_tool("delete_memory", {"memory_id": kept}))


@pytest.mark.parametrize(("headers", "status", "kind"), [
    ({"X-User-Id": "carol"}, 401, "unauthorized"),
    ({"Authorization": "Bearer nope", "X-User-Id": "carol"}, 403, "forbidden"),
    ({"Authorization": "Bearer k-acme"}, 400, "missing_user"),
    ({"Authorization": "Bearer k-acme", "X-User-Id": "u" * 300}, 400, "InvalidInputError"),
])
def test_http_mcp_refuses_without_key_or_user(service: RunningService, headers: dict[str, str],
                                              status: int, kind: str) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}}
    response = httpx.post(f"{service.base_url}/mcp", json=initialize, headers={
        **headers, "Accept": "application/json, text/event-stream"})
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind
