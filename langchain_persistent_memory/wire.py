"""The service's wire format, shared by the REST server and the HTTP client: no I/O here.

Why one module: the server turns a typed error into ``{"error": {"type", "message",
"field"?}}`` and a status code, and the client turns that body back into the same typed
error. Keeping both directions side by side is what makes ``MemoryClient`` raise exactly
what ``MemoryStore`` raises.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    EmbeddingMismatchError,
    EmbeddingModelError,
    ExtractionError,
    ForgetIncompleteError,
    ForgetInProgressError,
    InvalidInputError,
    MemoryNotFoundError,
    PersistentMemoryError,
    SchemaVersionError,
    ServiceError,
    StoreClosedError,
)

__all__ = ["ERROR_STATUS", "error_body", "error_from_body", "status_for"]


# Most specific class first: StoreClosedError before InvalidInputError.
ERROR_STATUS: tuple[tuple[type[PersistentMemoryError], int], ...] = (
    (MemoryNotFoundError, 404),  # another user's memory answers like a missing one
    (StoreClosedError, 503),  # the server is shutting down
    (EmbeddingMismatchError, 409),
    (ForgetInProgressError, 409),
    (ForgetIncompleteError, 503),  # deleted; a reader keeps the WAL: call again later
    (EmbeddingModelError, 502),
    (InvalidInputError, 400),
    (SchemaVersionError, 500),
    (ExtractionError, 502),
)
_BY_NAME: dict[str, type[PersistentMemoryError]] = {
    cls.__name__: cls for cls, _ in ERROR_STATUS}


def status_for(exc: PersistentMemoryError) -> int:
    """The HTTP status of a package error."""
    if isinstance(exc, ServiceError):
        return exc.status
    for cls, status in ERROR_STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: PersistentMemoryError) -> dict[str, Any]:
    """``{"error": {...}}`` for a package error; another user's memory is told as "not found"."""
    if isinstance(exc, ServiceError):
        return _body(exc.type, str(exc), exc.field)
    if isinstance(exc, MemoryNotFoundError):
        memory_id = getattr(exc, "memory_id", None)
        message = f"no memory with id {memory_id!r}" if memory_id else "not found"
        return _body(MemoryNotFoundError.__name__, message, None,
                     memory_id=memory_id)
    field = getattr(exc, "field", None)
    name = type(exc).__name__ if type(exc) in _BY_NAME.values() else "PersistentMemoryError"
    return _body(name, str(exc), field)


def _body(type_: str, message: str, field: str | None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if field is not None:
        error["field"] = field
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


def error_from_body(status: int, body: Any) -> PersistentMemoryError:
    """The typed error an error response stands for (the client raises it)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ServiceError(status, "http_error", f"HTTP {status}")
    kind = str(error.get("type") or "http_error")
    message = str(error.get("message") or f"HTTP {status}")
    field = error.get("field") if isinstance(error.get("field"), str) else None
    cls = _BY_NAME.get(kind)
    if cls is MemoryNotFoundError:
        return MemoryNotFoundError(str(error.get("memory_id") or ""))
    if cls is ForgetInProgressError:
        return ForgetInProgressError("", message)
    if cls is ForgetIncompleteError:
        return ForgetIncompleteError("", removed=0, wal_frames=0, message=message)
    if cls is not None and issubclass(cls, InvalidInputError):
        return cls(message, field=field)
    if cls is not None:
        return cls(message)
    if status in (400, 422):
        # The request's shape was refused (unknown field, wrong type, bad JSON): the store
        # raises InvalidInputError for the same mistakes.
        return InvalidInputError(message, field=field)
    return ServiceError(status, kind, message, field=field)
