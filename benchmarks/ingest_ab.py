"""Batched ingest rate of two versions of the package, side by side in one run (SQLite).

Each round runs one fresh process per version, alternating, so both see the same machine
load. A process opens a new SQLite store and adds ``--users`` users' LoCoMo turns (text,
session, date and a ``{"dia_id": ...}`` metadata dict each) with ``add_many``, ``--batch``
items a call. Vectors are ``scale_bench``'s hash-seeded ones, computed before the clock
starts, so the store is measured and not the embedding. Reported per version: the median
over rounds of memories per second of wall time and of the process's CPU time (the CPU
figure is steadier on a shared machine). Usage::

    .venv/bin/python benchmarks/ingest_ab.py --before /tmp/old-checkout --rounds 3

``--before`` / ``--after`` are folders holding a ``langchain_persistent_memory`` package
(e.g. ``git archive <commit> langchain_persistent_memory | tar -x -C /tmp/old``); the
default ``--after`` is this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def worker(args: argparse.Namespace) -> dict[str, Any]:
    from bench_util import code_version  # puts $LPM_BENCH_CODE first on sys.path
    from locomo_retrieval import DEFAULT_DATA
    from scale_bench import Corpus, HashSeededEmbeddings, user_name

    from langchain_persistent_memory import MemoryStore

    corpus = Corpus(DEFAULT_DATA, args.batch)
    emb = HashSeededEmbeddings(max_cached=args.users * args.batch + 1)
    batches = [corpus.user_items(u) for u in range(args.users)]
    for items in batches:  # the vectors are not what is measured
        emb.embed_documents([item["content"] for item in items])
    with tempfile.TemporaryDirectory() as folder:
        store = MemoryStore(f"sqlite:///{folder}/ingest.db", embeddings=emb)
        wall, cpu = 0.0, time.process_time()
        for u, items in enumerate(batches):
            t0 = time.perf_counter()
            store.add_many(items, user_id=user_name(u))
            wall += time.perf_counter() - t0
        cpu = time.process_time() - cpu
        store.close()
    n = args.users * args.batch
    return {"code": code_version(), "memories": n, "per_s_wall": round(n / wall),
            "per_s_cpu": round(n / cpu)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, help="required")
    p.add_argument("--after", type=Path, default=ROOT)
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--batch", type=int, default=100, help="items per add_many call (per user)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.before is None:
        p.error("--before is required")
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for name in runs:
            env = {**os.environ, "LPM_BENCH_CODE": str(getattr(args, name).resolve())}
            out = subprocess.run([sys.executable, __file__, "--worker", "--users",
                                  str(args.users), "--batch", str(args.batch)], env=env,
                                 check=True, stdout=subprocess.PIPE, text=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"[ingest_ab] {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
    print(f"{args.users} users x {args.batch} per add_many, {args.rounds} rounds, "
          f"load {os.getloadavg()[0]:.1f}")
    print("| version | memories/s (wall), median | memories/s (CPU), median | rounds (CPU) |")
    print("|---|---|---|---|")
    for name, results in runs.items():
        cpu = [r["per_s_cpu"] for r in results]
        print(f"| {name} ({results[0]['code']['commit']}) | "
              f"{statistics.median(r['per_s_wall'] for r in results):,.0f} | "
              f"{statistics.median(cpu):,.0f} | {', '.join(f'{c:,}' for c in cpu)} |")


if __name__ == "__main__":
    main()
