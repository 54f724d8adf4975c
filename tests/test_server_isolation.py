"""Tenant isolation as a property: random tenants, users, memories and calls against the
real service; no call of one tenant (or user) ever returns, changes or deletes another's
data, and every answer matches a model of what each (tenant, user) owns."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.pg_schema import fresh_schema
from tests.support.service import RunningService, drop_tenant_schemas

pytestmark = pytest.mark.integration

TENANTS = ("t0", "t1", "t2")
# User ids that look like scopes of other kinds must stay plain user ids of the caller
# ("langgraph:" itself is reserved: such an id is refused, see test_integration_langgraph_agents).
USERS = ("alice", "bob", "t1/alice", "langgraph.alice", "tenant:t0")
WORDS = ("tea", "coffee", "paris", "berlin", "chess", "piano")


@pytest.fixture(scope="module", params=["sqlite", pytest.param(
    "postgres", marks=pytest.mark.postgres)])
def clients(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, httpx.Client]]:
    """The service on SQLite (one worker) or PostgreSQL (two workers, schema per tenant)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url, workers = f"sqlite:///{tmp_path_factory.mktemp('iso') / 'memories.db'}", 1
        else:
            server = request.getfixturevalue("postgres_server_url")
            url, workers = stack.enter_context(fresh_schema(server)), 2
            stack.callback(drop_tenant_schemas, server, url.rsplit("search_path%3D", 1)[1])
        running = RunningService(url, keys=",".join(f"{t}:key-{t}" for t in TENANTS),
                                 workers=workers, extra=("--rate-limit", "0"))
        stack.callback(running.stop)
        yield {t: stack.enter_context(running.client(f"key-{t}")) for t in TENANTS}


@dataclass
class World:
    """What each (tenant, user) owns, according to the calls made so far."""

    nonce: str
    owner: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (tenant, user)
    content: dict[str, str] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)
    ids: list[str] = field(default_factory=list)  # every id ever seen, for cross-calls

    def user(self, name: str) -> str:
        return f"{name}#{self.nonce}"

    def owned(self, tenant: str, user: str) -> dict[str, str]:
        return {i: self.content[i] for i in self.live if self.owner[i] == (tenant, user)}


tenant = st.sampled_from(TENANTS)
user = st.sampled_from(USERS)
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
ref = st.integers(min_value=0, max_value=50)
op = st.one_of(
    st.tuples(st.just("add"), tenant, user, text),
    st.tuples(st.just("get"), tenant, user, ref),
    st.tuples(st.just("patch"), tenant, user, ref, text),
    st.tuples(st.just("delete"), tenant, user, ref),
    st.tuples(st.just("search"), tenant, user, text),
    st.tuples(st.just("list"), tenant, user),
    st.tuples(st.just("forget"), tenant, user),
)


def check(world: World, clients: dict[str, httpx.Client], step: tuple) -> None:
    kind, t, name = step[0], step[1], step[2]
    u = world.user(name)
    client = clients[t]
    if kind == "add":
        response = client.post("/v1/memories", json={"user_id": u, "content": step[3]})
        assert response.status_code == 201
        mid = response.json()["id"]
        assert mid not in world.owner or world.owner[mid] == (t, u)
        world.owner[mid], world.content[mid] = (t, u), step[3]
        world.live.add(mid)
        world.ids.append(mid)
        return
    if kind in ("get", "patch", "delete"):
        if not world.ids:
            return
        mid = world.ids[step[3] % len(world.ids)]
        mine = mid in world.live and world.owner[mid] == (t, u)
        if kind == "get":
            response = client.get(f"/v1/memories/{mid}", params={"user_id": u})
        elif kind == "patch":
            response = client.patch(f"/v1/memories/{mid}",
                                    json={"user_id": u, "content": step[4]})
        else:
            response = client.delete(f"/v1/memories/{mid}", params={"user_id": u})
        assert response.status_code == (404 if not mine else 204 if kind == "delete" else 200)
        if not mine:
            assert response.json()["error"] == {
                "type": "MemoryNotFoundError", "message": f"no memory with id {mid!r}",
                "memory_id": mid}
        elif kind == "get":
            assert response.json()["content"] == world.content[mid]
        elif kind == "patch":
            world.content[mid] = step[4]
        else:
            world.live.discard(mid)
        return
    owned = world.owned(t, u)
    if kind == "search":
        response = client.post("/v1/search", json={"user_id": u, "query": step[3], "k": 20,
                                                   "min_score": -1.0})
        got = {h["memory"]["id"]: h["memory"]["content"] for h in response.json()["results"]}
        assert got.items() <= owned.items()
    elif kind == "list":
        listed = client.get("/v1/memories", params={"user_id": u}).json()["memories"]
        assert {m["id"]: m["content"] for m in listed} == owned
        assert all(m["user_id"] == u for m in listed)
    else:
        assert client.delete(f"/v1/users/{quote(u, safe='')}").json()["deleted"] == len(owned)
        world.live -= set(owned)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(op, min_size=1, max_size=25))
def test_no_call_crosses_tenants_or_users(clients: dict[str, httpx.Client],
                                          steps: list[tuple]) -> None:
    world = World(uuid.uuid4().hex[:8])
    for step in steps:
        check(world, clients, step)
    for t in TENANTS:  # the end state, everywhere, is exactly the model
        for name in USERS:
            u = world.user(name)
            listed = clients[t].get("/v1/memories", params={"user_id": u}).json()["memories"]
            assert {m["id"]: m["content"] for m in listed} == world.owned(t, u)
