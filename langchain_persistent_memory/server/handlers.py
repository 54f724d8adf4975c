"""Every error leaves the server as ``{"error": {"type", "message", "field"?}}``.

Typed package errors keep their names (the client raises the same class again); request
validation becomes 400 (malformed JSON) or 422 (wrong shape, with the field); anything
unexpected is logged here and answered with a bare 500, never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from ..errors import PersistentMemoryError, ServiceError
from ..wire import error_body, status_for

__all__ = ["install_handlers", "validation_error"]

log = logging.getLogger("langchain_persistent_memory.server")

_HTTP_TYPES = {401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 429: "rate_limited"}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
          ) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def validation_error(errors: list[Any]) -> ServiceError:
    """The first problem of a pydantic/FastAPI validation, as a 400/422 service error."""
    first = errors[0] if errors else {}
    kind = str(first.get("type", ""))
    if kind in ("json_invalid", "json_type"):
        return ServiceError(400, "invalid_json", "the request body is not valid JSON")
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or None
    if field is None and tuple(first.get("loc", ())) == ("body",):
        return ServiceError(400, "invalid_json", "the request body must be a JSON object")
    if kind == "extra_forbidden":
        return ServiceError(422, "unknown_field", f"unknown field {field!r}", field=field)
    if kind == "missing":
        return ServiceError(422, "missing_field", f"{field} is required", field=field)
    message = str(first.get("msg", "invalid request"))
    return ServiceError(422, "validation_error",
                        f"{field}: {message}" if field else message, field=field)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(PersistentMemoryError)
    async def _package(_: Request, exc: PersistentMemoryError) -> JSONResponse:
        headers = {"Retry-After": "1"} if isinstance(exc, ServiceError) and \
            exc.status == 429 else None
        return _json(status_for(exc), error_body(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = validation_error(list(exc.errors()))
        return _json(error.status, error_body(error))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        kind = _HTTP_TYPES.get(exc.status_code, "http_error")
        error = ServiceError(exc.status_code, kind, str(exc.detail))
        return _json(exc.status_code, error_body(error), dict(exc.headers or {}))

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database error on %s %s: %s", request.method, request.url.path, exc)
        error = ServiceError(503, "database_unavailable",
                             "the database did not answer; retry later")
        return _json(503, error_body(error), {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        error = ServiceError(500, "internal_error", "internal server error")
        return _json(500, error_body(error))
