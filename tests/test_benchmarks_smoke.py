"""The benchmark scripts still run end to end, on tiny sizes (no timings asserted).

They are run by hand for their figures; this keeps them from rotting as the store changes.
What is asserted is what the scripts report that must hold whatever the speed: every size
measured, the store's exact dense search, no lost writes, a write seen by another process.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
LOCOMO = BENCH.parents[1] / "shared/benchmarks/data/locomo_dev.json"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(not LOCOMO.exists(), reason="LoCoMo data (CC BY-NC) not on this machine")
def test_scale_bench_measures_each_size(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    done = _run("scale_bench.py", "--sizes", "100,200", "--per-user", "50", "--queries", "5",
                "--warmup", "1", "--cold-users", "2", "--single-adds", "3", "--in-process",
                "--json", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    sizes = json.loads(out.read_text())["sizes"]
    assert [(s["n"], s["users"]) for s in sizes] == [(100, 2), (200, 4)]
    for size in sizes:
        measure = size["measure"]
        for kind in ("search_ms", "keyword_ms", "dense_ms", "search_by_vector_ms"):
            assert measure[kind]["n"] == 5 and measure[kind]["p50"] > 0
        assert measure["single_add_ms"]["n"] == measure["delete_ms"]["n"] == 3
        assert measure["peak_rss_mb"] > 0 and size["ingest_per_s_whole_run"] > 0
    assert sizes[1]["ingest"]["added"] == 100  # the second size only adds what it lacks
    assert "| 200 (4) |" in done.stdout


def test_pg_compare_runs_both_systems(tmp_path: Path) -> None:
    for module in ("pgserver", "langgraph.store.postgres"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} not installed (dev extra)")
    out = tmp_path / "cmp.json"
    done = _run("pg_compare.py", "--users", "5", "--per-user", "10", "--queries", "5",
                "--single-adds", "5", "--deletes", "3", "--seconds", "0.3",
                "--writer-rows", "50", "--in-process", "--json", str(out))
    if done.returncode == 2 and "peer server unavailable" in done.stderr:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    for name in ("ours", "peer"):
        r = results[name]
        assert r["n"] == 50 and r["lost_writes"] == 0
        assert r["visibility"]["seen_on_next_search"] is True
        assert r["writers_1"]["writes"] > 0 and r["writers_4"]["writes"] > 0
    assert results["ours"]["dense_recall_no_mmr"] == 1.0  # exact for small users
    assert "| lost writes | 0 | 0 |" in done.stdout


def test_poisoning_bench_meets_its_goals() -> None:
    """Before: the clean-turn count read a metadata key the pipeline no longer writes, so
    it reported 0 of 108 kept while the README showed 108."""
    spec = importlib.util.spec_from_file_location("poisoning", BENCH / "poisoning.py")
    assert spec is not None and spec.loader is not None
    poisoning = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(poisoning)
    figures = poisoning.run()
    assert figures["attacks"] >= 200 and figures["clean_turns"] >= 100
    assert figures["planted"] == 0 and figures["break_outs"] == 0
    assert figures["clean_kept"] >= 0.99 * figures["clean_turns"]
    assert figures["by_channel"]["fact_about_someone_else"][0] == 10


@pytest.mark.skipif(not LOCOMO.exists(), reason="LoCoMo data (CC BY-NC) not on this machine")
def test_ingest_ab_measures_both_versions() -> None:
    done = _run("ingest_ab.py", "--before", str(BENCH.parent), "--users", "2", "--batch", "20",
                "--rounds", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| before", "| after"))]
    assert len(rows) == 2 and all(int(row.split("|")[3].replace(",", "")) > 0 for row in rows)


def test_pg_delete_ab_measures_both_versions(postgres_server_url: str) -> None:
    done = _run("pg_delete_ab.py", "--before", str(BENCH.parent), "--server",
                postgres_server_url, "--users", "2", "--per-user", "3", "--deletes", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("4 deletes each, interleaved")
    assert "before: delete p50" in done.stdout and "after: delete p50" in done.stdout
