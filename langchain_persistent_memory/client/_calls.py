"""Each client method as a pure request description plus a parser: no I/O here.

Why: ``MemoryClient`` (sync) and ``AsyncMemoryClient`` send the same requests and read the
same answers; only the sending differs. Building a :class:`Call` once and handing it to a
thin executor on each side keeps the two from drifting apart.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from ..errors import InvalidInputError
from ..models import AddOp, Memory, MemoryEvent, Provenance, ScoredMemory
from ..pipeline.messages import turn_messages
from ..wire import error_from_body

__all__ = ["Call", "calls", "check_response"]

T = TypeVar("T")
JOB_DONE = ("done", "failed")


def _owner(user_id: object) -> str:
    """The user of a call by memory id, as ``MemoryStore`` requires it. The server always
    scopes such a call to one user, so the store's admin opt-in ``ANY_USER`` has no remote
    twin: leaving the user out (or passing ``ANY_USER``) is refused before any request."""
    if not isinstance(user_id, str):
        raise InvalidInputError(
            "user_id is required for a call by memory id: pass the memory's user (the "
            "server has no ANY_USER admin opt-in)", field="user_id")
    return user_id


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to read its successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def check_response(response: httpx.Response) -> httpx.Response:
    """Raise the typed error an error answer stands for (the same one the store raises)."""
    if response.status_code < 400:
        return response
    try:
        body = response.json()
    except ValueError:
        body = None
    raise error_from_body(response.status_code, body)


def _seg(value: str, name: str) -> str:
    """An id as one path segment; blank ids fail here like they fail in the store."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} must be a non-empty string", field=name)
    return quote(value, safe="")


def _memory(response: httpx.Response) -> Memory:
    return Memory.model_validate(response.json())


def _memories(response: httpx.Response) -> list[Memory]:
    return [Memory.model_validate(m) for m in response.json()["memories"]]


def _hits(response: httpx.Response) -> list[ScoredMemory]:
    return [ScoredMemory(Memory.model_validate(h["memory"]), float(h["score"]))
            for h in response.json()["results"]]


def _events(response: httpx.Response) -> list[MemoryEvent]:
    return [MemoryEvent.model_validate(e) for e in response.json()["events"]]


def _json(response: httpx.Response) -> Any:
    return response.json()


def _key(name: str) -> Callable[[httpx.Response], Any]:
    return lambda response: response.json()[name]


def _jsonable(value: Any) -> Any:
    """Datetimes as ISO strings, provenance as its fields; everything else is already JSON
    (the server validates)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Provenance):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _without_none(**fields: Any) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in fields.items() if v is not None}


def _item(item: str | dict[str, Any] | AddOp) -> dict[str, Any]:
    if isinstance(item, str):
        return {"content": item}
    if isinstance(item, AddOp):
        return _without_none(**item.model_dump(exclude={"kind"}))
    return _jsonable(dict(item))  # type: ignore[no-any-return]


class _Calls:
    """The request behind every client method (names and arguments as on ``MemoryStore``)."""

    def health(self) -> Call[dict[str, Any]]:
        return Call("GET", "/healthz", _json)

    def add(self, content: str, *, user_id: str, agent_id: str | None, session_id: str | None,
            category: str | None, importance: float, metadata: dict[str, Any] | None,
            valid_from: datetime | None, provenance: Provenance | None) -> Call[Memory]:
        body = _without_none(user_id=user_id, content=content, agent_id=agent_id,
                             session_id=session_id, category=category, importance=importance,
                             metadata=metadata, valid_from=valid_from, provenance=provenance)
        return Call("POST", "/v1/memories", _memory, json=body)

    def add_many(self, items: Sequence[str | dict[str, Any] | AddOp], *,
                 user_id: str) -> Call[list[Memory]]:
        body = {"user_id": user_id, "items": [_item(i) for i in items]}
        return Call("POST", "/v1/memories/batch", _memories, json=body)

    def get(self, memory_id: str, *, user_id: str | None) -> Call[Memory]:
        return Call("GET", f"/v1/memories/{_seg(memory_id, 'memory_id')}", _memory,
                    params={"user_id": _owner(user_id)})

    def update(self, memory_id: str, *, user_id: str | None, supersede: bool = False,
               **fields: Any) -> Call[Memory]:
        body = _without_none(user_id=_owner(user_id), **fields)
        if supersede:
            body["supersede"] = True
        return Call("PATCH", f"/v1/memories/{_seg(memory_id, 'memory_id')}", _memory,
                    json=body)

    def delete(self, memory_id: str, *, user_id: str | None, reason: str | None,
               provenance: Provenance | None) -> Call[Memory]:
        # RFC 7240: ask for the deleted memory instead of the default 204 (the store
        # returns it too).
        return Call("DELETE", f"/v1/memories/{_seg(memory_id, 'memory_id')}", _memory,
                    params=_without_none(user_id=_owner(user_id), reason=reason),
                    json=_without_none(provenance=provenance) or None,
                    headers={"Prefer": "return=representation"})

    def history(self, memory_id: str, *, user_id: str | None) -> Call[list[MemoryEvent]]:
        return Call("GET", f"/v1/memories/{_seg(memory_id, 'memory_id')}/history", _events,
                    params={"user_id": _owner(user_id)})

    def list(self, user_id: str, *, include_superseded: bool, limit: int | None,
             offset: int, filters: dict[str, Any]) -> Call[builtins.list[Memory]]:
        params = _without_none(user_id=user_id, limit=limit, offset=offset or None,
                               include_superseded=include_superseded or None,
                               **_query_filters(filters))
        return Call("GET", "/v1/memories", _memories, params=params)

    def count(self, user_id: str | None, *, include_superseded: bool) -> Call[int]:
        params = _without_none(user_id=user_id, include_superseded=include_superseded or None)
        return Call("GET", "/v1/count", _key("count"), params=params)

    def search(self, query: str, *, user_id: str, k: int, include_superseded: bool,
               min_score: float | None,
               filters: dict[str, Any]) -> Call[builtins.list[ScoredMemory]]:
        body = {"user_id": user_id, "query": query, "k": k,
                **_without_none(include_superseded=include_superseded or None,
                                min_score=min_score), **_jsonable(filters)}
        return Call("POST", "/v1/search", _hits, json=body)

    def forget_user(self, user_id: str) -> Call[int]:
        return Call("DELETE", f"/v1/users/{_seg(user_id, 'user_id')}", _key("deleted"))

    def export_jsonl(self, user_id: str | None) -> Call[httpx.Response]:
        return Call("GET", "/v1/export", lambda r: r, params=_without_none(user_id=user_id))

    def import_jsonl(self, text: str, *, user_id: str | None, on_conflict: str) -> Call[int]:
        return Call("POST", "/v1/import", _key("imported"), content=text,
                    params=_without_none(user_id=user_id, on_conflict=on_conflict),
                    headers={"Content-Type": "application/x-ndjson"})

    def submit(self, messages: Any, *, user_id: str, agent_id: str | None,
               session_id: str | None, timestamp: datetime | None) -> Call[str]:
        body = _without_none(user_id=user_id, messages=wire_messages(messages),
                             agent_id=agent_id, session_id=session_id, timestamp=timestamp)
        return Call("POST", "/v1/turns", _key("job_id"), json=body)

    def job(self, job_id: str) -> Call[dict[str, Any]]:
        return Call("GET", f"/v1/jobs/{_seg(job_id, 'job_id')}", _json)


def wire_messages(messages: Any) -> builtins.list[dict[str, str]]:
    """Any turn the pipeline accepts (LangChain messages, dicts, tuples, a string) as
    ``[{role, content, id?}]``; bad turns fail here, before a request is sent. Empty
    messages stay (unless all are empty) so the service records each fact's evidence at the
    position the caller passed it, with its message id."""
    turn = turn_messages(messages)
    if not any(m.text for m in turn):
        return []
    return [{"role": m.role, "content": m.text} | ({"id": m.id} if m.id else {})
            for m in turn]


def _query_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """List filters as query parameters: metadata travels as JSON text."""
    out = dict(filters)
    if "metadata" in out and out["metadata"] is not None:
        out["metadata"] = json.dumps(out["metadata"])
    return out


calls = _Calls()
