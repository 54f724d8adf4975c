"""Scale benchmark (issue #12): what a user's search and write cost as *other* users' data grows.

Data shaped like real use: LoCoMo dialog turns (read at run time, never copied here) dealt
out to users, ``--per-user`` consecutive turns each from a user-seeded offset, so users share
vocabulary and sessions as they would in any multi-user app; queries are LoCoMo questions
for random users. Vectors are hash-seeded and deterministic (each word a fixed random
direction), so texts sharing words are close and the model costs nothing: the store is
measured, not the model.

For each size N (``--sizes``) the store grows to N memories through the public batched API
(``add_many``, one user's memories per call) in a child process, then a fresh process opens it
and measures: default ``search()`` p50/p95, ``mode="keyword"`` and ``mode="dense"`` p50,
``search_by_vector`` p50 (reported beside, never instead), single ``add()`` and ``delete()``
p50, open time, first search of a user after open vs a user searched recently, peak RSS of
each process. Ingest is streamed (one user at a time), so 10M memories need no more memory in
this script than 1k. Usage::

    .venv/bin/python benchmarks/scale_bench.py --sizes 1k,10k,100k,1M --json scale.json
    .venv/bin/python benchmarks/scale_bench.py --sizes 10M --workdir /big/disk --keep  # by hand
    .venv/bin/python benchmarks/scale_bench.py --sizes 1k,10k --db postgresql+psycopg://postgres@127.0.0.1:5432/test

``--db`` names a PostgreSQL server: a fresh database is created there and dropped after.
``--memory-budget`` and ``--store-kw NAME=VALUE`` are passed to ``MemoryStore`` when its
signature has them (and reported as ignored otherwise).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bench_util import (  # first: it puts the measured checkout on sys.path
    code_version,
    drop_database,
    fresh_database,
    parse_value,
    peak_rss_mb,
    percentiles,
    run_worker,
    store_kwargs,
)
from langchain_core.embeddings import Embeddings
from locomo_retrieval import DEFAULT_DATA, turns

DIM = 384
K = 10
_WORD = re.compile(r"[a-z0-9]+")
BYTES_PER_MEMORY = 3000  # first guess for the disk check; refined from each stage's files


# ---------------------------------------------------------------------- data
class HashSeededEmbeddings(Embeddings):
    """Deterministic vectors: the normalised sum of per-word random directions (seeded by the
    word's hash) plus a text-seeded part, so texts sharing words are close. No model."""

    model = "bench-hash-seeded-384"

    def __init__(self, dim: int = DIM, max_cached: int = 200_000) -> None:
        self.dim, self.max_cached = dim, max_cached
        self._words: dict[str, np.ndarray] = {}
        self._texts: dict[str, np.ndarray] = {}

    def _seeded(self, key: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)

    def vector(self, text: str) -> np.ndarray:
        cached = self._texts.get(text)
        if cached is not None:
            return cached
        vec = 0.5 * self._seeded("\0" + text)  # the text's own part: equal words, close texts
        for word in _WORD.findall(text.lower()):
            wv = self._words.get(word)
            if wv is None:
                wv = self._words[word] = self._seeded(word)
            vec = vec + wv
        vec = (vec / np.linalg.norm(vec)).astype(np.float32)
        if len(self._texts) >= self.max_cached:
            self._texts.clear()
        self._texts[text] = vec
        return vec

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vector(t) for t in texts]  # type: ignore[misc]  # float32 rows; accepted

    def embed_query(self, text: str) -> list[float]:
        return self.vector(text)  # type: ignore[return-value]


class Corpus:
    """LoCoMo turns and questions; user ``u`` owns ``per_user`` consecutive turns."""

    def __init__(self, path: Path, per_user: int, fresh: int = 0, seed: int = 7) -> None:
        data = json.loads(path.read_text())
        seen: set[str] = set()
        self.turns: list[dict[str, Any]] = []
        for sample in data:
            for item in turns(sample, False):
                if item["content"] not in seen:  # one text, one turn: no dedupe inside a user
                    seen.add(item["content"])
                    self.turns.append(item)
        self.questions: list[str] = [str(qa["question"]) for sample in data for qa in sample["qa"]
                          if str(qa.get("question", "")).strip()]
        if per_user + fresh > len(self.turns):
            raise SystemExit(f"--per-user + --single-adds: at most {len(self.turns)} "
                             "(a user's memories and its single adds must be distinct turns)")
        self.per_user, self.seed = per_user, seed

    def _offset(self, u: int) -> int:
        digest = hashlib.blake2b(f"{self.seed}:{u}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") % len(self.turns)

    def _turn(self, u: int, i: int) -> dict[str, Any]:
        return dict(self.turns[(self._offset(u) + i) % len(self.turns)])

    def user_items(self, u: int) -> list[dict[str, Any]]:
        return [self._turn(u, i) for i in range(self.per_user)]

    def fresh_item(self, u: int, j: int) -> dict[str, Any]:
        """The ``j``-th turn user ``u`` does not have yet (for single adds)."""
        return self._turn(u, self.per_user + j)


def user_name(u: int) -> str:
    return f"user-{u:07d}"


def parse_size(raw: str) -> int:
    scale = {"k": 1_000, "m": 1_000_000}.get(raw[-1].lower(), 1)
    return int(float(raw[:-1] if scale > 1 else raw) * scale)


# ---------------------------------------------------------------------- workers
def _open_store(args: argparse.Namespace, emb: Embeddings) -> tuple[Any, list[str]]:
    from langchain_persistent_memory import MemoryStore  # imported before any timing starts

    wanted: dict[str, Any] = {"index_path": Path(args.workdir) / "scale.index"}
    if args.memory_budget is not None:
        wanted["memory_budget"] = parse_value(args.memory_budget)
    for pair in args.store_kw or []:
        name, _, value = pair.partition("=")
        wanted[name] = parse_value(value)
    kwargs, ignored = store_kwargs(wanted)
    return MemoryStore(args.url, embeddings=emb, **kwargs), ignored


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ingest_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Grow the store from user ``--from-user`` to ``--users`` with add_many, one user a call."""
    corpus, emb = Corpus(args.data, args.per_user), HashSeededEmbeddings()
    import langchain_persistent_memory  # noqa: F401  # import time is not open time

    t0 = time.perf_counter()
    store, ignored = _open_store(args, emb)
    open_s = time.perf_counter() - t0
    added, spent = 0, 0.0
    batch = max(1, min(args.batch, args.per_user))
    todo = args.users - args.from_user
    for n, u in enumerate(range(args.from_user, args.users)):
        items = corpus.user_items(u)
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            spent += _timed(lambda: store.add_many(chunk, user_id=user_name(u)))  # noqa: B023
            added += len(chunk)
        if todo >= 20 and (n + 1) % (todo // 10) == 0:
            print(f"[scale] ingest {n + 1}/{todo} users, {added / spent:,.0f}/s",
                  file=sys.stderr, flush=True)
    close_s = _timed(store.close)
    return {"added": added, "add_many_s": round(spent, 3), "open_s": round(open_s, 3),
            "close_s": round(close_s, 3), "ingest_per_s": round(added / max(spent, 1e-9), 1),
            "ingest_wall_per_s": round(added / max(open_s + spent + close_s, 1e-9), 1),
            "peak_rss_mb": peak_rss_mb(), "ignored_options": ignored}


def measure_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Open the store in this fresh process and time the calls a user of it makes."""
    corpus = Corpus(args.data, args.per_user, fresh=args.single_adds)
    emb = HashSeededEmbeddings()
    for q in corpus.questions:
        emb.vector(q)  # the fake model's own cost stays out of every timing below
    rng = np.random.default_rng(args.seed)
    import langchain_persistent_memory  # noqa: F401  # import time is not open time

    base_rss = peak_rss_mb()
    t0 = time.perf_counter()
    store, ignored = _open_store(args, emb)
    open_s = time.perf_counter() - t0

    def question() -> str:
        return corpus.questions[int(rng.integers(len(corpus.questions)))]

    def search_time(u: int, q: str, **options: Any) -> float:
        return _timed(lambda: store.search(q, user_id=user_name(u), k=K, **options))

    # First search of users never searched since open, then the same users again.
    cold = rng.choice(args.users, size=min(args.cold_users, args.users), replace=False)
    first = [search_time(int(u), question()) for u in cold]
    recent = [search_time(int(u), question()) for u in cold]

    picks = [(int(rng.integers(args.users)), question()) for _ in range(args.queries)]
    # Warm-up: the timed passes measure users searched recently. A store that loads a user's
    # partition on first search would otherwise time mostly first searches at 1M (10k users,
    # 300 picks); those are measured above, as "cold user".
    for u, q in picks[:args.warmup]:
        store.search(q, user_id=user_name(u), k=K)
    for u in sorted({u for u, _ in picks}):
        store.search(question(), user_id=user_name(u), k=K)
    default = [search_time(u, q) for u, q in picks]
    keyword = [search_time(u, q, mode="keyword") for u, q in picks]
    dense = [search_time(u, q, mode="dense") for u, q in picks]
    vectors = [(u, emb.vector(q)) for u, q in picks]
    by_vector = [_timed(lambda: store.search_by_vector(v, user_id=user_name(u), k=K))  # noqa: B023
                 for u, v in vectors]

    # Single adds (one durable commit each), then delete them so N stays N for the next size.
    adds, added = [], []
    for j in range(args.single_adds):
        u = int(rng.integers(args.users))
        item = corpus.fresh_item(u, j)
        t = time.perf_counter()
        memory = store.add(item.pop("content"), user_id=user_name(u), **item)
        adds.append(time.perf_counter() - t)
        added.append((memory.id, u))
    deletes = [_timed(lambda: store.delete(mid, user_id=user_name(u)))  # noqa: B023
               for mid, u in added]
    store.close()
    return {
        "open_s": round(open_s, 4),
        "first_search_after_open_ms": round(first[0] * 1000, 3) if first else None,
        "cold_user_search_ms": percentiles(first), "recent_user_search_ms": percentiles(recent),
        "search_ms": percentiles(default), "keyword_ms": percentiles(keyword),
        "dense_ms": percentiles(dense), "search_by_vector_ms": percentiles(by_vector),
        "single_add_ms": percentiles(adds), "delete_ms": percentiles(deletes),
        "peak_rss_mb": peak_rss_mb(), "rss_before_open_mb": base_rss,
        "ignored_options": ignored, "loadavg_1m": round(os.getloadavg()[0], 2),
    }


# ---------------------------------------------------------------------- orchestration
def _worker_cmd(kind: str, args: argparse.Namespace, from_user: int, users: int) -> list[str]:
    cmd = [__file__, "--worker", kind, "--url", args.url, "--workdir", str(args.workdir),
           "--data", str(args.data), "--per-user", str(args.per_user), "--users", str(users),
           "--from-user", str(from_user), "--batch", str(args.batch),
           "--queries", str(args.queries), "--warmup", str(args.warmup),
           "--cold-users", str(args.cold_users), "--single-adds", str(args.single_adds),
           "--seed", str(args.seed)]
    if args.memory_budget is not None:
        cmd += ["--memory-budget", args.memory_budget]
    for pair in args.store_kw or []:
        cmd += ["--store-kw", pair]
    return cmd


def _work(kind: str, args: argparse.Namespace, from_user: int, users: int) -> dict[str, Any]:
    """Run a worker in a fresh process (its own peak RSS), or here with ``--in-process``."""
    if not args.in_process:
        return run_worker(_worker_cmd(kind, args, from_user, users))
    ns = argparse.Namespace(**{**vars(args), "from_user": from_user, "users": users})
    return ingest_worker(ns) if kind == "ingest" else measure_worker(ns)


def _disk_bytes(workdir: Path) -> int:
    return sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file())


def run_sizes(args: argparse.Namespace) -> list[dict[str, Any]]:
    workdir = Path(args.workdir)
    progress_file = workdir / "progress.json"
    progress: dict[str, Any] = {"users": 0, "add_many_s": 0.0, "added": 0}
    if progress_file.exists():
        progress = json.loads(progress_file.read_text())
    per_memory = BYTES_PER_MEMORY
    rows = []
    for size in sorted(parse_size(s) for s in args.sizes.split(",")):
        users = max(1, size // args.per_user)
        if users < progress["users"]:
            print(f"[scale] {size:,}: the store already has more users; skipped", file=sys.stderr)
            continue
        need = (users - progress["users"]) * args.per_user * per_memory * 1.3
        free = shutil.disk_usage(workdir).free
        if not args.url.startswith("postgresql") and need > free:
            print(f"[scale] {size:,}: needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB free; "
                  "stopped", file=sys.stderr)
            break
        row: dict[str, Any] = {"n": users * args.per_user, "users": users}
        if users > progress["users"]:
            print(f"[scale] ingest to {users:,} users x {args.per_user} ...", file=sys.stderr,
                  flush=True)
            ing = _work("ingest", args, progress["users"], users)
            progress = {"users": users, "added": progress["added"] + ing["added"],
                        "add_many_s": progress["add_many_s"] + ing["add_many_s"]}
            progress_file.write_text(json.dumps(progress))
            row["ingest"] = ing
        row["ingest_per_s_whole_run"] = round(progress["added"] / max(progress["add_many_s"],
                                                                      1e-9), 1)
        if not args.url.startswith("postgresql"):
            row["disk_mb"] = round(_disk_bytes(workdir) / 2**20, 1)
            per_memory = max(per_memory, int(row["disk_mb"] * 2**20 / row["n"]))
        print(f"[scale] measure at {row['n']:,} ...", file=sys.stderr, flush=True)
        row["measure"] = _work("measure", args, 0, users)
        print(f"[scale] {json.dumps(row)}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    head = ("| N (users) | `search()` p50 / p95 ms | keyword p50 | dense p50 "
            "| `search_by_vector` p50 | `add()` p50 ms | delete p50 ms | ingest /s (whole run) "
            "| open s | 1st search after open ms | cold user p50 | recent user p50 "
            "| peak RSS MB search / ingest | disk MB |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        m = r["measure"]

        def p(key: str, q: str = "p50", m: dict[str, Any] = m) -> str:
            return f"{m[key].get(q, '–')}"
        lines.append(
            f"| {r['n']:,} ({r['users']:,}) | {p('search_ms')} / {p('search_ms', 'p95')} "
            f"| {p('keyword_ms')} | {p('dense_ms')} | {p('search_by_vector_ms')} "
            f"| {p('single_add_ms')} | {p('delete_ms')} | {r['ingest_per_s_whole_run']:,.0f} "
            f"| {m['open_s']} | {m['first_search_after_open_ms']} | {p('cold_user_search_ms')} "
            f"| {p('recent_user_search_ms')} | {m['peak_rss_mb']:,.0f} / "
            f"{r.get('ingest', {}).get('peak_rss_mb', '–')} | {r.get('disk_mb', '–')} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1k,10k,100k,1M", help="store sizes, e.g. 1k,10k,1M,10M")
    p.add_argument("--per-user", type=int, default=100)
    p.add_argument("--queries", type=int, default=300, help="timed queries per search kind")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--cold-users", type=int, default=20,
                   help="users whose first search after open is timed")
    p.add_argument("--single-adds", type=int, default=100)
    p.add_argument("--batch", type=int, default=1000, help="add_many batch size (per user)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LoCoMo JSON (CC BY-NC)")
    p.add_argument("--db", help="PostgreSQL server URL (a fresh database is made and dropped)")
    p.add_argument("--workdir", help="where the files go (default: a temp dir); a second run "
                   "with the same --workdir --keep continues from the store already there")
    p.add_argument("--keep", action="store_true", help="keep the files / database")
    p.add_argument("--memory-budget", help="passed as memory_budget= if the store has it")
    p.add_argument("--store-kw", action="append", metavar="NAME=VALUE",
                   help="any other MemoryStore keyword (passed only if the store has it)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--in-process", action="store_true",
                   help="ingest and measure in this process (quicker; peak RSS then mixed)")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--worker", choices=("ingest", "measure"), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--users", type=int, help=argparse.SUPPRESS)
    p.add_argument("--from-user", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        work = ingest_worker if args.worker == "ingest" else measure_worker
        print(json.dumps(work(args)))
        return
    if not args.data.exists():
        print(f"LoCoMo data not found at {args.data} (pass --data); nothing measured.")
        return
    own_dir = args.workdir is None
    args.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lpm-scale-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    made_db = bool(args.db) and not (args.workdir / "progress.json").exists()
    url_file = args.workdir / "url.txt"
    if args.db:
        args.url = url_file.read_text() if not made_db else fresh_database(args.db, "lpm_scale")
        url_file.write_text(args.url)
    else:
        args.url = f"sqlite:///{args.workdir / 'scale.db'}"
    progress_file = args.workdir / "progress.json"
    try:
        rows = run_sizes(args)
    finally:
        if not args.keep:
            if args.db:
                drop_database(args.db, args.url)
            if own_dir:
                shutil.rmtree(args.workdir, ignore_errors=True)
            else:  # only what this script made
                for path in [*args.workdir.glob("scale.*"), progress_file, url_file]:
                    path.unlink(missing_ok=True)
    code = code_version()
    print(f"code: {code['package']} ({code['commit']}); load {os.getloadavg()[0]:.2f}")
    ignored = sorted({name for r in rows for name in r["measure"]["ignored_options"]})
    if ignored:
        print(f"this MemoryStore has no option {', '.join(ignored)}: not passed")
    print()
    print(markdown_table(rows))
    if args.json:
        config = {k: str(v) for k, v in vars(args).items() if k not in {"json", "worker"}}
        args.json.write_text(json.dumps({"config": config, "code": code, "sizes": rows,
                                         "loadavg": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
