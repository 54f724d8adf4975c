"""langchain-persistent-memory: long-term memory for LLM apps that survives restarts."""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from .backend import MemoryBackend, TurnProcessor
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
    ScopeConflictError,
    ServiceError,
    StoreClosedError,
)
from .models import (
    AddOp,
    DeleteOp,
    EventType,
    Memory,
    MemoryEvent,
    Operation,
    Provenance,
    ScoredMemory,
    SupersedeOp,
    UpdateOp,
)
from .pipeline import (
    ConsolidationResult,
    MemoryChange,
    MemoryManager,
    PipelinePrompts,
    ProcessResult,
)
from .scopes import ANY_USER
from .store import (
    EntityRow,
    ForgetGuard,
    IndexInfo,
    LocalEmbeddings,
    MemoryStore,
    default_database_url,
)

try:
    __version__ = version("langchain-persistent-memory")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

# Integrations need optional frameworks, so they are imported on first use (PEP 562):
# name -> (module under .integrations, the extra that installs its framework).
_LAZY = {
    "MemoryRetriever": ("retriever", None),
    "create_memory_tools": ("tools", "agents"),
    "PersistentMemory": ("classic_memory", "classic"),
    "MemoryMiddleware": ("middleware", "agents"),
    "MemoryToolErrorMiddleware": ("middleware", "agents"),
    "PersistentStore": ("langgraph_store", "agents"),
    "PersistentMemoryBlock": ("llamaindex", "llamaindex"),
    "LlamaIndexMemoryRetriever": ("llamaindex", "llamaindex"),
}


# The service's HTTP client imports httpx: on first use as well, so importing the package
# costs what it did before the client existed.
_CLIENTS = ("AsyncMemoryClient", "MemoryClient")
if TYPE_CHECKING:
    from .client import AsyncMemoryClient, MemoryClient


def __getattr__(name: str) -> object:
    if name in _CLIENTS:
        from . import client

        globals()[name] = getattr(client, name)
        return globals()[name]
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    module, extra = _LAZY[name]
    try:
        value = getattr(import_module(f".integrations.{module}", __name__), name)
    except ImportError as exc:
        hint = f"pip install 'langchain-persistent-memory[{extra}]'" if extra else str(exc)
        raise ImportError(f"{name} needs an optional dependency ({exc.name}): {hint}") from exc
    globals()[name] = value
    return value

__all__ = [
    "ANY_USER",
    "AddOp",
    "AsyncMemoryClient",
    "ConsolidationResult",
    "DeleteOp",
    "EmbeddingMismatchError",
    "EmbeddingModelError",
    "EntityRow",
    "EventType",
    "ExtractionError",
    "ForgetGuard",
    "ForgetInProgressError",
    "ForgetIncompleteError",
    "IndexInfo",
    "InvalidInputError",
    "LlamaIndexMemoryRetriever",
    "LocalEmbeddings",
    "Memory",
    "MemoryBackend",
    "MemoryChange",
    "MemoryClient",
    "MemoryEvent",
    "MemoryManager",
    "MemoryMiddleware",
    "MemoryNotFoundError",
    "MemoryRetriever",
    "MemoryStore",
    "MemoryToolErrorMiddleware",
    "Operation",
    "PersistentMemory",
    "PersistentMemoryBlock",
    "PersistentMemoryError",
    "PersistentStore",
    "PipelinePrompts",
    "ProcessResult",
    "Provenance",
    "SchemaVersionError",
    "ScopeConflictError",
    "ScoredMemory",
    "ServiceError",
    "StoreClosedError",
    "SupersedeOp",
    "TurnProcessor",
    "UpdateOp",
    "__version__",
    "create_memory_tools",
    "default_database_url",
]
