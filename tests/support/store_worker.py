"""A second process for the persistence tests: ``python -m tests.support.store_worker JSON``.

Actions (``{"action": ..., "url": ..., "index": ...}``):

- ``dump``: open the store and print every user's memories, their history and the answers
  to ``queries`` (``[[user, query], ...]``) as JSON, for comparison with the parent.
- ``write``: add ``count`` memories ``"<name> fact <i>"`` for user ``shared`` one by one,
  between barrier files in ``barrier_dir`` so both writers overlap, then search for the
  other writer's fact 7; once ``observer-wrote`` appears, search for "observer fact" too.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from langchain_persistent_memory import MemoryStore
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"barrier {path} never appeared")
        time.sleep(0.01)


def dump(store: MemoryStore, queries: list[list[str]]) -> dict[str, Any]:
    users = {}
    for user in store.users():
        users[user] = [
            {**m.model_dump(mode="json"),
             "history": [e.model_dump(mode="json") for e in store.history(m.id, user_id=user)]}
            for m in store.list(user, include_superseded=True)]
    found = [[h.memory.id for h in store.search(q, user_id=u, k=3, mode="dense")]
             for u, q in queries]
    return {"users": users, "search": found, "index_mismatches": index_mismatches(store)}


def write(store: MemoryStore, name: str, other: str, count: int, barriers: Path) -> dict:
    (barriers / f"ready-{name}").touch()
    _wait_for(barriers / f"ready-{other}")
    for i in range(count):
        store.add(f"{name} fact {i}", user_id="shared")
    (barriers / f"done-{name}").touch()
    _wait_for(barriers / f"done-{other}")
    hits = store.search(f"{other} fact 7", user_id="shared", k=1, mode="dense")
    result = {"top": hits[0].memory.content if hits else None,
              "indexed": store.index_info("shared").vectors}
    (barriers / f"checked-{name}").touch()  # the observer writes only after this
    _wait_for(barriers / "observer-wrote")
    late = store.search("observer fact", user_id="shared", k=1, mode="dense")
    return {**result, "late": late[0].memory.content if late else None}


def main(raw: str) -> None:
    args = json.loads(raw)
    embeddings = HashEmbeddings()
    with MemoryStore(args["url"], embeddings=embeddings, index_path=args["index"]) as store:
        if args["action"] == "dump":
            loaded = store.index_info().users_loaded
            result = dump(store, args.get("queries", [])) | {"loaded_at_open": loaded}
            result["texts_embedded_besides_queries"] = embeddings.texts_embedded - len(
                args.get("queries", []))
        else:
            result = write(store, args["name"], args["other"], args["count"],
                           Path(args["barrier_dir"]))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
