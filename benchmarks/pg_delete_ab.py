"""PostgreSQL single-delete latency of two versions of the package in one process, calls
interleaved: both see the same load and the same server at the same moments.

On a shared machine the WAL flush of each commit swings by milliseconds from one run to the
next; interleaving the two versions' deletes is what makes their difference visible.
``--no-flush-wait`` opens the stores with ``synchronous_commit=off`` (same for both), which
leaves the CPU and round-trip part of a delete. Each version gets its own fresh database
with ``--users`` users x ``--per-user`` memories, then ``--deletes`` single deletes,
alternating versions. Usage::

    git archive <commit> langchain_persistent_memory | tar -x -C /tmp/old
    .venv/bin/python benchmarks/pg_delete_ab.py --before /tmp/old
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bench_util import DEFAULT_SERVER, drop_database, fresh_database, percentiles

ROOT = Path(__file__).resolve().parent.parent


class _Embeddings:
    """A fixed unit vector per text: the model is not measured."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(len(t) % 7 + 1), float(sum(map(ord, t)) % 13 + 1), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _load(alias: str, folder: Path) -> ModuleType:
    """The package in ``folder`` imported under ``alias`` (so two versions can coexist)."""
    package = folder / "langchain_persistent_memory"
    spec = importlib.util.spec_from_file_location(alias, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--after", type=Path, default=ROOT)
    p.add_argument("--server", default=DEFAULT_SERVER)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--per-user", type=int, default=25)
    p.add_argument("--deletes", type=int, default=400)
    p.add_argument("--no-flush-wait", action="store_true")
    args = p.parse_args()
    versions = {"before": _load("lpm_before", args.before), "after": _load("lpm_after", args.after)}
    urls = {name: fresh_database(args.server, f"lpm_del_{name}") for name in versions}
    stores: dict[str, Any] = {}
    try:
        jobs: dict[str, list[tuple[str, str]]] = {}
        for name, module in versions.items():
            url = urls[name] + ("?options=-csynchronous_commit%3Doff" if args.no_flush_wait
                                else "")
            store = stores[name] = module.MemoryStore(url, embeddings=_Embeddings())
            ids = [(f"u{u}", m.id) for u in range(args.users) for m in store.add_many(
                [f"Alice told Bob fact {u}.{i}" for i in range(args.per_user)], user_id=f"u{u}")]
            ids.sort(key=lambda pair: pair[1][::-1])  # users mixed
            jobs[name] = ids[:args.deletes]
        times: dict[str, list[float]] = {name: [] for name in versions}
        for k in range(min(len(j) for j in jobs.values())):
            for name in (("before", "after") if k % 2 else ("after", "before")):
                user, memory_id = jobs[name][k]
                t0 = time.perf_counter()
                stores[name].delete(memory_id, user_id=user)
                times[name].append(time.perf_counter() - t0)
    finally:
        for store in stores.values():
            store.close()
        for url in urls.values():
            drop_database(args.server, url)
    print(f"{len(times['after'])} deletes each, interleaved"
          + (", synchronous_commit=off" if args.no_flush_wait else ""))
    for name, seconds in times.items():
        ms = percentiles(seconds)
        print(f"{name}: delete p50 {ms['p50']:.3f} ms, p95 {ms['p95']:.3f} ms "
              f"({Path(versions[name].__file__ or '').parent})")
    ratio = statistics.median(times["after"]) / statistics.median(times["before"])
    print(f"after / before p50: {ratio:.2f}x")


if __name__ == "__main__":
    main()
