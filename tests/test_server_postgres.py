"""The service on PostgreSQL with several uvicorn workers: any worker answers any call,
turn jobs queued through one are run and reported by whichever, one user's turns keep
their order, and each tenant lives in its own schema."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from langchain_persistent_memory import MemoryClient, MemoryNotFoundError
from tests.support.pg_schema import fresh_schema
from tests.support.service import RunningService, drop_tenant_schemas, two_tenant_service

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pg(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    with fresh_schema(postgres_server_url) as url:
        schema = url.rsplit("search_path%3D", 1)[1]
        yield url, schema
        drop_tenant_schemas(postgres_server_url, schema)


@pytest.fixture(scope="module")
def service(pg: tuple[str, str]) -> Iterator[RunningService]:
    with two_tenant_service(pg[0], workers=2) as running:
        yield running


@pytest.fixture
def acme(service: RunningService) -> Iterator[MemoryClient]:
    with MemoryClient(service.base_url, api_key="k-acme") as client:
        yield client


def test_two_workers_answer(service: RunningService) -> None:
    with service.client() as anonymous:
        workers = set()
        for _ in range(200):  # each new connection may land on either worker
            with service.client() as fresh:
                workers.add(fresh.get("/healthz").json()["worker"])
            if len(workers) == 2:
                break
        assert anonymous.get("/healthz").status_code == 200
    assert len(workers) == 2


def test_crud_and_search_across_workers(service: RunningService) -> None:
    ids = []
    for i in range(6):  # a fresh client per call: the calls spread over both workers
        with MemoryClient(service.base_url, api_key="k-acme") as c:
            ids.append(c.add(f"Fact number {i} about gardening", user_id="pat").id)
    with MemoryClient(service.base_url, api_key="k-acme") as c:
        assert {m.id for m in c.list("pat")} == set(ids)
        hits = c.search("gardening fact", user_id="pat", k=6)
        assert {h.memory.id for h in hits} == set(ids)
    with MemoryClient(service.base_url, api_key="k-beta") as beta:
        assert beta.list("pat") == []
        with pytest.raises(MemoryNotFoundError):
            beta.get(ids[0], user_id="pat")


def test_jobs_run_in_order_and_are_visible_from_any_worker(service: RunningService,
                                                           acme: MemoryClient) -> None:
    jobs = [acme.submit(f"Step {i}: I learned lesson {i}", user_id="quinn")
            for i in range(5)]
    jobs += [acme.submit("I like rowing", user_id=f"rower{i}") for i in range(4)]
    deadline = time.monotonic() + 60
    pending = set(jobs)
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            with MemoryClient(service.base_url, api_key="k-acme") as any_worker:
                if any_worker.job(job_id)["status"] == "done":
                    pending.discard(job_id)
        time.sleep(0.1)
    assert not pending
    contents = [m.content for m in reversed(acme.list("quinn"))]  # oldest first
    assert contents == [f"Step {i}: I learned lesson {i}" for i in range(5)]
    assert all(acme.count(f"rower{i}") == 1 for i in range(4))


def test_forget_drops_queued_turns(acme: MemoryClient) -> None:
    jobs = [acme.submit(f"Secret {i}", user_id="rita") for i in range(20)]
    assert acme.forget_user("rita") >= 0
    time.sleep(2)  # any turn claimed before the forget has finished and been erased
    assert acme.count("rita") == 0
    assert all(_gone(acme, job_id) for job_id in jobs)


def _gone(client: MemoryClient, job_id: str) -> bool:
    try:
        client.job(job_id)
    except Exception as exc:  # 404 ServiceError
        return getattr(exc, "status", None) == 404
    return False


def test_each_tenant_has_its_own_schema(pg: tuple[str, str], service: RunningService) -> None:
    with MemoryClient(service.base_url, api_key="k-beta") as beta:
        beta.add("Only beta knows this", user_id="sam")
    base = pg[0].split("?")[0]
    engine = create_engine(base)
    try:
        with engine.connect() as conn:
            def count(tenant: str) -> int:
                return int(conn.execute(text(
                    f'SELECT count(*) FROM "{pg[1]}_t_{tenant}".lpm_memories '
                    "WHERE content = 'Only beta knows this'")).scalar_one())
            assert count("beta") == 1 and count("acme") == 0
    finally:
        engine.dispose()


async def test_mcp_over_http_on_any_worker(service: RunningService) -> None:
    """Stateless MCP: each call may reach another worker and still acts for the header's
    user in the key's tenant."""
    pytest.importorskip("mcp")
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": "Bearer k-acme", "X-User-Id": "tara"}
    for i in range(4):  # a new connection (and maybe another worker) per session
        transport = streamable_http_client(f"{service.base_url}/mcp",
                                           http_client=create_mcp_http_client(headers=headers))
        async with Client(transport) as client:
            added = await client.call_tool("add_memory", {"content": f"Tara fact {i}"})
            assert not added.is_error
    with MemoryClient(service.base_url, api_key="k-acme") as acme:
        assert sorted(m.content for m in acme.list("tara")) == [f"Tara fact {i}"
                                                                 for i in range(4)]
    with MemoryClient(service.base_url, api_key="k-beta") as beta:
        assert beta.list("tara") == []


async def test_llamaindex_block_over_a_client_on_any_worker(service: RunningService) -> None:
    """The LlamaIndex block over the service on PostgreSQL: a turn written through one
    client (and worker) is recalled through another, in the key's tenant only."""
    from llama_index.core.base.llms.types import ChatMessage

    from langchain_persistent_memory import PersistentMemoryBlock

    with MemoryClient(service.base_url, api_key="k-acme") as writer:
        block = PersistentMemoryBlock(store=writer, manager=writer, user_id="uma",
                                      background=False)
        await block.aput([ChatMessage(role="user", content="my boat is called Wren")])
    question = [ChatMessage(role="user", content="what is my boat called?")]
    for key, expected in [("k-acme", True), ("k-beta", False)]:
        with MemoryClient(service.base_url, api_key=key) as reader:
            recalled = await PersistentMemoryBlock(store=reader, manager=reader,
                                                   user_id="uma").aget(question)
        assert ("my boat is called Wren" in recalled) is expected
