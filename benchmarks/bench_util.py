"""Small helpers shared by the scale benchmarks (``scale_bench.py``, ``pg_compare.py``).

They measure through the store's public API only, so the same scripts run on any version of
the store; what a version may or may not accept (a memory budget, an index path) is found
from ``MemoryStore``'s signature instead of assumed.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
# The checkout whose package is measured: this one, or $LPM_BENCH_CODE (e.g. a worktree of an
# older commit, to measure "before" with today's scripts). Child processes inherit it.
CODE = Path(os.environ.get("LPM_BENCH_CODE", ROOT)).resolve()
sys.path.insert(0, str(CODE))
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def code_version() -> dict[str, str]:
    """Which package the figures are of: its folder and, in a git checkout, its commit."""
    import langchain_persistent_memory

    try:
        commit = subprocess.run(["git", "-C", str(CODE), "rev-parse", "--short", "HEAD"],
                                check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"package": str(Path(langchain_persistent_memory.__file__).parent),
            "commit": commit}


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 / p95 in milliseconds (empty dict for no samples)."""
    if not seconds:
        return {}
    ms = np.asarray(seconds) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 3),
            "p95": round(float(np.percentile(ms, 95)), 3), "n": len(seconds)}


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark (VmHWM on Linux, else getrusage)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def parse_value(raw: str) -> Any:
    """``"2"`` -> 2, ``"0.5"`` -> 0.5, ``"true"`` -> True, anything else stays a string."""
    lowered = raw.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def store_kwargs(wanted: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Keep the keyword arguments today's ``MemoryStore`` accepts; name the ones it does not.

    The benchmarks pass options a newer store may have (``memory_budget``...) and must run
    unchanged on a store without them.
    """
    from langchain_persistent_memory import MemoryStore

    params = inspect.signature(MemoryStore.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kept = {k: v for k, v in wanted.items() if takes_any or k in params}
    return kept, sorted(set(wanted) - set(kept))


def fresh_database(server: str, prefix: str) -> str:
    """Create an empty database on ``server`` and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return f"{server.rsplit('/', 1)[0]}/{name}"


def drop_database(server: str, url: str) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    finally:
        admin.dispose()


def run_worker(cmd: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``python <cmd>`` in a fresh process (its own peak RSS); its last stdout line is JSON."""
    env_cmd = [sys.executable, *cmd]
    out = subprocess.run(env_cmd, check=True, stdout=subprocess.PIPE, text=True,
                         timeout=timeout)
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"worker printed nothing: {cmd}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
