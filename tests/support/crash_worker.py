"""A writer process that is SIGKILLed at a random moment, and the rules that judge it.

The worker runs random adds, batches, updates, supersedes, deletes, forget_user calls and
index saves. Around
every call it appends to a journal, fsynced: ``begin`` (the operation, with the ids it will
create) before the call and ``done`` (with ids only known afterwards) only AFTER the call
returned. So after a kill the test knows every committed operation, plus at most one that
was in flight: that one must be either completely in the database or not at all.

:func:`expected_states` replays a journal into the two acceptable database states and
:func:`settle` compares them with the rows found, then records the in-flight op's fate.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

from langchain_persistent_memory import AddOp, DeleteOp, MemoryStore, UpdateOp
from tests.support.consistency import RowState
from tests.support.embeddings import HashEmbeddings

__all__ = ["USERS", "expected_states", "open_store", "read_journal", "run_worker",
           "settle"]

USERS = ["alice", "bob", "carol", "dave"]
_WORD_TEXT = ("coffee tea hiking chess python rust paris tokyo dog cat piano guitar salad "
              "running swimming novels jazz opera cinema garden ocean mountain bread")
_WORDS = _WORD_TEXT.split()
State = dict[str, RowState]


def open_store(url: str, index_path: Path) -> MemoryStore:
    return MemoryStore(url, embeddings=HashEmbeddings(), index_path=index_path)


class Journal:
    """Append-only JSON lines, each fsynced before the next step runs."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the worker

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Complete lines only: a kill can cut the last line short."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def _text(rng: random.Random, user: str, tag: str) -> str:
    return f"{user} note {tag} " + " ".join(rng.choices(_WORDS, k=5))


def _plan(rng: random.Random, state: State, tag: str) -> dict[str, Any]:
    """One random operation on the worker's view of the database."""
    user = rng.choice(USERS)
    mine = [mid for mid, row in state.items() if row.user_id == user]
    current = [mid for mid in mine if state[mid].current]
    roll = rng.random()
    if roll < 0.30 or not mine:
        return {"kind": "add", "user": user, "id": str(uuid.uuid4()),
                "content": _text(rng, user, tag)}
    if roll < 0.45:
        items = [{"id": str(uuid.uuid4()), "content": _text(rng, user, f"{tag}.{i}")}
                 for i in range(rng.randint(2, 5))]
        return {"kind": "batch", "user": user, "adds": items,
                "update": rng.choice(current) if current else None,
                "update_content": _text(rng, user, f"{tag}.u"),
                "delete": rng.choice(mine)}
    if roll < 0.60 and current:
        return {"kind": "update", "user": user, "id": rng.choice(current),
                "content": _text(rng, user, tag)}
    if roll < 0.78 and current:
        return {"kind": "supersede", "user": user, "id": rng.choice(current),
                "content": _text(rng, user, tag)}
    if roll < 0.92:
        return {"kind": "delete", "user": user, "id": rng.choice(mine)}
    if roll < 0.94:
        return {"kind": "forget", "user": user}
    return {"kind": "save"}


def _execute(store: MemoryStore, op: dict[str, Any]) -> dict[str, Any]:
    kind, user = op["kind"], op.get("user")
    if kind == "add":
        store.apply([AddOp(id=op["id"], content=op["content"])], user_id=user)
    elif kind == "batch":
        ops: list[Any] = [AddOp(id=a["id"], content=a["content"]) for a in op["adds"]]
        if op["update"] is not None and op["update"] != op["delete"]:
            ops.append(UpdateOp(memory_id=op["update"], content=op["update_content"]))
        ops.append(DeleteOp(memory_id=op["delete"]))
        store.apply(ops, user_id=user)
    elif kind == "update":
        store.update(op["id"], content=op["content"], user_id=user)
    elif kind == "supersede":
        return {"new_id": store.supersede(op["id"], op["content"], user_id=user).id}
    elif kind == "delete":
        store.delete(op["id"], user_id=user)
    elif kind == "forget":
        store.forget_user(user)
    else:
        store.save_index()
    return {}


def apply_to_state(out: State, op: dict[str, Any], result: dict[str, Any] | None) -> State:
    """Apply ``op`` to ``out`` in place; a supersede's unknown new id becomes ``?new``."""
    kind, user = op["kind"], op.get("user")
    if kind == "add":
        out[op["id"]] = RowState(user, op["content"], True)
    elif kind == "batch":
        for a in op["adds"]:
            out[a["id"]] = RowState(user, a["content"], True)
        if op["update"] is not None and op["update"] != op["delete"]:
            old = out[op["update"]]
            out[op["update"]] = RowState(user, op["update_content"], old.current)
        del out[op["delete"]]
    elif kind == "update":
        out[op["id"]] = RowState(user, op["content"], out[op["id"]].current)
    elif kind == "supersede":
        out[op["id"]] = RowState(user, out[op["id"]].content, False)
        new_id = result["new_id"] if result else "?new"
        out[new_id] = RowState(user, op["content"], True)
    elif kind == "delete":
        del out[op["id"]]
    elif kind == "forget":
        for mid in [m for m, row in out.items() if row.user_id == user]:
            del out[mid]
    return out


def expected_states(journal: list[dict[str, Any]]) -> tuple[State, State | None]:
    """(state with every completed op, state if the in-flight op also committed, or None)."""
    state: State = {}
    pending: dict[str, Any] | None = None
    for record in journal:
        if record["t"] == "begin":
            pending = record["op"]
        elif record["t"] == "abort":
            pending = None
        else:
            assert pending is not None
            state = apply_to_state(state, pending, record["result"])
            pending = None
    if pending is None or pending["kind"] == "save":
        return state, None
    return state, apply_to_state(dict(state), pending, None)


def _unknown_id(found: State, expected: State) -> str | None:
    """The id standing in for ``?new`` if ``found`` equals ``expected``, else None."""
    known = {k: v for k, v in expected.items() if k != "?new"}
    extra = {k: v for k, v in found.items() if k not in known}
    rest = {k: v for k, v in found.items() if k in known}
    if rest != known or list(extra.values()) != [expected["?new"]]:
        return None
    return next(iter(extra))


def settle(journal_path: Path, found: State) -> str:
    """Judge the database after a kill and record the in-flight op's fate in the journal.

    Returns "committed", "absent" or "idle" (nothing in flight); raises AssertionError when
    ``found`` is neither acceptable state: a lost commit or a half-applied operation.
    """
    before, after = expected_states(read_journal(journal_path))
    journal = Journal(journal_path)
    if found == before:
        if after is not None:
            journal.write({"t": "abort"})
        return "idle" if after is None else "absent"
    if after is not None:
        if "?new" not in after and found == after:
            journal.write({"t": "done", "result": {}})
            return "committed"
        new_id = _unknown_id(found, after) if "?new" in after else None
        if new_id is not None:
            journal.write({"t": "done", "result": {"new_id": new_id}})
            return "committed"
    missing = sorted(set(before) - set(found))[:5]
    unexpected = sorted(set(found) - set(before))[:5]
    changed = sorted(k for k in set(before) & set(found) if before[k] != found[k])[:5]
    raise AssertionError(f"database matches neither state: missing {missing}, unexpected "
                         f"{unexpected}, changed {changed}, in flight {after is not None}")


def run_worker(url: str, index_path: str, journal_path: str, seed: int) -> None:
    """Write forever (until killed), journalling each operation around the call."""
    journal = Journal(Path(journal_path))
    state, _ = expected_states(read_journal(Path(journal_path)))
    store = open_store(url, Path(index_path))
    rng = random.Random(seed)
    n = 0
    while True:
        n += 1
        op = _plan(rng, state, f"{seed}-{n}")
        journal.write({"t": "begin", "op": op})
        result = _execute(store, op)
        journal.write({"t": "done", "result": result})
        state = apply_to_state(state, op, result)


