"""Store benchmark: our MemoryStore against LangChain FAISS and LangGraph's stores.

Every system gets the same precomputed 384-dim vectors (an ``Embeddings`` that looks them up
by text), so the store is measured and not the model. The data is hard the way real memories
are: every memory belongs to one of ``--topics`` topics shared by all users (centroid +
noise), so most of a query's global nearest neighbours belong to other users.

Each system runs in its own subprocess, so its peak RSS is its own. Usage::

    .venv/bin/python benchmarks/store_bench.py --users 1000 --per-user 100 --json out.json
    .venv/bin/python benchmarks/store_bench.py --single-user 100000 --json single.json
    .venv/bin/python benchmarks/store_bench.py --users 10000 --per-user 100 \\
        --competitors-max 100000 --json 1m.json   # competitors on the first 100k only

Competitors above ``--competitors-max`` memories are measured on the first users' data up
to that size (their ``n`` says so), because they take minutes to hours at 1M.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

DIM = 384
_TEXT = re.compile(r"\b([mq])(\d+)\b")
K = 10
SYSTEMS = ("lpm", "langchain_faiss", "langgraph_inmemory", "langgraph_sqlite")


# ---------------------------------------------------------------------- data
class Dataset:
    """Deterministic topic-clustered vectors; row i belongs to user ``owner[i]``.

    Rows ``[0, n)`` are the bulk data, then ``extra`` rows for single adds (assigned to
    random users) and ``queries`` query vectors. Texts are ``m<i>`` and ``q<j>``.
    """

    def __init__(self, users: int, per_user: int, *, topics: int, noise: float, extra: int,
                 queries: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.users, self.per_user = users, per_user
        self.n = users * per_user
        self.centroids = _normalize(rng.standard_normal((topics, DIM), dtype=np.float32))
        total = self.n + extra
        self.vectors = np.empty((total, DIM), dtype=np.float32)
        step = 100_000
        for start in range(0, total, step):
            end = min(total, start + step)
            topic = rng.integers(0, topics, end - start)
            noise_rows = rng.standard_normal((end - start, DIM), dtype=np.float32)
            self.vectors[start:end] = _normalize(
                self.centroids[topic] + noise / np.sqrt(DIM) * noise_rows)
        self.owner = np.empty(total, dtype=np.int64)
        self.owner[:self.n] = np.arange(self.n) // per_user
        self.owner[self.n:] = rng.integers(0, users, extra)
        self.extra = np.arange(self.n, total)
        q_topic = rng.integers(0, topics, queries)
        self.query_vectors = _normalize(self.centroids[q_topic] + noise / np.sqrt(DIM)
                                        * rng.standard_normal((queries, DIM), dtype=np.float32))
        self.query_users = rng.integers(0, users, queries)

    def user_name(self, u: int) -> str:
        return f"user-{u:06d}"

    def user_rows(self, u: int) -> range:
        return range(u * self.per_user, (u + 1) * self.per_user)

    def truth(self, j: int, live: np.ndarray) -> set[int]:
        """Exact top-k rows of query j among its user's live rows (numpy scan)."""
        u = int(self.query_users[j])
        rows = np.flatnonzero(live & (self.owner == u)) if live is not None else None
        scores = self.vectors[rows] @ self.query_vectors[j]
        top = rows[np.argsort(-scores, kind="stable")[:K]]
        return {int(r) for r in top}


def _normalize(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


class LookupEmbeddings(Embeddings):
    """Vectors looked up by text (``m<row>`` / ``q<query>``): no model in the loop."""

    model = "bench-lookup-384"

    def __init__(self, data: Dataset) -> None:
        self.data = data

    def _one(self, text: str) -> np.ndarray:
        match = _TEXT.search(text)  # SqliteStore embeds the JSON of the value: find the text
        if match is None:
            raise ValueError(f"no vector for {text!r}")
        table = self.data.query_vectors if match[1] == "q" else self.data.vectors
        return table[int(match[2])]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]  # type: ignore[misc]  # rows; every system accepts

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)  # type: ignore[return-value]


# ---------------------------------------------------------------------- helpers
def _pct(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 4),
            "p95": round(float(np.percentile(ms, 95)), 4)}


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    """Restart the high-water mark (Linux), so the peak is this system's, not the data
    generator's temporaries. False where unsupported: then the peak includes them."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        return _status_mb("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


class Adapter:
    """What the harness needs from a system; ``None`` results mean "not applicable"."""

    durable = True

    def ingest(self, user: str, rows: list[int]) -> None: ...
    def add_one(self, user: str, row: int) -> Any: ...
    def search(self, user: str, j: int) -> list[int]: ...
    def delete(self, user: str, handle: Any) -> None: ...
    def reopen(self) -> float | None: return None
    def rebuild(self) -> float | None: return None
    def close(self) -> None: ...


# ---------------------------------------------------------------------- systems
class LpmAdapter(Adapter):
    def __init__(self, data: Dataset, workdir: Path) -> None:
        from langchain_persistent_memory import MemoryStore

        self.data, self.cls = data, MemoryStore
        self.emb = LookupEmbeddings(data)
        self.url = f"sqlite:///{workdir / 'lpm.db'}"
        self.store = self.cls(self.url, embeddings=self.emb)

    def ingest(self, user: str, rows: list[int]) -> None:
        self.store.add_many([f"m{r}" for r in rows], user_id=user)

    def add_one(self, user: str, row: int) -> Any:
        return self.store.add(f"m{row}", user_id=user).id

    def search(self, user: str, j: int) -> list[int]:
        # The store's vector search (what the competitors do); search() adds hybrid ranking.
        vector = self.store.embed_query(f"q{j}")
        hits = self.store.search_by_vector(vector, user_id=user, k=K)
        return [int(h.memory.content[1:]) for h in hits]

    def hybrid_search(self, user: str, j: int) -> None:
        self.store.search(f"q{j}", user_id=user, k=K)

    def delete(self, user: str, handle: Any) -> None:
        self.store.delete(handle, user_id=user)

    def reopen(self) -> float:
        self.store.close()
        self.store = None  # let the old index go before the new one loads
        gc.collect()
        t0 = time.perf_counter()
        self.store = self.cls(self.url, embeddings=self.emb)
        self.search(self.data.user_name(0), 0)
        return time.perf_counter() - t0  # open + the user's partition loaded from SQL

    def rebuild(self) -> float:
        elapsed, count = _timed(self.store.rebuild_index)
        return count / elapsed

    def close(self) -> None:
        self.store.close()


class FaissAdapter(Adapter):
    """langchain_community's FAISS vector store, user as metadata filter (its documented way)."""

    durable = False

    def __init__(self, data: Dataset, workdir: Path) -> None:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from langchain_community.vectorstores import FAISS

        self.data, self.cls, self.dir = data, FAISS, workdir / "faiss"
        self.emb = LookupEmbeddings(data)
        self.vs: Any = None

    def _add(self, user: str, rows: list[int]) -> list[str]:
        pairs = [(f"m{r}", self.data.vectors[r]) for r in rows]
        metas = [{"user_id": user, "row": r} for r in rows]
        ids = [f"m{r}" for r in rows]
        if self.vs is None:
            self.vs = self.cls.from_embeddings(pairs, self.emb, metadatas=metas, ids=ids)
            return ids
        return self.vs.add_embeddings(pairs, metadatas=metas, ids=ids)  # type: ignore[no-any-return]

    def ingest(self, user: str, rows: list[int]) -> None:
        self._add(user, rows)

    def add_one(self, user: str, row: int) -> Any:
        return self._add(user, [row])[0]

    def search(self, user: str, j: int) -> list[int]:
        hits = self.vs.similarity_search_with_score_by_vector(
            self.data.query_vectors[j], k=K, filter={"user_id": user})
        return [int(doc.metadata["row"]) for doc, _ in hits]

    def delete(self, user: str, handle: Any) -> None:
        self.vs.delete([handle])

    def reopen(self) -> float:
        self.vs.save_local(str(self.dir))
        self.vs = None
        gc.collect()
        t0 = time.perf_counter()
        self.vs = self.cls.load_local(str(self.dir), self.emb,
                                      allow_dangerous_deserialization=True)
        self.search(self.data.user_name(0), 0)
        return time.perf_counter() - t0


class LangGraphAdapter(Adapter):
    """LangGraph BaseStore: one namespace per user, semantic search on field ``text``."""

    def __init__(self, data: Dataset, workdir: Path, kind: str) -> None:
        self.data, self.kind, self.path = data, kind, workdir / "langgraph.sqlite"
        self.emb = LookupEmbeddings(data)
        self.durable = kind == "sqlite"
        self.conn: Any = None
        self.store = self._open()

    def _open(self) -> Any:
        index = {"dims": DIM, "embed": self.emb, "fields": ["text"]}
        if self.kind == "memory":
            from langgraph.store.memory import InMemoryStore

            return InMemoryStore(index=index)  # type: ignore[arg-type]
        # The interpreter's sqlite3 may be built without extension loading, which sqlite-vec
        # needs; pysqlite3-binary bundles a SQLite that allows it.
        from langgraph.store.sqlite import SqliteStore
        from pysqlite3 import dbapi2 as sqlite3

        self.conn = sqlite3.connect(str(self.path), check_same_thread=False,
                                    isolation_level=None)
        store = SqliteStore(self.conn, index={**index, "distance_type": "cosine"})  # type: ignore[typeddict-item]
        store.setup()
        return store

    def ingest(self, user: str, rows: list[int]) -> None:
        from langgraph.store.base import PutOp

        self.store.batch([PutOp((user,), f"m{r}", {"text": f"m{r}"}) for r in rows])

    def add_one(self, user: str, row: int) -> Any:
        self.store.put((user,), f"m{row}", {"text": f"m{row}"})
        return f"m{row}"

    def search(self, user: str, j: int) -> list[int]:
        hits = self.store.search((user,), query=f"q{j}", limit=K)
        return [int(item.key[1:]) for item in hits]

    def delete(self, user: str, handle: Any) -> None:
        self.store.delete((user,), handle)

    def reopen(self) -> float | None:
        if self.kind == "memory":
            return None
        self.conn.close()
        gc.collect()
        t0 = time.perf_counter()
        self.store = self._open()
        self.search(self.data.user_name(0), 0)
        return time.perf_counter() - t0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def make_adapter(system: str, data: Dataset, workdir: Path) -> Adapter:
    if system == "lpm":
        return LpmAdapter(data, workdir)
    if system == "langchain_faiss":
        return FaissAdapter(data, workdir)
    if system == "langgraph_inmemory":
        return LangGraphAdapter(data, workdir, "memory")
    if system == "langgraph_sqlite":
        return LangGraphAdapter(data, workdir, "sqlite")
    raise SystemExit(f"unknown system {system}")


# ---------------------------------------------------------------------- one system
def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one system on the data set; runs in its own process."""
    data = Dataset(args.users, args.per_user, topics=args.topics, noise=args.noise,
                   extra=args.single_adds, queries=args.queries)
    gc.collect()
    data_rss = _status_mb("VmRSS")  # the data set itself, held by every system's process
    peak_is_own = _reset_peak_rss()
    load_start = round(os.getloadavg()[0], 2)
    phases: dict[str, float] = {}
    workdir = Path(tempfile.mkdtemp(prefix=f"lpm-bench-{args.worker}-", dir=args.workdir))
    try:
        adapter = make_adapter(args.worker, data, workdir)
        live = np.zeros(len(data.owner), dtype=bool)

        # Batched ingest: each user's memories in add_many batches of --batch.
        batch = max(1, min(args.batch, data.per_user))
        t0 = time.perf_counter()
        c0 = time.process_time()
        for u in range(data.users):
            rows = list(data.user_rows(u))
            for start in range(0, len(rows), batch):
                adapter.ingest(data.user_name(u), rows[start:start + batch])
        ingest_s = time.perf_counter() - t0
        ingest_cpu = time.process_time() - c0
        live[:data.n] = True

        # Single adds, one call each (a durable commit per add for durable systems).
        handles: list[tuple[str, Any]] = []
        add_times: list[float] = []
        c0 = time.process_time()
        for row in data.extra.tolist():
            user = data.user_name(int(data.owner[row]))
            elapsed, handle = _timed(lambda: adapter.add_one(user, row))  # noqa: B023
            add_times.append(elapsed)
            handles.append((user, handle))
            live[row] = True
        add_cpu = time.process_time() - c0

        # User-scoped top-k search: latency, and recall against an exact scan.
        for j in range(min(20, args.queries)):  # warm-up
            adapter.search(data.user_name(int(data.query_users[j])), j)
        search_times: list[float] = []
        results: list[list[int]] = []
        c0 = time.process_time()
        for j in range(args.queries):
            user = data.user_name(int(data.query_users[j]))
            elapsed, got = _timed(lambda: adapter.search(user, j))  # noqa: B023
            search_times.append(elapsed)
            results.append(got)
        search_cpu = time.process_time() - c0
        recall = float(np.mean([len(set(got) & data.truth(j, live)) / K
                                for j, got in enumerate(results)]))
        hybrid_times: list[float] = []
        if isinstance(adapter, LpmAdapter):  # the default search(): dense + keyword + rerank
            for j in range(args.queries):
                user = data.user_name(int(data.query_users[j]))
                hybrid_times.append(_timed(lambda: adapter.hybrid_search(user, j))[0])  # noqa: B023

        # Deletes (of the single-added memories).
        delete_times: list[float] = []
        for user, handle in handles[:args.deletes]:
            elapsed, _ = _timed(lambda: adapter.delete(user, handle))  # noqa: B023
            delete_times.append(elapsed)

        phases["until_reopen"] = time.perf_counter() - t0
        reopen_s = adapter.reopen()
        rebuild_per_s = adapter.rebuild()
        adapter.close()
        phases["total"] = time.perf_counter() - t0
        return {
            "system": args.worker, "n": data.n, "users": data.users,
            "per_user": data.per_user, "durable": adapter.durable,
            "search_ms": _pct(search_times), "recall": round(recall, 4),
            "hybrid_search_ms": _pct(hybrid_times) if hybrid_times else None,
            "ingest_per_s": round(data.n / ingest_s, 1),
            "single_add_per_s": round(len(add_times) / sum(add_times), 1),
            "single_add_ms": _pct(add_times),
            "delete_ms": _pct(delete_times) if delete_times else None,
            "reopen_s": None if reopen_s is None else round(reopen_s, 3),
            "rebuild_per_s": None if rebuild_per_s is None else round(rebuild_per_s, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1), "data_rss_mb": round(data_rss, 1),
            "peak_rss_reset": peak_is_own,
            "phase_s": {k: round(v, 1) for k, v in phases.items()},
            # CPU seconds of this process (threads included): what the figures would be on
            # an idle machine, roughly; the wall-clock ones above include waiting for a core.
            "cpu": {"ingest_per_s": round(data.n / ingest_cpu, 1),
                    "single_add_per_s": round(len(add_times) / max(add_cpu, 1e-9), 1),
                    "search_ms_mean": round(search_cpu / args.queries * 1000, 4)},
            "loadavg_1m": [load_start, round(os.getloadavg()[0], 2)],
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------- orchestration
def _spawn(system: str, users: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", system, "--users", str(users),
           "--per-user", str(args.per_user), "--topics", str(args.topics),
           "--noise", str(args.noise), "--queries", str(args.queries),
           "--single-adds", str(args.single_adds), "--deletes", str(args.deletes),
           "--batch", str(args.batch)]
    if args.workdir:
        cmd += ["--workdir", args.workdir]
    print(f"[bench] {system}: {users} users x {args.per_user} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True,
                             timeout=args.system_timeout,
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except subprocess.TimeoutExpired:
        print(f"[bench] {system}: gave up after {args.system_timeout} s", file=sys.stderr)
        return {"system": system, "n": users * args.per_user,
                "error": f"not finished within {args.system_timeout} s"}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(f"[bench] {system}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def _ratios(ours: dict[str, Any], other: dict[str, Any]) -> dict[str, float | None]:
    """How many times better ours is (> 1 = ours better) on each figure both have."""
    def div(a: float | None, b: float | None) -> float | None:
        return None if not a or not b else round(a / b, 2)

    return {
        "search_p50": div(other["search_ms"]["p50"], ours["search_ms"]["p50"]),
        "ingest": div(ours["ingest_per_s"], other["ingest_per_s"]),
        "single_add": div(ours["single_add_per_s"], other["single_add_per_s"]),
        "reopen": div(other["reopen_s"], ours["reopen_s"]),
        "memory_over_data": div(other["peak_rss_mb"] - other["data_rss_mb"],
                                ours["peak_rss_mb"] - ours["data_rss_mb"]),
        "same_n": ours["n"] == other["n"],
    }


def markdown_table(results: list[dict[str, Any]]) -> str:
    head = ("| system | N | search p50 / p95 ms | recall@10 | batched ingest /s | single add /s "
            "| delete p50 ms | reopen s | rebuild /s | peak RSS MB (data) |")
    lines = [head, "|" + "---|" * 10]

    def f(v: Any) -> str:
        return "–" if v is None else (f"{v:,.0f}" if isinstance(v, float) and v >= 100 else str(v))

    for r in results:
        lines.append(
            f"| {r['system']} | {r['n']:,} | {r['search_ms']['p50']} / {r['search_ms']['p95']} "
            f"| {r['recall']} | {f(r['ingest_per_s'])} | {f(r['single_add_per_s'])} "
            f"| {r['delete_ms']['p50'] if r['delete_ms'] else '–'} | {f(r['reopen_s'])} "
            f"| {f(r['rebuild_per_s'])} | {f(r['peak_rss_mb'])} ({f(r['data_rss_mb'])}) |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--per-user", type=int, default=100)
    p.add_argument("--single-user", type=int, default=None, metavar="M",
                   help="one user with M memories (overrides --users/--per-user)")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--competitors-max", type=int, default=100_000,
                   help="measure competitors on at most this many memories")
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--single-adds", type=int, default=1000)
    p.add_argument("--deletes", type=int, default=200)
    p.add_argument("--batch", type=int, default=1000, help="add_many batch size (per user)")
    p.add_argument("--topics", type=int, default=50)
    p.add_argument("--noise", type=float, default=1.0,
                   help="noise norm relative to the topic centroid")
    p.add_argument("--workdir", default=None, help="where the databases go (default: tmp)")
    p.add_argument("--system-timeout", type=float, default=600,
                   help="seconds before a system's run is abandoned (reported as an error)")
    p.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.single_user:
        args.users, args.per_user = 1, args.single_user
    if args.worker:
        print(json.dumps(run_worker(args)))
        return

    results = []
    for system in args.systems.split(","):
        users = args.users
        if system != "lpm" and users * args.per_user > args.competitors_max:
            users = max(1, args.competitors_max // args.per_user)
        results.append(_spawn(system, users, args))
    by_name = {r["system"]: r for r in results}
    ratios = {name: _ratios(by_name["lpm"], r) for name, r in by_name.items()
              if name != "lpm" and "lpm" in by_name and "error" not in r
              and "error" not in by_name["lpm"]}
    report = {"config": {k: v for k, v in vars(args).items() if k not in {"json", "worker"}},
              "systems": by_name, "ratios_ours_vs": ratios}
    print(markdown_table([r for r in results if "error" not in r]))
    print(json.dumps(ratios, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
