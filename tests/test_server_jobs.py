"""The turn-job table on real SQLite and PostgreSQL: claims keep one user's turns in order
and one at a time, other users' turns run meanwhile, dropped jobs never run, and jobs left
running by a dead process go back to the queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_persistent_memory.server.job_table import JobTable


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobTable]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}" if request.param == "sqlite" else \
        str(request.getfixturevalue("postgres_url"))
    jobs = JobTable(url)
    yield jobs
    jobs.close()


def test_one_user_at_a_time_in_order(table: JobTable) -> None:
    a1 = table.submit("ann", {"n": 1})
    a2 = table.submit("ann", {"n": 2})
    b1 = table.submit("ben", {"n": 1})
    first = table.claim()
    assert first is not None and (first.job_id, first.request) == (a1, {"n": 1})
    second = table.claim()  # ann is busy: ben's turn runs meanwhile
    assert second is not None and second.job_id == b1
    assert table.claim() is None  # ann's second turn waits for her first
    assert table.finish(a1, result={"ok": True})
    third = table.claim()
    assert third is not None and third.job_id == a2
    assert table.get(a1) == {"job_id": a1, "user_id": "ann", "status": "done",
                             "result": {"ok": True}}
    assert table.get(a2)["status"] == "running"  # type: ignore[index]


def test_dropped_jobs_never_run_and_running_ones_report_it(table: JobTable) -> None:
    running = table.submit("cat", {"n": 1})
    queued = table.submit("cat", {"n": 2})
    claimed = table.claim()
    assert claimed is not None and claimed.job_id == running
    assert table.drop_user("cat") == 2
    assert table.get(queued) is None and table.claim() is None
    assert table.finish(running, result={}) is False  # the runner learns it was forgotten


def test_failed_jobs_keep_the_error(table: JobTable) -> None:
    job = table.submit("dan", {})
    table.claim()
    assert table.finish(job, error="ExtractionError: bad output")
    assert table.get(job) == {"job_id": job, "user_id": "dan", "status": "failed",
                              "error": "ExtractionError: bad output"}


def test_stale_running_jobs_are_requeued(table: JobTable) -> None:
    job = table.submit("eve", {})
    assert table.claim() is not None
    assert table.requeue_stale(3600) == 0  # still fresh
    assert table.requeue_stale(-1) == 1  # its process is presumed dead
    again = table.claim()
    assert again is not None and again.job_id == job
    assert table.pending() == 1


def test_two_tables_on_one_database_share_the_queue(table: JobTable) -> None:
    """What two worker processes see: a claim by one is never made again by the other."""
    other = JobTable(str(table.engine.url.render_as_string(hide_password=False)))
    try:
        ids = [table.submit(f"user{i}", {}) for i in range(6)]
        claimed = []
        for _ in range(6):
            for jobs in (table, other):
                job = jobs.claim()
                if job is not None:
                    claimed.append(job.job_id)
        assert sorted(claimed) == sorted(ids)
    finally:
        other.close()


def test_finished_jobs_are_purged_after_their_retention(table: JobTable) -> None:
    done = table.submit("fay", {})
    table.claim()
    table.finish(done, result={"operations": [{"content": "Fay's secret"}]})
    queued = table.submit("fay", {})
    assert table.purge_finished(3600) == 0
    assert table.purge_finished(-1) == 1  # only the finished one
    assert table.get(done) is None and table.get(queued) is not None
