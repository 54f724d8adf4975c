"""The package root's public names are pinned: adding or dropping one is a deliberate act."""

from __future__ import annotations

import langchain_persistent_memory as lpm

EXPECTED = {
    "AddOp", "AsyncMemoryClient", "ConsolidationResult", "DeleteOp", "EmbeddingMismatchError",
    "EventType", "ExtractionError", "InvalidInputError", "LlamaIndexMemoryRetriever",
    "LocalEmbeddings", "Memory", "MemoryBackend", "MemoryChange", "MemoryClient", "MemoryEvent",
    "MemoryManager", "MemoryMiddleware", "MemoryNotFoundError", "MemoryRetriever",
    "MemoryStore", "MemoryToolErrorMiddleware", "Operation", "PersistentMemory",
    "PersistentMemoryBlock", "PersistentMemoryError", "PersistentStore", "PipelinePrompts",
    "ProcessResult", "SchemaVersionError", "ScopeError", "ScoredMemory", "ServiceError",
    "SupersedeOp", "TurnProcessor", "UpdateOp", "__version__", "create_memory_tools",
    "default_database_url",
}


def test_all_is_pinned() -> None:
    assert set(lpm.__all__) == EXPECTED
    assert len(lpm.__all__) == len(set(lpm.__all__))


def test_every_public_name_resolves_and_errors_share_one_root() -> None:
    for name in lpm.__all__:
        assert getattr(lpm, name) is not None, name
    for name in ("EmbeddingMismatchError", "ExtractionError", "InvalidInputError",
                 "MemoryNotFoundError", "SchemaVersionError", "ScopeError", "ServiceError"):
        assert issubclass(getattr(lpm, name), lpm.PersistentMemoryError), name
    assert issubclass(lpm.MemoryNotFoundError, KeyError)
    assert issubclass(lpm.InvalidInputError, ValueError)
