"""Typed errors raised by langchain-persistent-memory.

One root, so callers can catch everything from this package at once; each child also
subclasses the matching builtin, so ``except KeyError`` / ``except ValueError`` keep working::

    PersistentMemoryError
    ├── InvalidInputError (ValueError)      bad argument; nothing was written
    │   ├── StoreClosedError                 the store was closed (also mid-call)
    │   └── ScopeConflictError               two sources name different users for one call
    ├── MemoryNotFoundError (KeyError)       no memory with that id (for that user)
    ├── EmbeddingMismatchError (ValueError)  store was built with another embedding model
    ├── EmbeddingModelError (ValueError)     the embedding model returned unusable vectors
    ├── SchemaVersionError (RuntimeError)    database schema is newer than this release
    ├── ForgetInProgressError (RuntimeError) a turn arrived while its user is being forgotten
    ├── ForgetIncompleteError (RuntimeError) forgotten, but a reader kept the WAL's old text
    ├── ExtractionError (RuntimeError)       the chat model's output could not be used
    └── ServiceError                         the memory service refused a call (auth, rate,
                                             size) or failed; ``status`` is the HTTP code
"""

from __future__ import annotations

__all__ = [
    "EmbeddingMismatchError",
    "EmbeddingModelError",
    "ExtractionError",
    "ForgetInProgressError",
    "ForgetIncompleteError",
    "InvalidInputError",
    "MemoryNotFoundError",
    "PersistentMemoryError",
    "SchemaVersionError",
    "ScopeConflictError",
    "ServiceError",
    "StoreClosedError",
]


class PersistentMemoryError(Exception):
    """Root of every error this package raises on purpose."""


class InvalidInputError(PersistentMemoryError, ValueError):
    """An argument was rejected before anything was written.

    Attributes:
        field: the argument at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StoreClosedError(InvalidInputError):
    """The store is closed: a call made after ``close()``, or one still running when it was."""


class ScopeConflictError(InvalidInputError):
    """Two sources name different users for one call (a retriever built for one user and a
    run config naming another): refused instead of silently answering for either."""

    def __init__(self, message: str, *, expected: str, given: str) -> None:
        super().__init__(message, field="user_id")
        self.expected = expected
        self.given = given


class MemoryNotFoundError(PersistentMemoryError, KeyError):
    """No memory with this id exists (or it belongs to another user)."""

    def __init__(self, memory_id: str, *, user_id: str | None = None) -> None:
        self.memory_id = memory_id
        self.user_id = user_id
        scope = f" for user {user_id!r}" if user_id is not None else ""
        super().__init__(f"no memory with id {memory_id!r}{scope}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class EmbeddingMismatchError(PersistentMemoryError, ValueError):
    """The store's vectors were made by a different embedding model or dimension."""

    def __init__(self, message: str, *, stored: str | None = None, given: str | None = None):
        super().__init__(message)
        self.stored = stored
        self.given = given


class EmbeddingModelError(PersistentMemoryError, ValueError):
    """The embedding model returned vectors that cannot be stored or searched: NaN or
    infinite values, all zeros, rows of unequal length, text, or the wrong number of rows.
    Nothing was written."""


class SchemaVersionError(PersistentMemoryError, RuntimeError):
    """The database was written by a newer release than the one running."""


class ExtractionError(PersistentMemoryError, RuntimeError):
    """The chat model's output could not be turned into valid memory operations."""


class ForgetInProgressError(PersistentMemoryError, RuntimeError):
    """``forget_user`` is running for this user: new turns are refused until it returns."""

    def __init__(self, user_id: str, message: str | None = None) -> None:
        super().__init__(message or f"user {user_id!r} is being forgotten; try again when "
                         "forget_user has returned")
        self.user_id = user_id


class ForgetIncompleteError(PersistentMemoryError, RuntimeError):
    """``forget_user`` deleted and committed everything, but the SQLite WAL could not be
    emptied: another connection holds a read transaction, and the WAL's old frames still
    hold erased text until it ends. Call ``forget_user`` again after the reader finished.

    Attributes:
        user_id: the user forgotten.
        removed: memories deleted by this call.
        wal_frames: frames the WAL still held when ``forget_user`` gave up waiting.
    """

    def __init__(self, user_id: str, *, removed: int, wal_frames: int,
                 message: str | None = None) -> None:
        super().__init__(message or
            f"user {user_id!r}: {removed} memories and their history are deleted, but "
            f"another connection holds a read transaction, so the SQLite WAL still holds "
            f"{wal_frames} frames that may contain erased text; call forget_user again "
            "once that reader has finished")
        self.user_id = user_id
        self.removed = removed
        self.wal_frames = wal_frames


class ServiceError(PersistentMemoryError):
    """An HTTP-level failure of the memory service with no library counterpart.

    Attributes:
        status: the HTTP status code (401, 403, 413, 429, 5xx …).
        type: the error type of the response body (``unauthorized``, ``rate_limited`` …).
        field: the request field at fault, when there is one.
    """

    def __init__(self, status: int, type: str, message: str, *,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.field = field
