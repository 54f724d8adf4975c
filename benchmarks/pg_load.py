"""PostgreSQL load: several writer and reader processes on one database at once.

The deployment it models: many app processes, one PostgreSQL, each process with its own
FAISS replica that catches up from the change log before every search. Writers add (80%),
update (10%) and delete (10%) memories of random users; readers search random users. Every
process reports each call's latency; the script prints throughput and p50/p95/p99 per kind,
then checks the outcome in a fresh process: no lost writes and the replica equals SQL.

Embeddings are deterministic hashed bag-of-words vectors (384 dims, like MiniLM), so the
store and the database are measured, not a model. Usage::

    .venv/bin/python benchmarks/pg_load.py --writers 4 --readers 4 --seconds 20
    .venv/bin/python benchmarks/pg_load.py --url postgresql+psycopg://u@host/db --keep
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from langchain_persistent_memory import MemoryStore  # noqa: E402
from tests.support.consistency import index_mismatches, rows_by_id  # noqa: E402
from tests.support.embeddings import HashEmbeddings  # noqa: E402

DIM = 384
_WORD_TEXT = ("coffee tea hiking chess python rust paris tokyo dog cat piano guitar salad "
              "running swimming novels jazz opera cinema garden ocean mountain bread sister "
              "brother birthday meeting project deadline allergy doctor school")
WORDS = _WORD_TEXT.split()


def _text(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=8)) + f" {rng.getrandbits(40):x}"


def _store(url: str, index: Path) -> MemoryStore:
    return MemoryStore(url, embeddings=HashEmbeddings(dim=DIM), index_path=index)


def writer(url: str, index: str, seed: int, users: int, seconds: float, barrier: Any,
           out: str) -> None:
    rng = random.Random(seed)
    store = _store(url, Path(index))
    barrier.wait()  # every process is up and has opened its replica: start together
    until = time.time() + seconds
    mine: list[tuple[str, str]] = []  # (id, user) this writer added and did not delete
    lat: dict[str, list[float]] = {"add": [], "update": [], "delete": []}
    while time.time() < until:
        roll = rng.random()
        start = time.perf_counter()
        if roll < 0.8 or len(mine) < 10:
            user = f"user{rng.randrange(users)}"
            mine.append((store.add(_text(rng), user_id=user).id, user))
            kind = "add"
        elif roll < 0.9:
            mid, user = rng.choice(mine)
            store.update(mid, content=_text(rng), user_id=user)
            kind = "update"
        else:
            mid, user = mine.pop(rng.randrange(len(mine)))
            store.delete(mid, user_id=user)
            kind = "delete"
        lat[kind].append(time.perf_counter() - start)
    store.close()
    Path(out).write_text(json.dumps({"lat": lat, "kept": [m for m, _ in mine]}))


def reader(url: str, index: str, seed: int, users: int, seconds: float, barrier: Any,
           out: str) -> None:
    rng = random.Random(seed)
    store = _store(url, Path(index))
    barrier.wait()
    until = time.time() + seconds
    lat: dict[str, list[float]] = {"search": []}
    hits = 0
    while time.time() < until:
        start = time.perf_counter()
        hits += len(store.search(" ".join(rng.choices(WORDS, k=3)),
                                 user_id=f"user{rng.randrange(users)}", k=5))
        lat["search"].append(time.perf_counter() - start)
    store.close()
    Path(out).write_text(json.dumps({"lat": lat, "hits": hits}))


def _fresh_database(server: str) -> str:
    name = f"lpm_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server.rsplit('/', 1)[0]}/{name}"


def _drop_database(server: str, url: str) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ms = np.asarray(values) * 1000
    return {"n": len(values), "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99))}


def run(args: argparse.Namespace) -> dict[str, Any]:
    url = args.url or _fresh_database(args.server)
    work = Path(tempfile.mkdtemp(prefix="lpm-pgload-"))
    try:
        with _store(url, work / "preload.lpm") as store:  # users start with some history
            rng = random.Random(0)
            for u in range(args.users):
                store.add_many([_text(rng) for _ in range(args.preload)], user_id=f"user{u}")
            preloaded = store.count()
        ctx = multiprocessing.get_context("forkserver")
        barrier = ctx.Barrier(args.writers + args.readers)
        procs = []
        for role, count in (("writer", args.writers), ("reader", args.readers)):
            for i in range(count):
                target = writer if role == "writer" else reader
                out = work / f"{role}{i}.json"
                procs.append((role, out, ctx.Process(target=target, args=(
                    url, str(work / f"{role}{i}.lpm"), 1000 * i + (role == "reader"),
                    args.users, args.seconds, barrier, str(out)))))
        for _, _, proc in procs:
            proc.start()
        for _, _, proc in procs:
            proc.join()
            if proc.exitcode != 0:
                raise SystemExit(f"a worker failed (exit {proc.exitcode})")
        results = [(role, json.loads(out.read_text())) for role, out, _ in procs]
        lat: dict[str, list[float]] = {}
        for _, result in results:
            for kind, values in result["lat"].items():
                lat.setdefault(kind, []).extend(values)
        kept = {m for role, r in results if role == "writer" for m in r["kept"]}
        with _store(url, work / "check.lpm") as store:
            rows = rows_by_id(store)
            lost = sorted(kept - set(rows))
            mismatches = index_mismatches(store)
            total = store.count()
        writes = sum(len(lat.get(k, [])) for k in ("add", "update", "delete"))
        report = {
            "writers": args.writers, "readers": args.readers, "seconds": args.seconds,
            "users": args.users, "preloaded": preloaded, "memories_after": total,
            "writes_per_s": writes / args.seconds,
            "searches_per_s": len(lat.get("search", [])) / args.seconds,
            "latency": {k: _percentiles(v) for k, v in sorted(lat.items())},
            "lost_writes": len(lost), "index_mismatches": len(mismatches),
            "cpus": os.cpu_count(), "load_avg_1m_after": os.getloadavg()[0],
        }
        if lost or mismatches:
            raise SystemExit(f"FAILED: {json.dumps(report)}\n{lost[:5]} {mismatches[:5]}")
        return report
    finally:
        if not args.url and not args.keep:
            _drop_database(args.server, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="server URL used to create (and drop) a fresh database")
    parser.add_argument("--url", help="use this database instead of a fresh one")
    parser.add_argument("--keep", action="store_true", help="do not drop the fresh database")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--preload", type=int, default=40, help="memories per user at start")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = run(args)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
