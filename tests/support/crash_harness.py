"""Parent side of the crash tests: start a writer process, SIGKILL it, judge the wreckage.

Workers are forked from a ``forkserver`` that has already imported the package, so a trial
costs a fork rather than a fresh interpreter; the kill is a real SIGKILL of a real process
with its own SQLite/PostgreSQL connections and FAISS index.
"""

from __future__ import annotations

import multiprocessing
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path

from tests.support.consistency import history_mismatches, index_mismatches, rows_by_id
from tests.support.crash_worker import open_store, settle

__all__ = ["KillReport", "kill_trials", "worker_context"]


def worker_context() -> BaseContext:
    """A forkserver context whose server has the package (but no OpenMP state) loaded."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.support.crash_worker"])
    return ctx


@dataclass
class KillReport:
    trials: int = 0
    committed: int = 0  # the in-flight op turned out committed
    absent: int = 0  # the in-flight op left no trace
    idle: int = 0  # killed between operations
    ops_journalled: int = 0
    rows: int = 0
    leftover_tmp_files: int = 0
    fates: list[str] = field(default_factory=list)


def _wait_for_progress(journal: Path, start_size: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists() and journal.stat().st_size > start_size:
            return
        time.sleep(0.005)


def verify(url: str, index_path: Path, journal: Path) -> tuple[str, int]:
    """Reopen after a kill: all committed ops present, none half there, partitions == SQL."""
    store = open_store(url, index_path)
    try:
        rows = rows_by_id(store)
        fate = settle(journal, rows)
        assert index_mismatches(store) == []
        assert history_mismatches(store) == []
        return fate, len(rows)
    finally:
        store.close()


def kill_trials(ctx: BaseContext, target: Callable[..., None], url: str, workdir: Path,
                trials: int, *, seed: int, max_run_s: float = 0.6) -> KillReport:
    """Run ``trials`` start/SIGKILL/verify cycles of ``target`` on one database."""
    rng = random.Random(seed)
    index_path = workdir / "index.lpm"
    journal = workdir / "journal.jsonl"
    report = KillReport()
    for trial in range(trials):
        start_size = journal.stat().st_size if journal.exists() else 0
        proc = ctx.Process(target=target, daemon=True,
                           args=(url, str(index_path), str(journal), seed * 1000 + trial))
        proc.start()
        if rng.random() < 0.8:  # mostly mid-work; sometimes while still opening
            _wait_for_progress(journal, start_size, timeout=20.0)
        time.sleep(rng.uniform(0.0, max_run_s))
        proc.kill()
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL, f"worker ended by itself: {proc.exitcode}"
        fate, rows = verify(url, index_path, journal)
        report.trials += 1
        report.fates.append(fate)
        setattr(report, fate, getattr(report, fate) + 1)
        report.rows = rows
    report.ops_journalled = sum(1 for line in journal.read_text().splitlines()
                                if '"t": "done"' in line)
    report.leftover_tmp_files = len(list(workdir.glob(index_path.name + ".*.tmp")))
    return report
