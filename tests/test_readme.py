"""The README's quickstart runs as written (real local model, real SQLite, fresh directory).

Why: the README is the first code a user copies; it must not drift from the API.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def section_code(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split(f"## {title}\n", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


@pytest.mark.integration
def test_readme_quickstart_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(section_code("Quickstart"), "README quickstart", "exec"),
             {"__name__": "readme"})
    printed = out.getvalue()
    assert "Prefers short technical explanations" in printed  # the search hit
    assert "['ADD', 'SUPERSEDE']" in printed                   # Paris's history
    assert "Moved from Paris to Berlin" in printed             # alice's current memories
    assert (tmp_path / "memories.db").exists()
