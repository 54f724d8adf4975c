"""Every notebook in ``notebooks/`` runs top to bottom, offline, so none of them can rot.

The notebooks carry their own assertions (what a reader is told must be true); an exception in
any cell fails the test with that cell's traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))

pytestmark = pytest.mark.integration


def test_the_four_notebooks_exist() -> None:
    assert [p.name for p in PATHS] == ["01_quickstart.ipynb", "02_memory_in_a_chain.ipynb",
                                       "03_memory_in_an_agent.ipynb", "04_locomo_results.ipynb"]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_offline(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    for name in ("OPENAI_API_KEY", "LPM_NOTEBOOK_REAL_MODEL", "LOCOMO_RESULTS"):
        monkeypatch.delenv(name, raising=False)
    # The LoCoMo notebook takes its synthetic path, as on a machine without the data (the
    # licensed data set lives outside the repository): fast, and its figures are known.
    monkeypatch.setenv("LOCOMO_DATA", str(path.parent / "no-such-locomo.json"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(NOTEBOOKS.parent), os.environ.get("PYTHONPATH")])))
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(book, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    errors = [o for cell in book.cells for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
