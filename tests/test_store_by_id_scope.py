"""Calls by memory id need the memory's user, or the explicit admin opt-in ``ANY_USER``.

Why: an id is easy to leak (logs, URLs, a model's tool call); with the user left out, an id
alone used to read or change any user's memory. On SQLite and PostgreSQL (``store`` fixture).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from langchain_persistent_memory import (
    ANY_USER,
    AddOp,
    InvalidInputError,
    MemoryNotFoundError,
    MemoryStore,
    UpdateOp,
)
from tests.support.snapshots import db_fingerprint

# Every by-id call of the store, as (name, call taking the id and the user keyword or none).
BY_ID: list[tuple[str, Callable[..., Any]]] = [
    ("get", lambda s, mid, **kw: s.get(mid, **kw)),
    ("history", lambda s, mid, **kw: s.history(mid, **kw)),
    ("update", lambda s, mid, **kw: s.update(mid, content="Bob likes chess", **kw)),
    ("supersede", lambda s, mid, **kw: s.supersede(mid, "Bob likes go", **kw)),
    ("delete", lambda s, mid, **kw: s.delete(mid, **kw)),
    ("apply", lambda s, mid, **kw: s.apply([UpdateOp(memory_id=mid, importance=0.9)], **kw)),
]
ASYNC_BY_ID: list[tuple[str, Callable[..., Any]]] = [
    ("aget", lambda s, mid, **kw: s.aget(mid, **kw)),
    ("ahistory", lambda s, mid, **kw: s.ahistory(mid, **kw)),
    ("aupdate", lambda s, mid, **kw: s.aupdate(mid, content="Bob likes chess", **kw)),
    ("asupersede", lambda s, mid, **kw: s.asupersede(mid, "Bob likes go", **kw)),
    ("adelete", lambda s, mid, **kw: s.adelete(mid, **kw)),
]


def test_get_of_another_users_id_needs_the_owner_or_any_user(store: MemoryStore) -> None:
    bobs = store.add("Bob plays the cello", user_id="bob")
    store.add("Alice plays the flute", user_id="alice")
    with pytest.raises(InvalidInputError, match="ANY_USER") as missing:
        store.get(bobs.id)
    assert missing.value.field == "user_id"
    with pytest.raises(MemoryNotFoundError):
        store.get(bobs.id, user_id="alice")
    assert store.get(bobs.id, user_id="bob").content == "Bob plays the cello"
    admin = store.get(bobs.id, user_id=ANY_USER)
    assert (admin.user_id, admin.content) == ("bob", "Bob plays the cello")


@pytest.mark.parametrize(("name", "call"), BY_ID, ids=[n for n, _ in BY_ID])
def test_every_by_id_call_refuses_a_missing_user_and_changes_nothing(
        store: MemoryStore, name: str, call: Callable[..., Any]) -> None:
    bobs = store.add("Bob plays the cello", user_id="bob")
    before = db_fingerprint(store)
    with pytest.raises(InvalidInputError, match="user_id") as missing:
        call(store, bobs.id)
    assert missing.value.field == "user_id"
    with pytest.raises(MemoryNotFoundError):
        call(store, bobs.id, user_id="alice")
    assert db_fingerprint(store) == before
    call(store, bobs.id, user_id=ANY_USER)  # the admin opt-in reaches it
    if name not in ("get", "history"):
        assert db_fingerprint(store) != before


@pytest.mark.parametrize(("name", "call"), ASYNC_BY_ID, ids=[n for n, _ in ASYNC_BY_ID])
async def test_async_twins_refuse_a_missing_user_too(
        store: MemoryStore, name: str, call: Callable[..., Any]) -> None:
    bobs = store.add("Bob plays the cello", user_id="bob")
    before = db_fingerprint(store)
    with pytest.raises(InvalidInputError, match="user_id"):
        await call(store, bobs.id)
    with pytest.raises(MemoryNotFoundError):
        await call(store, bobs.id, user_id="alice")
    assert db_fingerprint(store) == before
    await call(store, bobs.id, user_id=ANY_USER)


def test_any_user_still_cannot_add(store: MemoryStore) -> None:
    with pytest.raises(InvalidInputError, match="user_id"):
        store.apply([AddOp(content="Nobody's fact")], user_id=ANY_USER)
    assert store.count() == 0
