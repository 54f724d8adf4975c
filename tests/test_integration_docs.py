"""The integration examples in docs/integrations.md run as written.

The shared setup block needs an API key, so it is replaced by scripted models and hashed
embeddings; every other block runs unchanged, in order, in one namespace.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import langchain_classic.chains  # noqa: F401 - imported early: it resets warning filters
import pytest

from langchain_persistent_memory import MemoryManager, MemoryStore
from tests.support.embeddings import HashEmbeddings
from tests.support.fake_chat import ScriptedChatModel, tool_call_message

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_setup_block_defines_what_the_examples_use() -> None:
    setup = _blocks()[0]
    assert all(f"{name} = " in setup for name in ("store", "llm", "manager"))


@pytest.mark.filterwarnings("ignore::langchain_core._api.LangChainDeprecationWarning")
@pytest.mark.filterwarnings("ignore:Importing Send from langgraph.constants")
def test_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = MemoryStore(f"sqlite:///{tmp_path / 'memories.db'}", embeddings=HashEmbeddings())
    nothing = tool_call_message("MemoryOperations", {"operations": []})
    manager = MemoryManager(store, llm=ScriptedChatModel(default_response=nothing))
    module = types.ModuleType("docs_example")  # dataclasses look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    namespace.update(store=store, manager=manager, llm=ScriptedChatModel(default_response="ok"))
    blocks = _blocks()[1:]
    assert len(blocks) == 5
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    assert namespace["docs"][0].page_content == "Alice is vegetarian."
    assert namespace["lg_store"].get(("notes", "alice"), "tea") is not None
    assert "Alice is vegetarian." in namespace["history"][0].content  # LlamaIndex block
    assert namespace["nodes"]
    manager.close()
    store.close()
