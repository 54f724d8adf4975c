"""The REST API of ``lpm serve`` on SQLite, over real HTTP: every endpoint, auth, tenants,
background turns, and the documented error shape for bad input (with nothing stored)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_persistent_memory.retrieval import SearchOptions
from tests.support.service import RunningService

pytestmark = pytest.mark.integration

KEYS = "acme:key-acme,beta:key-beta"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    db = tmp_path_factory.mktemp("svc") / "memories.db"
    running = RunningService(f"sqlite:///{db}", keys=KEYS,
                             extra=("--rate-limit", "0"))
    yield running
    running.stop()


@pytest.fixture
def acme(service: RunningService) -> Iterator[httpx.Client]:
    with service.client("key-acme") as client:
        yield client


@pytest.fixture
def beta(service: RunningService) -> Iterator[httpx.Client]:
    with service.client("key-beta") as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["type"], str) and body["error"]["message"]
    assert "Traceback" not in response.text
    return dict(body["error"])


def count(client: httpx.Client) -> int:
    response = client.get("/v1/count", params={"include_superseded": True})
    assert response.status_code == 200
    return int(response.json()["count"])


def wait_job(client: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']}")


def test_health_and_docs_need_no_key(service: RunningService) -> None:
    with service.client() as anonymous:
        assert anonymous.get("/healthz").json()["status"] == "ok"
        assert anonymous.get("/docs").status_code == 200
        paths = anonymous.get("/openapi.json").json()["paths"]
    for path in ("/v1/memories", "/v1/memories/{memory_id}", "/v1/memories/{memory_id}/history",
                 "/v1/search", "/v1/turns", "/v1/jobs/{job_id}", "/v1/users/{user_id}",
                 "/v1/users/{user_id}/entities", "/v1/export", "/v1/import"):
        assert path in paths


def test_missing_key_is_401_and_unknown_key_403(service: RunningService) -> None:
    with service.client() as anonymous:
        missing = anonymous.post("/v1/memories", json={"user_id": "u", "content": "x"})
    with service.client("not-a-key") as stranger:
        unknown = stranger.get("/v1/memories", params={"user_id": "u"})
    assert missing.status_code == 401 and error_of(missing)["type"] == "unauthorized"
    assert unknown.status_code == 403 and error_of(unknown)["type"] == "forbidden"


def test_memory_lifecycle(acme: httpx.Client) -> None:
    created = acme.post("/v1/memories", json={
        "user_id": "alice", "content": "Alice prefers window seats", "category": "travel",
        "importance": 0.8, "metadata": {"source": "test"}, "session_id": "s1"})
    assert created.status_code == 201
    memory = created.json()
    assert memory["user_id"] == "alice" and memory["category"] == "travel"
    assert "embedding" not in memory
    mid = memory["id"]

    assert acme.get(f"/v1/memories/{mid}", params={"user_id": "alice"}).json() == memory
    listed = acme.get("/v1/memories", params={"user_id": "alice", "category": "travel"})
    assert [m["id"] for m in listed.json()["memories"]] == [mid]

    hits = acme.post("/v1/search", json={"user_id": "alice", "query": "window seats",
                                         "k": 3, "category": "travel"}).json()["results"]
    assert hits[0]["memory"]["id"] == mid and hits[0]["score"] > 0

    patched = acme.patch(f"/v1/memories/{mid}", json={
        "user_id": "alice", "content": "Alice prefers aisle seats"})
    assert patched.status_code == 200 and patched.json()["id"] == mid
    newer = acme.patch(f"/v1/memories/{mid}", json={
        "user_id": "alice", "content": "Alice now prefers window seats again",
        "supersede": True}).json()
    assert newer["id"] != mid
    old = acme.get(f"/v1/memories/{mid}", params={"user_id": "alice"}).json()
    assert old["superseded_by"] == newer["id"] and old["valid_to"] is not None

    events = acme.get(f"/v1/memories/{mid}/history", params={"user_id": "alice"}).json()
    assert [e["event"] for e in events["events"]] == ["ADD", "UPDATE", "SUPERSEDE"]

    deleted = acme.delete(f"/v1/memories/{newer['id']}", params={"user_id": "alice"})
    assert deleted.status_code == 204 and deleted.content == b""
    gone = acme.get(f"/v1/memories/{newer['id']}", params={"user_id": "alice"})
    assert gone.status_code == 404 and error_of(gone)["type"] == "MemoryNotFoundError"


def test_other_user_and_other_tenant_answer_like_a_missing_id(
        acme: httpx.Client, beta: httpx.Client) -> None:
    mid = acme.post("/v1/memories", json={"user_id": "carol", "content": "Carol has a cat"}
                    ).json()["id"]
    missing = acme.get("/v1/memories/00000000-0000-0000-0000-000000000000",
                       params={"user_id": "carol"})
    other_user = acme.get(f"/v1/memories/{mid}", params={"user_id": "dave"})
    other_tenant = beta.get(f"/v1/memories/{mid}", params={"user_id": "carol"})
    for response in (other_user, other_tenant):
        assert response.status_code == missing.status_code == 404
        assert error_of(response)["type"] == error_of(missing)["type"]
        assert error_of(response)["message"] == error_of(missing)["message"].replace(
            "00000000-0000-0000-0000-000000000000", mid)
    # writes too: beta can neither change nor delete acme's memory, and search finds nothing
    assert beta.patch(f"/v1/memories/{mid}", json={"user_id": "carol", "content": "x"}
                      ).status_code == 404
    assert beta.delete(f"/v1/memories/{mid}", params={"user_id": "carol"}).status_code == 404
    assert beta.post("/v1/search", json={"user_id": "carol", "query": "cat"}
                     ).json()["results"] == []
    assert acme.get(f"/v1/memories/{mid}", params={"user_id": "carol"}).json()["content"] == \
        "Carol has a cat"


def test_turn_is_queued_and_processed_in_the_background(acme: httpx.Client) -> None:
    queued = acme.post("/v1/turns", json={
        "user_id": "erin", "session_id": "chat-1",
        "messages": [{"role": "user", "content": "I moved to Lisbon last year"},
                     {"role": "assistant", "content": "Nice!"}]})
    assert queued.status_code == 202
    job_id = queued.json()["job_id"]
    job = wait_job(acme, job_id)
    assert job["status"] == "done", job
    assert job["result"]["status"] == "raw"  # no --model: user messages stored as said
    [added] = [op for op in job["result"]["operations"] if op["action"] == "add"]
    stored = acme.get(f"/v1/memories/{added['memory_id']}", params={"user_id": "erin"}).json()
    assert stored["content"] == "I moved to Lisbon last year"
    assert stored["session_id"] == "chat-1"


def test_jobs_are_tenant_scoped(acme: httpx.Client, beta: httpx.Client) -> None:
    job_id = acme.post("/v1/turns", json={
        "user_id": "frank", "messages": [{"role": "user", "content": "I play chess"}]}
    ).json()["job_id"]
    response = beta.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 404 and error_of(response)["type"] == "not_found"
    assert wait_job(acme, job_id)["status"] == "done"


def test_user_entities_are_listed_per_user_and_tenant(acme: httpx.Client,
                                                      beta: httpx.Client) -> None:
    made = acme.post("/v1/memories", json={
        "user_id": "hana", "content": "Hana: I flew to Kyoto with Emi (Emiko)"}).json()
    beta.post("/v1/memories", json={"user_id": "hana", "content": "Hana: I love Lisbon"})
    rows = acme.get("/v1/users/hana/entities").json()["entities"]
    assert {r["key"]: r["memory_ids"] for r in rows} == {
        "hana": [made["id"]], "kyoto": [made["id"]], "emi": [made["id"]]}
    assert next(r for r in rows if r["key"] == "hana")["kind"] == "person"
    assert {r["key"]: r["aliases"] for r in rows} == {"hana": [], "kyoto": [], "emi": ["Emiko"]}
    assert acme.get("/v1/users/nobody/entities").json() == {"entities": []}
    acme.delete(f"/v1/memories/{made['id']}", params={"user_id": "hana"})
    assert acme.get("/v1/users/hana/entities").json() == {"entities": []}
    assert [r["key"] for r in beta.get("/v1/users/hana/entities").json()["entities"]] == \
        ["hana", "lisbon"]


def test_forget_user_erases_memories_and_jobs(acme: httpx.Client) -> None:
    acme.post("/v1/memories", json={"user_id": "gina", "content": "Gina likes jazz"})
    job_id = acme.post("/v1/turns", json={
        "user_id": "gina", "messages": [{"role": "user", "content": "I like blues too"}]}
    ).json()["job_id"]
    answer = acme.delete("/v1/users/gina")
    assert answer.status_code == 200
    assert answer.json()["deleted"] >= 1 and answer.json()["jobs_dropped"] == 1
    time.sleep(1.0)  # a runner that had claimed the turn would have written by now
    assert acme.get(f"/v1/jobs/{job_id}").status_code == 404
    assert acme.get("/v1/memories", params={"user_id": "gina"}).json()["memories"] == []
    assert acme.get("/v1/count", params={"user_id": "gina"}).json()["count"] == 0


def test_export_then_import_into_another_tenant(acme: httpx.Client,
                                                beta: httpx.Client) -> None:
    acme.post("/v1/memories", json={"user_id": "hank", "content": "Hank is vegetarian"})
    exported = acme.get("/v1/export", params={"user_id": "hank"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert lines[0]["type"] == "header" and exported.headers["X-LPM-Memories"] == "1"
    imported = beta.post("/v1/import", content=exported.text,
                         headers={"Content-Type": "application/x-ndjson"})
    assert imported.status_code == 200 and imported.json() == {"imported": 1}
    assert [m["content"] for m in beta.get("/v1/memories", params={"user_id": "hank"})
            .json()["memories"]] == ["Hank is vegetarian"]
    again = beta.post("/v1/import", content=exported.text)
    assert again.status_code == 400 and error_of(again)["type"] == "InvalidInputError"


BAD_BODIES: list[tuple[str, str, Any, int, str]] = [
    # (method, path, body (str = raw text), status, error type)
    ("POST", "/v1/memories", "{not json", 400, "invalid_json"),
    ("POST", "/v1/memories", "[1, 2]", 400, "invalid_json"),
    ("POST", "/v1/memories", {"user_id": "u", "content": 5}, 422, "validation_error"),
    ("POST", "/v1/memories", {"user_id": "u"}, 422, "missing_field"),
    ("POST", "/v1/memories", {"user_id": "u", "content": "x", "colour": 1}, 422,
     "unknown_field"),
    ("POST", "/v1/memories", {"user_id": "u", "content": "   "}, 400, "InvalidInputError"),
    ("POST", "/v1/memories", {"user_id": "", "content": "x"}, 400, "InvalidInputError"),
    ("POST", "/v1/memories", {"user_id": "u", "content": "x", "importance": 7}, 400,
     "InvalidInputError"),
    ("POST", "/v1/memories", {"user_id": "u", "content": "x", "importance": "high"}, 422,
     "validation_error"),
    ("POST", "/v1/memories", {"user_id": "u", "content": "x", "metadata": [1]}, 422,
     "validation_error"),
    ("POST", "/v1/memories/batch", {"user_id": "u", "items": []}, 422, "validation_error"),
    ("POST", "/v1/memories/batch", {"user_id": "u", "items": [{"content": "ok"},
                                                               {"content": ""}]}, 400,
     "InvalidInputError"),
    ("POST", "/v1/search", {"user_id": "u", "query": ""}, 400, "InvalidInputError"),
    ("POST", "/v1/search", {"user_id": "u", "query": "q", "k": "5"}, 422, "validation_error"),
    ("POST", "/v1/search", {"user_id": "u", "query": "q", "k": 0}, 400, "InvalidInputError"),
    ("POST", "/v1/search", {"user_id": "u", "query": "q", "mode": "psychic"}, 400,
     "InvalidInputError"),
    ("POST", "/v1/search", {"user_id": "u", "query": "q", "filter": {}}, 422, "unknown_field"),
    ("POST", "/v1/turns", {"user_id": "u", "messages": []}, 422, "validation_error"),
    ("POST", "/v1/turns", {"user_id": "u", "messages": [{"role": "user"}]}, 422,
     "missing_field"),
    ("POST", "/v1/turns", {"user_id": " ", "messages": [{"role": "user", "content": "x"}]},
     400, "InvalidInputError"),
    ("PATCH", "/v1/memories/some-id", {"user_id": "u"}, 400, "InvalidInputError"),
    ("PATCH", "/v1/memories/some-id", {"user_id": "u", "supersede": "yes"}, 422,
     "validation_error"),
    ("POST", "/v1/import", "not an export", 400, "InvalidInputError"),
    # query parameters and paths
    ("GET", "/v1/memories?user_id=u&limit=0", None, 422, "validation_error"),
    ("GET", "/v1/memories?user_id=u&limit=ten", None, 422, "validation_error"),
    ("GET", "/v1/memories", None, 422, "missing_field"),
    ("GET", "/v1/memories?user_id=u&metadata=%5B1%5D", None, 400, "InvalidInputError"),
    ("GET", "/v1/memories?user_id=u&since=yesterday", None, 422, "validation_error"),
    ("GET", "/v1/memories/some-id?user_id=", None, 400, "InvalidInputError"),
    ("DELETE", "/v1/memories/some-id?user_id=%20", None, 400, "InvalidInputError"),
    ("DELETE", "/v1/users/%20", None, 400, "InvalidInputError"),
    ("POST", "/v1/import?on_conflict=overwrite", "{}", 422, "validation_error"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "kind"), BAD_BODIES)
def test_bad_input_is_a_documented_4xx_and_stores_nothing(
        acme: httpx.Client, method: str, path: str, body: Any, status: int,
        kind: str) -> None:
    before = count(acme)
    if body is None:
        response = acme.request(method, path)
    elif isinstance(body, str):
        response = acme.request(method, path, content=body,
                                headers={"Content-Type": "application/json"})
    else:
        response = acme.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert error_of(response)["type"] == kind
    assert count(acme) == before


def test_field_is_named_in_errors(acme: httpx.Client) -> None:
    response = acme.post("/v1/memories", json={"user_id": "u", "content": "x",
                                               "importance": 2})
    assert error_of(response)["field"] == "importance"
    response = acme.post("/v1/memories", json={"user_id": "u", "content": "x", "extra": 1})
    assert error_of(response)["field"] == "extra"


def test_huge_bodies_are_413_with_or_without_content_length(acme: httpx.Client) -> None:
    before = count(acme)
    huge = json.dumps({"user_id": "u", "content": "x" * (2 << 20)})
    declared = acme.post("/v1/memories", content=huge,
                         headers={"Content-Type": "application/json"})

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(huge), 65536):
            yield huge[i:i + 65536].encode()

    streamed = acme.post("/v1/memories", content=chunks(),
                         headers={"Content-Type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert error_of(response)["type"] == "payload_too_large"
    assert count(acme) == before


def test_unknown_route_and_method_are_json(acme: httpx.Client) -> None:
    assert error_of(acme.get("/v2/nothing"))["type"] == "not_found"
    response = acme.put("/v1/search", json={})
    assert response.status_code == 405 and error_of(response)["type"] == "method_not_allowed"


def test_rate_limit_answers_429_per_tenant(tmp_path: Path) -> None:
    running = RunningService(f"sqlite:///{tmp_path / 'r.db'}", keys=KEYS,
                             extra=("--rate-limit", "2"))
    try:
        with running.client("key-acme") as acme, running.client("key-beta") as beta:
            codes = [acme.get("/v1/count").status_code for _ in range(12)]
            assert 429 in codes and codes[0] == 200
            limited = acme.get("/v1/count")
            if limited.status_code == 429:
                assert error_of(limited)["type"] == "rate_limited"
                assert limited.headers["Retry-After"] == "1"
            assert beta.get("/v1/count").status_code == 200  # another tenant's budget
    finally:
        running.stop()


def test_every_ranking_option_of_search_is_accepted_over_rest(acme: httpx.Client) -> None:
    """The REST search schema lists the ranking options by hand: each option of
    ``SearchOptions`` (with its default value) must pass, and be applied, over HTTP."""
    added = acme.post("/v1/memories", json={"user_id": "opts", "content": "Opts likes tea"})
    assert added.status_code in (200, 201), added.text
    defaults = SearchOptions()
    for option in fields(SearchOptions):
        value = getattr(defaults, option.name)
        response = acme.post("/v1/search", json={"user_id": "opts", "query": "tea",
                                                  option.name: value})
        assert response.status_code == 200, (option.name, response.text)
        assert [h["memory"]["content"] for h in response.json()["results"]] == ["Opts likes tea"]
    bad = acme.post("/v1/search", json={"user_id": "opts", "query": "tea", "mode": "nonsense"})
    assert bad.status_code == 400 and error_of(bad)["type"] == "InvalidInputError"
