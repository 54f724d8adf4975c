"""The store's documentation (docs/store.md) runs as written.

Why: a reference whose examples do not run teaches the wrong API. The python blocks are run
in order in one namespace, with the real local model (loaded once and shared by the stores
the examples open).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from langchain_persistent_memory.store import memory_store
from langchain_persistent_memory.store.embedding import LocalEmbeddings

DOC = Path(__file__).resolve().parents[1] / "docs" / "store.md"
NOT_RUN = "not run by tests/test_store_docs.py"


def python_blocks(text: str) -> list[str]:
    return [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if NOT_RUN not in b]


@pytest.mark.integration
def test_store_doc_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    shared = LocalEmbeddings()
    monkeypatch.setattr(memory_store, "LocalEmbeddings", lambda: shared)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "store_doc"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for number, block in enumerate(blocks, start=1):
            try:
                exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
            except Exception as exc:  # name the block that broke
                raise AssertionError(f"block {number} failed:\n{block}") from exc
    printed = out.getvalue()
    assert "['ADD', 'UPDATE', 'SUPERSEDE']" in printed
    assert "Lives in Braga" in printed
    assert (tmp_path / "backup.jsonl").exists()
