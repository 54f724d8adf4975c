"""Crash safety: SIGKILL a writer at random moments, reopen, and check nothing was lost,
nothing is half there, and the FAISS replica equals SQL exactly.

Bounded here (a dozen kills per backend); ``benchmarks/soak_crash.py`` runs hundreds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.crash_harness import kill_trials, verify, worker_context
from tests.support.crash_worker import open_store, run_worker


@pytest.fixture(scope="module")
def ctx():  # type: ignore[no-untyped-def]
    return worker_context()


def test_sqlite_writer_killed_at_random_moments(ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'memories.db'}"
    report = kill_trials(ctx, run_worker, url, tmp_path, trials=14, seed=11)
    assert report.trials == 14
    # The harness did real work: many operations committed across the kills.
    assert report.ops_journalled > 40, report
    assert report.rows > 10, report


@pytest.mark.postgres
def test_postgres_writer_killed_at_random_moments(ctx, postgres_url: str,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    report = kill_trials(ctx, run_worker, postgres_url, tmp_path, trials=6, seed=23)
    assert report.trials == 6
    assert report.ops_journalled > 5, report


def test_verify_detects_a_lost_write(tmp_path: Path) -> None:
    """The judge itself can fail: a journalled add missing from the database is caught."""
    url = f"sqlite:///{tmp_path / 'memories.db'}"
    journal = tmp_path / "journal.jsonl"
    journal.write_text(
        '{"t": "begin", "op": {"kind": "add", "user": "alice", "id": "m1", "content": "x y"}}\n'
        '{"t": "done", "result": {}}\n')
    open_store(url, tmp_path / "index.lpm").close()
    with pytest.raises(AssertionError, match="missing"):
        verify(url, tmp_path / "index.lpm", journal)
