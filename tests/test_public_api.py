"""The package root's public names are pinned: adding or dropping one is a deliberate act."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import langchain_persistent_memory as lpm
from langchain_persistent_memory import errors

PACKAGE = Path(lpm.__file__).parent

EXPECTED = {
    "ANY_USER", "AddOp", "AsyncMemoryClient", "ConsolidationResult", "DeleteOp",
    "EmbeddingMismatchError", "EmbeddingModelError", "EntityRow", "EventType",
    "ExtractionError", "ForgetGuard", "ForgetIncompleteError", "ForgetInProgressError",
    "IndexInfo",
    "InvalidInputError", "LlamaIndexMemoryRetriever", "LocalEmbeddings", "Memory",
    "MemoryBackend", "MemoryChange", "MemoryClient", "MemoryEvent", "MemoryManager",
    "MemoryMiddleware", "MemoryNotFoundError", "MemoryRetriever", "MemoryStore",
    "MemoryToolErrorMiddleware", "Operation", "PersistentMemory", "PersistentMemoryBlock",
    "PersistentMemoryError", "PersistentStore", "PipelinePrompts", "ProcessResult", "Provenance",
    "SchemaVersionError", "ScopeConflictError", "ScoredMemory", "ServiceError",
    "StoreClosedError", "SupersedeOp",
    "TurnProcessor", "UpdateOp", "__version__", "create_memory_tools", "default_database_url",
}


def test_all_is_pinned() -> None:
    assert set(lpm.__all__) == EXPECTED
    assert len(lpm.__all__) == len(set(lpm.__all__))


def test_every_public_name_imports_from_a_fresh_interpreter() -> None:
    """`from langchain_persistent_memory import X` for every X in __all__ (the lazy
    integrations included), in a process that has imported nothing of ours yet."""
    names = ", ".join(sorted(n for n in lpm.__all__ if n != "__version__"))
    code = (f"from langchain_persistent_memory import {names}\n"
            "import langchain_persistent_memory as m\n"
            "print(sorted(k for k in m.__all__ if k in vars(m)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert eval(done.stdout) == sorted(lpm.__all__)  # each one bound in the module


def _raised_names() -> set[str]:
    """Every exception name a `raise X(...)` / `raise X` in the package's code names."""
    raised: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name):
                    raised.add(target.id)
                elif isinstance(target, ast.Attribute):
                    raised.add(target.attr)
    return raised


def test_every_error_is_exported_shares_one_root_and_is_raised_somewhere() -> None:
    """An error class nothing raises is a promise the code does not keep: callers write
    `except` clauses for it that never run."""
    classes = {name: cls for name, cls in inspect.getmembers(errors, inspect.isclass)
               if cls.__module__ == errors.__name__}
    assert set(classes) == set(errors.__all__)
    assert set(errors.__all__) <= set(lpm.__all__)
    raised = _raised_names()
    for name, cls in classes.items():
        assert issubclass(cls, lpm.PersistentMemoryError), name
        if cls is not lpm.PersistentMemoryError:
            assert name in raised, f"{name} is defined but nothing raises it"
        assert name in (errors.__doc__ or ""), f"{name} missing from the tree in errors.py"
    assert issubclass(lpm.MemoryNotFoundError, KeyError)
    assert issubclass(lpm.InvalidInputError, ValueError)
    assert issubclass(lpm.EmbeddingModelError, ValueError)
