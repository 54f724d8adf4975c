"""Memory service load: 32 concurrent HTTP clients against ``lpm serve`` (loopback only).

Two runs by default: SQLite with one worker, and PostgreSQL with four workers. Each client
loops for ``--seconds`` over a mix of ``POST /v1/search`` (60%), ``POST /v1/memories`` (30%)
and ``POST /v1/turns`` (10%, raw mode: the turn is queued and processed in the background) for
random users of a seeded tenant. The script prints p50/p95 per endpoint, throughput and
errors (goal: 0), waits for the queued turns, then measures the HTTP overhead: the same
``add`` and ``search`` calls made one at a time in process (a ``MemoryStore`` on the tenant's
own database) and through ``MemoryClient``, interleaved (goal: ≤ 2 ms more at p50).

Embeddings are hashed bag-of-words vectors (384 dims, like MiniLM) unless ``--embeddings
local``, so the service is measured, not a model. Usage::

    .venv/bin/python benchmarks/service_load.py                      # both backends, 30 s
    .venv/bin/python benchmarks/service_load.py --backends sqlite --seconds 10
    .venv/bin/python benchmarks/service_load.py --json results.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from langchain_persistent_memory import MemoryClient, MemoryStore  # noqa: E402
from langchain_persistent_memory.server import tenant_url  # noqa: E402
from tests.support.embeddings import HashEmbeddings  # noqa: E402
from tests.support.postgres import DEFAULT_URL  # noqa: E402
from tests.support.service import RunningService  # noqa: E402

KEY = "bench-key"
TENANT = "bench"
_WORD_TEXT = ("coffee tea hiking chess python rust paris tokyo dog cat piano guitar salad "
              "running swimming novels jazz opera cinema garden ocean mountain bread sister "
              "brother birthday meeting project deadline allergy doctor school")
WORDS = _WORD_TEXT.split()
MIX = (("search", 0.6), ("add", 0.3), ("turn", 0.1))


def hash_embeddings() -> HashEmbeddings:
    """The server's embeddings (``--embeddings benchmarks.service_load:hash_embeddings``)."""
    return HashEmbeddings(dim=384, model="hash-bow-384")


def _text(rng: random.Random, words: int = 8) -> str:
    return " ".join(rng.choices(WORDS, k=words)) + f" {rng.getrandbits(32):x}"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextmanager
def _database(backend: str, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="lpm-svc-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'memories.db'}"
        return
    from tests.support.pg_schema import fresh_schema
    from tests.support.service import drop_tenant_schemas

    with fresh_schema(pg_url) as url:
        try:
            yield url
        finally:
            drop_tenant_schemas(pg_url, url.rsplit("search_path%3D", 1)[1])


def _seed(base_url: str, users: int, per_user: int, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=120) as http:
        for u in range(users):
            items = [{"content": _text(rng)} for _ in range(per_user)]
            http.post("/v1/memories/batch", json={"user_id": f"user{u}", "items": items}
                      ).raise_for_status()


async def _client_loop(http: httpx.AsyncClient, rng: random.Random, users: int,
                       until: float, latencies: dict[str, list[float]],
                       errors: dict[str, int], jobs: list[str]) -> None:
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    for _ in range(1_000_000):  # bounded; the deadline ends it long before
        if time.monotonic() >= until:
            return
        kind = rng.choices(kinds, weights)[0]
        user = f"user{rng.randrange(users)}"
        if kind == "search":
            request = http.post("/v1/search", json={"user_id": user, "query": _text(rng, 3)})
        elif kind == "add":
            request = http.post("/v1/memories", json={"user_id": user, "content": _text(rng)})
        else:
            request = http.post("/v1/turns", json={"user_id": user, "messages": [
                {"role": "user", "content": _text(rng)}]})
        started = time.perf_counter()
        try:
            response = await request
        except httpx.HTTPError:
            errors[kind] += 1
            continue
        latencies[kind].append((time.perf_counter() - started) * 1000)
        if response.status_code >= 400:
            errors[kind] += 1
        elif kind == "turn":
            jobs.append(response.json()["job_id"])


async def _load(base_url: str, clients: int, users: int, seconds: float,
                seed: int) -> dict[str, Any]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    jobs: list[str] = []
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"},
                                 timeout=60, limits=limits) as http:
        until = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(*(_client_loop(http, random.Random(seed + i), users, until,
                                            latencies, errors, jobs)
                               for i in range(clients)))
        elapsed = time.monotonic() - started
        drained = time.monotonic()
        statuses: dict[str, int] = defaultdict(int)
        for job_id in jobs:  # wait for the background turns (bounded)
            for _ in range(600):
                status = (await http.get(f"/v1/jobs/{job_id}")).json()["status"]
                if status in ("done", "failed"):
                    break
                await asyncio.sleep(0.1)
            statuses[status] += 1
        drain_s = time.monotonic() - drained
    per_kind = {k: {"calls": len(v), "p50_ms": round(_pct(v, 0.5), 2),
                    "p95_ms": round(_pct(v, 0.95), 2), "errors": errors[k]}
                for k, v in sorted(latencies.items())}
    total = sum(len(v) for v in latencies.values())
    return {"seconds": round(elapsed, 1), "requests": total,
            "throughput_rps": round(total / elapsed, 1), "errors": sum(errors.values()),
            "endpoints": per_kind, "turn_jobs": dict(statuses),
            "turn_queue_drain_s": round(drain_s, 1)}


def _overhead(base_url: str, db_url: str, rounds: int, seed: int) -> dict[str, Any]:
    """The same calls in process and over HTTP, interleaved, one at a time."""
    rng = random.Random(seed)
    store = MemoryStore(tenant_url(db_url, TENANT), embeddings=hash_embeddings(),
                        index_path=Path(tempfile.mkdtemp(prefix="lpm-svc-idx-")) / "i.lpm")
    client = MemoryClient(base_url, api_key=KEY)
    times: dict[str, list[float]] = defaultdict(list)
    users = [f"user{u}" for u in range(50)]
    try:
        for u in users:  # both sides load every user's partition before timing
            store.search("warm up", user_id=u)
            client.search("warm up", user_id=u)
        for name, local, remote in (
                ("search", lambda q, u: store.search(q, user_id=u),
                 lambda q, u: client.search(q, user_id=u)),
                ("add", lambda q, u: store.add(q, user_id=u),
                 lambda q, u: client.add(q, user_id=u))):
            for i in range(rounds + 20):  # the first 20 warm both paths up
                args = (_text(rng, 3 if name == "search" else 8), rng.choice(users))
                sides = [("local", local), ("http", remote)]
                rng.shuffle(sides)  # neither side always runs first
                for side, call in sides:
                    started = time.perf_counter()
                    call(*args)
                    if i >= 20:
                        times[f"{name}_{side}"].append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
        store.close()
    out: dict[str, Any] = {}
    for name in ("search", "add"):
        local, http = times[f"{name}_local"], times[f"{name}_http"]
        out[name] = {"in_process_p50_ms": round(statistics.median(local), 3),
                     "http_p50_ms": round(statistics.median(http), 3),
                     "overhead_p50_ms": round(statistics.median(http) -
                                              statistics.median(local), 3),
                     "paired_overhead_p50_ms": round(statistics.median(
                         h - lo for h, lo in zip(http, local)), 3)}
    return out


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    workers = 1 if backend == "sqlite" else args.pg_workers
    embeddings = "benchmarks.service_load:hash_embeddings" if args.embeddings == "hash" \
        else args.embeddings
    with _database(backend, args.pg_url) as db_url:
        service = RunningService(db_url, keys=f"{TENANT}:{KEY}", workers=workers,
                                 extra=("--rate-limit", "0"), embeddings=embeddings)
        try:
            _seed(service.base_url, args.users, args.per_user, args.seed)
            load = asyncio.run(_load(service.base_url, args.clients, args.users,
                                     args.seconds, args.seed))
            overhead = _overhead(service.base_url, db_url, args.rounds, args.seed + 99)
        finally:
            service.stop()
    return {"backend": backend, "workers": workers, "clients": args.clients,
            "users": args.users, "seeded_memories": args.users * args.per_user,
            "load": load, "overhead": overhead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=os.environ.get("LPM_TEST_POSTGRES_URL", DEFAULT_URL))
    parser.add_argument("--pg-workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=300, help="calls per overhead series")
    parser.add_argument("--embeddings", default="hash", help="'hash' (default) or 'local'")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = [run(b.strip(), args) for b in args.backends.split(",") if b.strip()]
    for result in results:
        print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
