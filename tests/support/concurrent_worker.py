"""Processes that write and search one shared database at the same time.

Each worker opens its own ``MemoryStore`` (own connections, own FAISS replica), waits until
every worker has opened (so some replicas start on an empty database), then writes and
searches. After a second barrier, when every write has committed, it searches for every
other worker's memories: each must be found. Anything raised is reported, never swallowed.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from langchain_persistent_memory import MemoryStore
from tests.support.embeddings import HashEmbeddings

__all__ = ["USERS", "fact", "worker"]

USERS = ["u0", "u1", "u2"]


def fact(name: str, i: int) -> str:
    """A text whose own words make it the best match for itself."""
    return f"{name} remembers fact number {i} tok{name}x{i} tok{i}y{name}"


def worker(url: str, index_path: str | None, name: str, writes: int, writers: list[str],
           per_writer: int, barrier: Any, out: str) -> None:
    """``writes`` adds (0 for a pure reader) with searches in between, then a visibility check."""
    result: dict[str, Any] = {"name": name, "ids": {}, "errors": [], "unseen": [], "searches": 0}
    try:
        store = MemoryStore(url, embeddings=HashEmbeddings(),
                            index_path=Path(index_path) if index_path else None)
        barrier.wait()
        for i in range(max(writes, 30)):
            if i < writes:
                memory = store.add(fact(name, i), user_id=USERS[i % len(USERS)])
                result["ids"][str(i)] = memory.id
                if i % 4 == 3:  # edit own memories too: updates move vectors under readers
                    store.update(memory.id, content=fact(name, i) + " edited",
                                 user_id=USERS[i % len(USERS)])
                    store.update(memory.id, content=fact(name, i), user_id=USERS[i % len(USERS)])
            store.search("remembers fact", user_id=USERS[i % len(USERS)], k=5)
            result["searches"] += 1
        barrier.wait()  # every worker's writes are committed now
        for other in writers:
            for i in range(per_writer):
                user = USERS[i % len(USERS)]
                hits = store.search(fact(other, i), user_id=user, k=3)
                if not any(h.memory.content == fact(other, i) for h in hits):
                    result["unseen"].append(f"{other}:{i}")
        store.close()
    except BaseException:
        result["errors"].append(traceback.format_exc())
        barrier.abort()
    Path(out).write_text(json.dumps(result))
