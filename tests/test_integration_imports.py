"""The package imports without any optional framework; integrations load on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import langchain_persistent_memory as lpm

OPTIONAL = ["langchain", "langchain_classic", "langgraph", "llama_index", "langmem"]
LAZY = ["LlamaIndexMemoryRetriever", "MemoryMiddleware", "MemoryRetriever",
        "MemoryToolErrorMiddleware", "PersistentMemory", "PersistentMemoryBlock",
        "PersistentStore", "create_memory_tools"]


def test_lazy_names_are_public_and_resolve() -> None:
    assert set(LAZY) <= set(lpm.__all__)
    from langchain_persistent_memory.integrations import langgraph_store, retriever

    assert lpm.MemoryRetriever is retriever.MemoryRetriever
    assert lpm.PersistentStore is langgraph_store.PersistentStore
    assert all(callable(getattr(lpm, name)) for name in LAZY)


def test_import_works_without_optional_frameworks() -> None:
    code = "\n".join([
        "import sys",
        f"for name in {OPTIONAL!r}: sys.modules[name] = None  # as if not installed",
        "import langchain_persistent_memory as lpm",
        "assert lpm.MemoryRetriever.__name__ == 'MemoryRetriever'  # needs langchain-core only",
        "try:",
        "    lpm.PersistentMemory",
        "except ImportError as exc:",
        "    print(exc)",
        "try:",
        "    lpm.no_such_name",
        "except AttributeError as exc:",
        "    print('attr', exc)",
    ])
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "PersistentMemory needs an optional dependency" in lines[0]
    assert "[classic]" in lines[0]
    assert lines[1].startswith("attr")
