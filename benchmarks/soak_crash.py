"""Crash soak: SIGKILL a writer process hundreds of times and judge every reopen.

The same harness as ``tests/test_reliability_crash.py`` with many more trials: a worker
journals each add / batch / update / supersede / delete / index save around the call, is
killed at a random moment, and the reopened store must hold every committed operation, the
in-flight one completely or not at all, history that matches the rows, and a vector index
exactly equal to the vectors in SQL. Any violation stops the soak with the details. Usage::

    .venv/bin/python benchmarks/soak_crash.py --trials 300
    .venv/bin/python benchmarks/soak_crash.py --trials 100 --postgres
    .venv/bin/python benchmarks/soak_crash.py --trials 100 --saves   # kill during index saves
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.support.crash_harness import kill_trials, worker_context  # noqa: E402
from tests.support.crash_worker import run_worker, saver_worker  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--postgres", action="store_true", help="a fresh database on --server")
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--saves", action="store_true",
                        help="a worker that saves the index in a loop (kills land mid-save)")
    parser.add_argument("--max-run", type=float, default=0.6,
                        help="longest a worker runs before the kill, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lpm-soak-"))
    url = f"sqlite:///{work / 'memories.db'}"
    admin = None
    if args.postgres:
        name = f"lpm_soak_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"{args.server.rsplit('/', 1)[0]}/{name}"
    started = time.time()
    try:
        report = kill_trials(worker_context(), saver_worker if args.saves else run_worker, url,
                             work, args.trials, seed=args.seed, max_run_s=args.max_run)
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" '
                                  "WITH (FORCE)"))
            admin.dispose()
    result = {k: v for k, v in asdict(report).items() if k != "fates"}
    result.update(backend="postgresql" if args.postgres else "sqlite", saves=args.saves,
                  seconds=round(time.time() - started, 1))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
