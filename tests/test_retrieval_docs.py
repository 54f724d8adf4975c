"""The retrieval examples in docs/retrieval.md run as written (real local model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "retrieval.md"


@pytest.mark.integration
def test_retrieval_docs_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    printed = capsys.readouterr().out
    assert printed.startswith("<memories>") and "Every Tuesday" in printed
    assert [h.memory.content for h in namespace["keyword_only"]] == [  # type: ignore[attr-defined]
        "Caroline: My passport number ends in 4471"]
