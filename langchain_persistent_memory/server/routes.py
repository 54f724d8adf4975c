"""The REST endpoints: thin adapters from HTTP to the tenant's ``MemoryStore``.

Store calls run the store's blocking methods in the thread pool: one thread hop per request
(the ``a``-methods would take two, embedding and SQL), which is most of the HTTP overhead.

Every route resolves the tenant from the API key first (:func:`scope`), then works only on
that tenant's store; the user id of the request scopes the store call exactly as in the
library, so another user's memory id answers 404 like a missing one.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool as in_thread

from .. import __version__
from ..errors import InvalidInputError, ServiceError
from ..models import Memory, ScoredMemory
from ..store import MemoryStore
from ..validation import check_user_id
from .guards import tenant_for
from .schemas import AddBody, BatchBody, DeleteBody, PatchBody, SearchBody, TurnBody
from .state import ServiceState

__all__ = ["Scope", "router", "scope"]

router = APIRouter()


@dataclass(frozen=True)
class Scope:
    """The caller's tenant and its store, resolved from the API key."""

    tenant: str
    store: MemoryStore
    state: ServiceState


async def scope(request: Request,
                authorization: Annotated[str | None, Header()] = None) -> Scope:
    """Authenticate, rate-limit, and open the tenant's store (dependency of every route)."""
    state: ServiceState = request.app.state.lpm
    tenant = tenant_for(state.config, authorization)
    state.limiter.check(tenant)
    store = state.tenants.opened().get(tenant)
    if store is None:
        store = await asyncio.to_thread(state.tenants.store, tenant)
    return Scope(tenant, store, state)


Ctx = Annotated[Scope, Depends(scope)]
UserQuery = Annotated[str, Query(description="whose memories (always required)")]


def memory_json(memory: Memory) -> dict[str, Any]:
    return memory.model_dump(mode="json", exclude={"embedding"})


def _memory_response(memory: Memory, status: int = 200) -> JSONResponse:
    return JSONResponse(memory_json(memory), status_code=status)


@router.get("/healthz", tags=["service"])
async def healthz() -> dict[str, Any]:
    """Liveness: no key needed, touches no database. ``worker`` is the answering process."""
    return {"status": "ok", "version": __version__, "worker": os.getpid()}


@router.post("/v1/memories", status_code=201, tags=["memories"])
async def add_memory(body: AddBody, ctx: Ctx) -> JSONResponse:
    fields = body.model_dump(exclude={"user_id", "provenance"})
    origin = body.provenance.stored() if body.provenance else None
    memory = await in_thread(ctx.store.add, fields.pop("content"), user_id=body.user_id,
                             provenance=origin, **fields)
    return _memory_response(memory, 201)


@router.post("/v1/memories/batch", status_code=201, tags=["memories"])
async def add_memories(body: BatchBody, ctx: Ctx) -> JSONResponse:
    items = [item.model_dump(exclude_none=True) for item in body.items]
    added = await in_thread(ctx.store.add_many, items, user_id=body.user_id)
    return JSONResponse({"memories": [memory_json(m) for m in added]}, status_code=201)


@router.get("/v1/memories", tags=["memories"])
async def list_memories(
        ctx: Ctx, user_id: UserQuery,
        limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        include_superseded: bool = False,
        category: Annotated[list[str] | None, Query()] = None,
        agent_id: str | None = None, session_id: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        metadata: Annotated[str | None, Query(description="JSON object")] = None,
) -> JSONResponse:
    filters = {k: v for k, v in {"agent_id": agent_id, "session_id": session_id,
                                 "since": since, "until": until,
                                 "metadata": _json_object(metadata, "metadata"),
                                 "category": category}.items() if v is not None}
    # cast: MemoryStore's own ``list`` method shadows the builtin in its annotations
    found = cast("list[Memory]", await in_thread(ctx.store.list,
        user_id, include_superseded=include_superseded, limit=limit, offset=offset,
        **filters))
    return JSONResponse({"memories": [memory_json(m) for m in found]})


@router.get("/v1/count", tags=["memories"])
async def count_memories(ctx: Ctx, user_id: str | None = None,
                         include_superseded: bool = False) -> dict[str, int]:
    """Memories of one user, or of the whole tenant when no user is given."""
    count = await in_thread(ctx.store.count, user_id, include_superseded=include_superseded)
    return {"count": count}


@router.get("/v1/memories/{memory_id}", tags=["memories"])
async def get_memory(memory_id: str, user_id: UserQuery, ctx: Ctx) -> JSONResponse:
    memory = await in_thread(ctx.store.get, memory_id, user_id=check_user_id(user_id))
    return _memory_response(memory)


@router.patch("/v1/memories/{memory_id}", tags=["memories"])
async def patch_memory(memory_id: str, body: PatchBody, ctx: Ctx) -> JSONResponse:
    user_id = check_user_id(body.user_id)
    fields = body.model_dump(exclude={"user_id", "supersede", "valid_from", "provenance"},
                             exclude_none=True)
    if body.provenance is not None:
        fields["provenance"] = body.provenance.stored()
    if body.supersede:
        if body.content is None:
            raise InvalidInputError("supersede needs the new content", field="content")
        content = fields.pop("content")
        memory = await in_thread(ctx.store.supersede, memory_id, content, user_id=user_id,
                                            valid_from=body.valid_from, **fields)
    else:
        if body.valid_from is not None:
            raise InvalidInputError("valid_from is only accepted with supersede: true",
                                    field="valid_from")
        if not fields.keys() - {"provenance"}:
            raise InvalidInputError("nothing to change: give content, category, importance "
                                    "or metadata", field="content")
        memory = await in_thread(ctx.store.update, memory_id, user_id=user_id, **fields)
    return _memory_response(memory)


@router.delete("/v1/memories/{memory_id}", status_code=204, tags=["memories"])
async def delete_memory(memory_id: str, user_id: UserQuery, ctx: Ctx,
                        reason: str | None = None,
                        prefer: Annotated[str | None, Header()] = None,
                        body: DeleteBody | None = None) -> Response:
    """204; with ``Prefer: return=representation`` 200 and the deleted memory. An optional
    body ``{"provenance": {...}}`` says where the delete came from (default: ``api``)."""
    origin = body.provenance.stored() if body and body.provenance else None
    memory = await in_thread(ctx.store.delete, memory_id, user_id=check_user_id(user_id),
                             reason=reason, provenance=origin)
    if prefer and "return=representation" in prefer:
        return _memory_response(memory)
    return Response(status_code=204)


@router.get("/v1/memories/{memory_id}/history", tags=["memories"])
async def memory_history(memory_id: str, user_id: UserQuery, ctx: Ctx) -> JSONResponse:
    events = await in_thread(ctx.store.history, memory_id, user_id=check_user_id(user_id))
    return JSONResponse({"events": [e.model_dump(mode="json") for e in events]})


@router.post("/v1/search", tags=["search"])
async def search(body: SearchBody, ctx: Ctx) -> JSONResponse:
    hits = cast("list[ScoredMemory]", await in_thread(
        ctx.store.search, body.query, user_id=body.user_id, **body.arguments()))
    # A JSONResponse, not a dict: FastAPI would walk the dict again to encode it.
    return JSONResponse({"results": [{"memory": memory_json(m), "score": s} for m, s in hits]})


@router.post("/v1/turns", status_code=202, tags=["turns"])
async def submit_turn(body: TurnBody, ctx: Ctx) -> JSONResponse:
    """Queue a turn for the pipeline and return at once; poll ``GET /v1/jobs/{job_id}``."""
    user_id = check_user_id(body.user_id)
    request = body.model_dump(mode="json", exclude={"user_id"}, exclude_none=True)
    job_id = await ctx.state.runner.submit(ctx.tenant, user_id, request)
    return JSONResponse({"job_id": job_id, "status": "queued"}, status_code=202)


@router.get("/v1/jobs/{job_id}", tags=["turns"])
async def get_job(job_id: str, ctx: Ctx) -> dict[str, Any]:
    job = await ctx.state.runner.get(ctx.tenant, job_id)
    if job is None:
        raise ServiceError(404, "not_found", f"no job with id {job_id!r}")
    return job


@router.get("/v1/users/{user_id:path}/entities", tags=["users"])
async def user_entities(user_id: str, ctx: Ctx,
                        include_superseded: bool = False) -> JSONResponse:
    """The entities a user's memories name, most often named first, with the memory ids."""
    user_id = check_user_id(user_id)
    rows = await in_thread(ctx.store.entities, user_id, include_superseded=include_superseded)
    return JSONResponse({"entities": [
        {"key": r.key, "name": r.name, "kind": r.kind, "memories": len(r.memory_ids),
         "subject_of": r.subject_of, "aliases": list(r.aliases),
         "memory_ids": list(r.memory_ids)} for r in rows]})


@router.delete("/v1/users/{user_id:path}", tags=["users"])
async def forget_user(user_id: str, ctx: Ctx) -> dict[str, int]:
    """Erase a user: queued turns first (so none runs afterwards), then every memory."""
    user_id = check_user_id(user_id)
    dropped = await ctx.state.runner.drop_user(ctx.tenant, user_id)
    deleted = await in_thread(ctx.store.forget_user, user_id)
    return {"deleted": deleted, "jobs_dropped": dropped}


@router.get("/v1/export", tags=["backup"])
async def export(ctx: Ctx, user_id: str | None = None) -> StreamingResponse:
    """JSON Lines backup of one user (or the whole tenant), vectors and history included."""
    spool: IO[str] = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
    try:
        count = await in_thread(ctx.store.export_jsonl, spool, user_id=user_id)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(_lines(spool), media_type="application/x-ndjson",
                             headers={"X-LPM-Memories": str(count)})


def _lines(spool: IO[str]) -> Iterator[str]:
    with spool:
        yield from spool


@router.post("/v1/import", tags=["backup"])
async def import_(request: Request, ctx: Ctx, user_id: str | None = None,
                  on_conflict: Literal["error", "skip"] = "error") -> dict[str, int]:
    """Restore a JSON Lines export into this tenant (checked whole before anything is
    written)."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("the import is not UTF-8 text", field="body") from None
    count = await in_thread(ctx.store.import_jsonl, io.StringIO(text), user_id=user_id,
                                          on_conflict=on_conflict)
    return {"imported": count}


def _json_object(text: str | None, field: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInputError(f"{field} must be a JSON object", field=field) from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{field} must be a JSON object", field=field)
    return value
