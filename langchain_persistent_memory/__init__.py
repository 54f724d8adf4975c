"""langchain-persistent-memory: long-term memory for LLM apps that survives restarts."""

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    EmbeddingMismatchError,
    ExtractionError,
    InvalidInputError,
    MemoryNotFoundError,
    PersistentMemoryError,
    SchemaVersionError,
    ScopeError,
)
from .models import (
    AddOp,
    DeleteOp,
    EventType,
    Memory,
    MemoryEvent,
    Operation,
    ScoredMemory,
    SupersedeOp,
    UpdateOp,
)
from .store import LocalEmbeddings, MemoryStore, default_database_url

try:
    __version__ = version("langchain-persistent-memory")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AddOp",
    "DeleteOp",
    "EmbeddingMismatchError",
    "EventType",
    "ExtractionError",
    "InvalidInputError",
    "LocalEmbeddings",
    "Memory",
    "MemoryEvent",
    "MemoryNotFoundError",
    "MemoryStore",
    "Operation",
    "PersistentMemoryError",
    "SchemaVersionError",
    "ScopeError",
    "ScoredMemory",
    "SupersedeOp",
    "UpdateOp",
    "__version__",
    "default_database_url",
]
