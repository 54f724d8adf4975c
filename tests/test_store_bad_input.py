"""Every bad input raises its typed error and leaves the stored data exactly as it was.

Why: callers (and language models) send garbage; a memory store that half-writes or raises a
driver error instead of saying what was wrong corrupts long-term state. Each case runs on
SQLite and PostgreSQL against one seeded store per backend and compares a full fingerprint
of the database before and after, and checks that the embedding model was never called.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from langchain_persistent_memory import (
    ANY_USER,
    AddOp,
    DeleteOp,
    InvalidInputError,
    MemoryNotFoundError,
    MemoryStore,
    PersistentMemoryError,
    SupersedeOp,
    UpdateOp,
)
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings
from tests.support.pg_schema import fresh_schema
from tests.support.snapshots import db_fingerprint

LIMIT = 1_000  # max_content_chars of the seeded store: "huge" is anything above


class Seeded:
    """A store with two users, a superseded memory and known ids, shared by a module."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.mine = store.add("Likes hiking in the Alps", user_id="alice", category="hobby")
        old = store.add("Lives in Lisbon", user_id="alice")
        self.new = store.supersede(old.id, "Lives in Porto", user_id="alice")
        self.old = store.get(old.id, user_id="alice")
        self.theirs = store.add("Plays the cello", user_id="bob")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Seeded]:
    tmp: Path = tmp_path_factory.mktemp("bad_input")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp / 'm.db'}"
        else:
            url = stack.enter_context(fresh_schema(
                request.getfixturevalue("postgres_server_url")))
        store = MemoryStore(url, embeddings=HashEmbeddings(), index_path=tmp / "i.lpm",
                            max_content_chars=LIMIT)
        stack.callback(store.close)
        yield Seeded(store)


class Unserialisable:
    pass


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


BAD_CONTENT = {
    "empty": "", "whitespace": " \n\t ", "none": None, "int": 42, "bytes": b"text",
    "list": ["a"], "huge": "x" * (LIMIT + 1), "nul": "a\x00b", "surrogate": "a\ud800b",
}
BAD_USER = {"none": None, "empty": "", "whitespace": "   ", "int": 7, "control": "a\nb",
            "long": "u" * 257}
BAD_IMPORTANCE = {"negative": -0.01, "above one": 1.01, "nan": float("nan"),
                  "inf": float("inf"), "text": "high", "bool": True}
BAD_METADATA = {
    "string": "not a dict", "list": [1, 2], "object value": {"k": Unserialisable()},
    "nan": {"k": float("nan")}, "int key": {1: "x"}, "tuple": {"t": (1, 2)},
    "datetime": {"when": datetime(2024, 1, 1)}, "set": {"s": {1}},
    "too deep": {"a": _nested(25)},
    "huge": {"blob": "x" * 70_000},
    # Plain-looking values with one part that would not survive (the fast path's edges).
    "huge float": {"f": 2.0**60}, "inf": {"f": float("inf")},
    "tuple deep in plain": {"a": [{"ok": 1}, {"t": (1,)}]}, "nul": {"k": "a\x00b"},
    "lone surrogate": {"k": "\ud800"}, "huge plain nested": {"a": [{"b": "x" * 70_000}]},
}


def _cases() -> dict[str, tuple[type[Exception], Callable[[Seeded], Any]]]:
    cases: dict[str, tuple[type[Exception], Callable[[Seeded], Any]]] = {}
    for name, value in BAD_CONTENT.items():
        cases[f"add content {name}"] = (InvalidInputError, lambda s, v=value: s.store.add(
            v, user_id="alice"))
        cases[f"update content {name}"] = (InvalidInputError, lambda s, v=value: s.store.update(
            s.mine.id, content=v, user_id=ANY_USER) if v is not None else s.store.update(s.mine.id,
                    user_id=ANY_USER))
        cases[f"supersede content {name}"] = (InvalidInputError, lambda s, v=value:
                                              s.store.supersede(s.mine.id, v, user_id=ANY_USER))
    for name, value in BAD_USER.items():
        cases[f"add user {name}"] = (InvalidInputError, lambda s, v=value: s.store.add(
            "valid text", user_id=v))
        cases[f"search user {name}"] = (InvalidInputError, lambda s, v=value: s.store.search(
            "hiking", user_id=v))
        cases[f"forget user {name}"] = (InvalidInputError, lambda s, v=value:
                                        s.store.forget_user(v))
    for name, value in BAD_IMPORTANCE.items():
        cases[f"add importance {name}"] = (InvalidInputError, lambda s, v=value: s.store.add(
            "valid text", user_id="alice", importance=v))
        cases[f"update importance {name}"] = (InvalidInputError, lambda s, v=value:
                                              s.store.update(s.mine.id, importance=v,
                                                      user_id=ANY_USER))
    for name, value in BAD_METADATA.items():
        cases[f"add metadata {name}"] = (InvalidInputError, lambda s, v=value: s.store.add(
            "valid text", user_id="alice", metadata=v))
        cases[f"update metadata {name}"] = (InvalidInputError, lambda s, v=value:
                                            s.store.update(s.mine.id, metadata=v, user_id=ANY_USER))
    cases.update({
        "add category empty": (InvalidInputError, lambda s: s.store.add(
            "valid text", user_id="alice", category=" ")),
        "add agent empty": (InvalidInputError, lambda s: s.store.add(
            "valid text", user_id="alice", agent_id="")),
        "add valid_from not a time": (InvalidInputError, lambda s: s.store.add(
            "valid text", user_id="alice", valid_from="yesterday")),  # type: ignore[arg-type]
        "add id too long": (InvalidInputError, lambda s: s.store.apply(
            [AddOp(content="valid text", id="i" * 37)], user_id="alice")),
        "add id taken": (InvalidInputError, lambda s: s.store.apply(
            [AddOp(content="valid text", id=s.theirs.id)], user_id="alice")),
        "add embedding wrong size": (PersistentMemoryError, lambda s: s.store.apply(
            [AddOp(content="valid text", embedding=[0.1] * 3)], user_id="alice")),
        "add embedding nan": (InvalidInputError, lambda s: s.store.apply(
            [AddOp(content="valid text", embedding=[float("nan")] * 64)], user_id="alice")),
        "add_many one bad": (InvalidInputError, lambda s: s.store.add_many(
            ["fine", "also fine", ""], user_id="alice")),
        "add_many not a list": (InvalidInputError, lambda s: s.store.add_many(
            "just a string", user_id="alice")),
        "add_many missing content": (InvalidInputError, lambda s: s.store.add_many(
            [{"category": "x"}], user_id="alice")),
        "update nothing": (InvalidInputError, lambda s: s.store.update(s.mine.id,
                user_id=ANY_USER)),
        "update unknown id": (MemoryNotFoundError, lambda s: s.store.update(
            str(uuid.uuid4()), content="valid text", user_id=ANY_USER)),
        "update other user's": (MemoryNotFoundError, lambda s: s.store.update(
            s.theirs.id, content="hijacked", user_id="alice")),
        "update empty id": (InvalidInputError, lambda s: s.store.update("", content="x",
                user_id=ANY_USER)),
        "supersede twice": (InvalidInputError, lambda s: s.store.supersede(
            s.old.id, "Lives in Faro", user_id=ANY_USER)),
        "supersede other user's": (MemoryNotFoundError, lambda s: s.store.supersede(
            s.theirs.id, "hijacked", user_id="alice")),
        "delete unknown id": (MemoryNotFoundError, lambda s: s.store.delete(str(uuid.uuid4()),
                user_id=ANY_USER)),
        "delete other user's": (MemoryNotFoundError, lambda s: s.store.delete(
            s.theirs.id, user_id="alice")),
        "get unknown id": (MemoryNotFoundError, lambda s: s.store.get(str(uuid.uuid4()),
                user_id=ANY_USER)),
        "get other user's": (MemoryNotFoundError, lambda s: s.store.get(
            s.theirs.id, user_id="alice")),
        "get non-string id": (InvalidInputError, lambda s: s.store.get(123,
                user_id=ANY_USER)),  # type: ignore
        "history unknown id": (MemoryNotFoundError, lambda s: s.store.history("nope",
                user_id=ANY_USER)),
        "history other user's": (MemoryNotFoundError, lambda s: s.store.history(
            s.theirs.id, user_id="alice")),
        "apply add without user": (InvalidInputError, lambda s: s.store.apply(
            [AddOp(content="valid text")], user_id=None)),
        "apply not a list": (InvalidInputError, lambda s: s.store.apply(
            AddOp(content="x"), user_id="alice")),  # type: ignore[arg-type]
        "apply unknown op": (InvalidInputError, lambda s: s.store.apply(
            ["add this"], user_id="alice")),  # type: ignore[list-item]
        "apply mixed, last bad": (MemoryNotFoundError, lambda s: s.store.apply(
            [AddOp(content="new fact"), UpdateOp(memory_id=s.mine.id, content="changed"),
             SupersedeOp(memory_id=s.new.id, content="Lives in Braga"),
             DeleteOp(memory_id=s.theirs.id)], user_id="alice")),
        "search empty query": (InvalidInputError, lambda s: s.store.search(
            " ", user_id="alice")),
        "search non-string query": (InvalidInputError, lambda s: s.store.search(
            None, user_id="alice")),  # type: ignore[arg-type]
        "search k zero": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", k=0)),
        "search k bool": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", k=True)),
        "search k text": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", k="5")),  # type: ignore[arg-type]
        "search unknown filter": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", colour="red")),
        "search metadata filter list": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", metadata={"k": [1]})),
        "search since not a time": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", since="2024")),
        "list bad user": (InvalidInputError, lambda s: s.store.list("")),
        "count bad user": (InvalidInputError, lambda s: s.store.count("")),
        "reembed batch size": (InvalidInputError, lambda s: s.store.reembed(batch_size=-1)),
        "export bad user": (InvalidInputError, lambda s: s.store.export_jsonl(
            "/dev/null", user_id="")),
        "add embedding all zeros": (InvalidInputError, lambda s: s.store.apply(
            [AddOp(content="valid text", embedding=[0.0] * 64)], user_id="alice")),
        "add embedding inf": (InvalidInputError, lambda s: s.store.apply(
            [AddOp(content="valid text", embedding=[float("inf")] * 64)], user_id="alice")),
        "search min_score text": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", min_score="a")),  # type: ignore[arg-type]
        "search min_score nan": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", min_score=float("nan"))),
        "search category int": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", category=5)),  # type: ignore[arg-type]
        "search category list of int": (InvalidInputError, lambda s: s.store.search(
            "hiking", user_id="alice", category=["hobby", 5])),  # type: ignore[list-item]
        "list limit text": (InvalidInputError, lambda s: s.store.list(
            "alice", limit="a")),  # type: ignore[arg-type]
        "list limit negative": (InvalidInputError, lambda s: s.store.list("alice", limit=-1)),
        "list limit float": (InvalidInputError, lambda s: s.store.list(
            "alice", limit=2.5)),  # type: ignore[arg-type]
        "list offset negative": (InvalidInputError, lambda s: s.store.list("alice", offset=-5)),
        "list category int": (InvalidInputError, lambda s: s.store.list(
            "alice", category=5)),
        "search_by_vector text": (InvalidInputError, lambda s: s.store.search_by_vector(
            ["a"] * 32, user_id="alice")),
        "search_by_vector nan": (InvalidInputError, lambda s: s.store.search_by_vector(
            [float("nan")] * 64, user_id="alice")),
        "search_by_vector nested": (InvalidInputError, lambda s: s.store.search_by_vector(
            [[0.1] * 64], user_id="alice")),
        "search_by_vector min_score text": (InvalidInputError, lambda s:
                                            s.store.search_by_vector(
            [0.1] * 64, user_id="alice", min_score="a")),  # type: ignore[arg-type]
    })
    return cases


CASES = _cases()
# Found inside the write transaction (ids must be looked up), so after the new text was
# embedded: the model may have been called, the data must still be untouched.
FOUND_IN_SQL = {"add id taken", "apply mixed, last bad", "supersede other user's",
                "supersede twice", "update other user's", "update unknown id"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_raises_typed_error_and_changes_nothing(seeded: Seeded, case: str) -> None:
    error, call = CASES[case]
    embeddings = seeded.store.embeddings
    assert isinstance(embeddings, HashEmbeddings)
    before = db_fingerprint(seeded.store)
    assert index_mismatches(seeded.store) == []  # loads every user's partition
    loaded = seeded.store.index_info()
    calls = len(embeddings.calls)
    with pytest.raises(error) as info:
        call(seeded)
    assert isinstance(info.value, PersistentMemoryError)  # one root for every error
    assert db_fingerprint(seeded.store) == before
    assert seeded.store.index_info() == loaded and index_mismatches(seeded.store) == []
    if case not in FOUND_IN_SQL:
        assert len(embeddings.calls) == calls, "rejected only after calling the model"


def test_errors_subclass_builtins_and_carry_context(seeded: Seeded) -> None:
    with pytest.raises(ValueError) as bad:
        seeded.store.add("x", user_id="alice", importance=2)
    assert bad.value.field == "importance"  # type: ignore[attr-defined]
    with pytest.raises(KeyError) as missing:
        seeded.store.get(seeded.theirs.id, user_id="alice")
    assert missing.value.memory_id == seeded.theirs.id  # type: ignore[attr-defined]
    assert missing.value.user_id == "alice"  # type: ignore[attr-defined]
    assert "alice" in str(missing.value) and "bob" not in str(missing.value)


def test_content_limit_is_configurable(seeded: Seeded) -> None:
    assert seeded.store.max_content_chars == LIMIT
    exact = seeded.store.add("y" * LIMIT, user_id="limits")  # the limit itself is fine
    try:
        assert len(seeded.store.get(exact.id, user_id="limits").content) == LIMIT
    finally:
        seeded.store.forget_user("limits")


# ---------------------------------------------------------------- times no calendar holds
@pytest.mark.parametrize("query", ["Rome 3000 years ago", "what happened 1000000000 days ago",
                                   "hiking 99999999999999999999 weeks ago"])
@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_query_naming_a_time_before_year_one_still_searches(
        store: MemoryStore, query: str, mode: str) -> None:
    """Any chat user can type these; they used to raise OverflowError out of every search."""
    store.add("Rome was founded long ago", user_id="alice")
    hits = store.search(query, user_id="alice", mode=mode)
    assert [h.memory.content for h in hits] == ["Rome was founded long ago"]
    from langchain_persistent_memory import MemoryRetriever

    docs = MemoryRetriever(store=store, user_id="alice", filters={"mode": mode}).invoke(
        query)  # what every chat turn through the integrations runs
    assert [d.page_content for d in docs] == ["Rome was founded long ago"]


def test_times_ago_parse_until_the_calendar_runs_out() -> None:
    from langchain_persistent_memory.retrieval.dates import parse_query_time
    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    found = parse_query_time("3 years ago", now)
    assert found is not None and datetime(2023, 11, 30, tzinfo=timezone.utc) in found
    assert parse_query_time("1500 years ago", now) is not None
    for query in ("Rome 3000 years ago", "1000000000 days ago", "12345678901234567890 days ago"):
        assert parse_query_time(query, now) is None


# ---------------------------------------------------------------- a broken embedding model
class BrokenEmbeddings(HashEmbeddings):
    """Returns what some real models and servers have returned on a bad day."""

    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault = fault

    def _bad(self, n: int) -> Any:
        row = {"nan": [float("nan")] * 64, "inf": [float("inf")] * 64, "zero": [0.0] * 64,
               "text": ["a"] * 64, "none": [None] * 64}.get(self.fault)
        if row is not None:
            return [list(row) for _ in range(n)]
        if self.fault == "ragged":
            return [[0.1] * 63 + [[0.1]]] + [[0.1] * (64 - i) for i in range(1, n)]
        if self.fault == "too few":
            return [[0.1] * 64 for _ in range(n - 1)]
        return None  # "nothing"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return self._bad(len(texts))  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        bad = self._bad(2)
        return bad[0] if bad and self.fault not in ("zero", "too few") else [float("nan")] * 64


FAULTS = ["nan", "inf", "zero", "text", "none", "ragged", "too few", "nothing"]


@pytest.mark.parametrize("fault", FAULTS)
def test_unusable_vectors_from_the_model_are_refused_before_writing(
        store_url: str, tmp_path: Path, fault: str) -> None:
    from langchain_persistent_memory import EmbeddingModelError
    with MemoryStore(store_url, embeddings=HashEmbeddings(), index_path=tmp_path / "i") as good:
        good.add("Likes hiking in the Alps", user_id="alice")
    broken = BrokenEmbeddings(fault)
    with MemoryStore(store_url, embeddings=broken, index_path=tmp_path / "i",
                     check_embedding_model=False) as store:
        before = db_fingerprint(store)
        for write in (lambda: store.add("Lives in Porto", user_id="alice"),
                      lambda: store.add_many(["Lives in Porto", "Has a cat"], user_id="alice")):
            with pytest.raises(EmbeddingModelError):
                write()
        with pytest.raises(EmbeddingModelError):
            store.search("hiking", user_id="alice")
        assert db_fingerprint(store) == before
        assert [m.content for m in store.list("alice")] == ["Likes hiking in the Alps"]


def test_what_the_store_holds_always_exports_to_a_file_that_imports(
        store_url: str, tmp_path: Path) -> None:
    """Zero and non-finite vectors used to be stored silently; the export then held lines
    import_jsonl refuses, so the whole file was lost (0 of N restored)."""
    zero = BrokenEmbeddings("zero")
    with MemoryStore(store_url, embeddings=HashEmbeddings(), index_path=tmp_path / "i") as store:
        store.add("Likes hiking in the Alps", user_id="alice")
        with pytest.raises(InvalidInputError):
            store.apply([AddOp(content="hand-made vector", embedding=[0.0] * 64)],
                        user_id="alice")
        store.embeddings = zero
        with pytest.raises(PersistentMemoryError):
            store.add("nothing but a zero vector", user_id="alice")
        assert store.export_jsonl(tmp_path / "out.jsonl") == 1
    with MemoryStore(f"sqlite:///{tmp_path / 'restored.db'}", embeddings=HashEmbeddings(),
                     index_path=tmp_path / "r") as restored:
        assert restored.import_jsonl(tmp_path / "out.jsonl") == 1
        assert [m.content for m in restored.list("alice")] == ["Likes hiking in the Alps"]


def test_deeply_nested_import_line_is_a_typed_error(sqlite_store: MemoryStore,
                                                     tmp_path: Path) -> None:
    sqlite_store.add("Likes hiking in the Alps", user_id="alice")
    path = tmp_path / "export.jsonl"
    sqlite_store.export_jsonl(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.append('{"type": "memory", "metadata": ' + "[" * 200_000 + "]" * 200_000 + "}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = db_fingerprint(sqlite_store)
    with pytest.raises(InvalidInputError, match="line 4: JSON nested too deeply"):
        sqlite_store.import_jsonl(path, on_conflict="skip")
    assert db_fingerprint(sqlite_store) == before


# ---------------------------------------------------------------- metadata filters
ROWS = {"tennis": {"prio": 1}, "chess": {"prio": True}, "hiking": {"prio": "high"},
        "rowing": {"prio": "1"}, "golf": {"prio": 1.0}, "nested": {"a": {"b": 1}},
        "dotted": {'a"."b': 2, 'a"b': 3, "a.b": 4}}


@pytest.fixture
def tagged(store: MemoryStore) -> MemoryStore:
    for sport, metadata in ROWS.items():
        store.add(f"Plays {sport}", user_id="alice", metadata=metadata)
    return store


@pytest.mark.parametrize(("metadata", "expected"), [
    ({"prio": 1}, {"tennis", "golf"}),  # numbers compare as numbers: 1 == 1.0
    ({"prio": 1.0}, {"tennis", "golf"}),
    ({"prio": True}, {"chess"}),  # a bool is not the number 1
    ({"prio": False}, set()),
    ({"prio": "1"}, {"rowing"}),  # nor is the string "1"
    ({"prio": "high"}, {"hiking"}),
    ({'a"."b': 1}, set()),  # a plain key, not a path into {"a": {"b": 1}}
    ({'a"."b': 2}, {"dotted"}),
    ({'a"b': 3}, {"dotted"}),  # used to raise OperationalError on SQLite
    ({"a.b": 4}, {"dotted"}),
    ({"a.b": 1}, set()),
    ({"$.a": 1}, set()),
    ({"prio": 1, "a.b": 4}, set()),
])
def test_metadata_filters_match_plain_keys_and_exact_types_on_every_backend(
        tagged: MemoryStore, metadata: dict[str, Any], expected: set[str]) -> None:
    def sports(memories: Any) -> set[str]:
        return {m.content.removeprefix("Plays ") for m in memories}
    assert sports(tagged.list("alice", metadata=metadata)) == expected
    for mode in ("hybrid", "dense", "keyword"):
        hits = tagged.search("Plays", user_id="alice", k=20, mode=mode, metadata=metadata)
        assert sports(h.memory for h in hits) <= expected
        if mode != "keyword":  # every row contains the word, dense finds them all
            assert sports(h.memory for h in hits) == expected, mode
