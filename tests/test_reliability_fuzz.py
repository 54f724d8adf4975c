"""Bad input, fuzzed: every public call either raises one of our typed errors (and changes
nothing) or stores the value and reads it back exactly. Nothing crashes the process or
leaves the store inconsistent. The pipeline's model-output parser gets the same treatment.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage

from langchain_persistent_memory import (
    ExtractionError,
    Memory,
    MemoryStore,
    PersistentMemoryError,
)
from langchain_persistent_memory.pipeline.checks import Limits
from langchain_persistent_memory.pipeline.consolidate import validate_merges
from langchain_persistent_memory.pipeline.extract import Evidence, validate_facts
from langchain_persistent_memory.pipeline.messages import TurnMessage
from langchain_persistent_memory.pipeline.reconcile import validate_operations
from langchain_persistent_memory.pipeline.recover import payload_of
from tests.support.consistency import history_mismatches, index_mismatches
from tests.support.embeddings import HashEmbeddings

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,  # stable in CI
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])

DEEP: dict[str, Any] = {"d": 1}
for _ in range(30):
    DEEP = {"d": [DEEP]}
# Any code point, lone surrogates and NUL included.
any_text = st.text(st.characters(codec=None, exclude_categories=[]), max_size=40)
nasty_text = st.one_of(
    any_text,
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", " ", "\t\n", "é" * 3,
                     "💥" * 10, "' OR 1=1 --", "%_\\", "a" * 100_001, "a " * 500_000]),
)
wrong_types = st.sampled_from([None, 0, 1.5, True, b"bytes", ["a"], {"a": 1}, object(),
                               float("nan")])
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                      st.floats(allow_nan=True, allow_infinity=True), any_text)
json_like = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(any_text, inner, max_size=3),
    st.tuples(inner), st.frozensets(st.integers(), max_size=2)), max_leaves=12)
metadata_st = st.one_of(st.none(), st.dictionaries(any_text, json_like, max_size=4),
                        st.dictionaries(st.integers(), st.integers(), max_size=2), wrong_types,
                        st.just(DEEP))
user_st = st.one_of(st.sampled_from(["alice", "Alice ", "ünï", "😀", "a" * 256, "a" * 257,
                                     "", " ", "a\nb", "a\x00", "\ud800", "%", "' OR 1=1"]),
                    any_text, wrong_types)
label_st = st.one_of(st.none(), nasty_text, wrong_types)
importance_st = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3),
                          wrong_types)


@pytest.fixture
def fuzz_store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore(f"sqlite:///{tmp_path / 'fuzz.db'}", embeddings=HashEmbeddings(),
                     index_path=tmp_path / "fuzz.lpm") as store:
        store.add("a first memory so the index exists", user_id="seed")
        yield store


def _is_typed(exc: BaseException) -> bool:
    return isinstance(exc, PersistentMemoryError)


def _assert_sound(store: MemoryStore) -> None:
    assert index_mismatches(store) == []
    assert history_mismatches(store) == []


def _check_add(store: MemoryStore, content: Any, user_id: Any, metadata: Any, category: Any,
               importance: Any, agent_id: Any) -> None:
    before = store.count(include_superseded=True)
    try:
        memory = store.add(content, user_id=user_id, metadata=metadata, category=category,
                           importance=importance, agent_id=agent_id)
    except Exception as exc:
        assert _is_typed(exc), f"untyped {type(exc).__name__}: {exc}"
        assert store.count(include_superseded=True) == before
        event(f"rejected: {getattr(exc, 'field', None)}")
    else:
        # pydantic decodes UTF-8 bytes given for the operation's str fields (documented
        # lax-mode behaviour); the value is then stored and read back as that text.
        category, agent_id = (v.decode() if isinstance(v, bytes) else v
                              for v in (category, agent_id))
        back = store.get(memory.id, user_id=user_id)
        assert isinstance(back, Memory)
        assert back.content == content
        assert back.user_id == user_id
        assert back.agent_id == agent_id
        if store.count(include_superseded=True) == before:  # identical text: deduplicated
            event("stored (duplicate of an existing memory)")
        else:
            event("stored")
            assert back.metadata == (metadata or {})
            assert back.category == (category.strip() if category else None)
            assert back.importance == importance
        hits = store.search_by_vector([1.0] * 64, user_id=user_id, k=10_000)
        assert memory.id in {h.memory.id for h in hits}
    _assert_sound(store)


clean_char = st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00")
clean_text = st.text(clean_char, min_size=1, max_size=60).filter(str.strip)
clean_id = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1,
                   max_size=40).filter(str.strip)
clean_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**62), 2**62),
              st.floats(allow_nan=False, allow_infinity=False), st.text(clean_char, max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(clean_char, max_size=8), inner, max_size=3)),
    max_leaves=10)
NASTY = {"content": st.one_of(nasty_text, wrong_types), "user_id": user_st,
         "metadata": metadata_st, "category": label_st, "importance": importance_st,
         "agent_id": st.one_of(st.none(), user_st)}


@st.composite
def add_args(draw: st.DrawFn) -> dict[str, Any]:
    """Valid arguments with at most one of them replaced by something nasty: so both
    outcomes (typed error, exact round trip) are exercised and each error has one cause."""
    args = {"content": draw(clean_text), "user_id": draw(clean_id),
            "metadata": draw(st.none() | st.dictionaries(st.text(clean_char, max_size=8),
                                                          clean_json, max_size=4)),
            "category": draw(st.none() | clean_text.filter(lambda t: len(t) <= 128)),
            "importance": draw(st.floats(0.0, 1.0)),
            "agent_id": draw(st.none() | clean_id)}
    bad = draw(st.sampled_from([None, *NASTY]))
    if bad is not None:
        args[bad] = draw(NASTY[bad])
    return args


@given(args=add_args())
@SETTINGS
def test_add_stores_exactly_or_raises_typed(fuzz_store: MemoryStore,
                                            args: dict[str, Any]) -> None:
    _check_add(fuzz_store, **args)


@pytest.mark.postgres
@given(args=add_args())
@settings(SETTINGS, max_examples=30)
def test_add_round_trips_on_postgres(postgres_url: str, tmp_path: Path,
                                     args: dict[str, Any]) -> None:
    with MemoryStore(postgres_url, embeddings=HashEmbeddings(),
                     index_path=tmp_path / "pg.lpm") as store:
        _check_add(store, **args)


def test_megabyte_text_round_trips(tmp_path: Path) -> None:
    text = ("line of a very long document é💥 " * 40_000)[:1_000_000]
    with MemoryStore(f"sqlite:///{tmp_path / 'big.db'}", embeddings=HashEmbeddings(),
                     max_content_chars=2_000_000) as store:
        memory = store.add(text, user_id="big")
        assert store.get(memory.id, user_id="big").content == text
        assert store.history(memory.id, user_id="big")[0].new_content == text
        _assert_sound(store)


ids_st = st.one_of(any_text, wrong_types, st.just("a" * 37))


@given(memory_id=ids_st, user_id=user_st, content=st.one_of(nasty_text, wrong_types),
       which=st.sampled_from(["get", "update", "supersede", "delete", "history"]))
@SETTINGS
def test_calls_by_id_raise_typed_and_change_nothing(fuzz_store: MemoryStore, memory_id: Any,
                                                    user_id: Any, content: Any,
                                                    which: str) -> None:
    before = fuzz_store.count(include_superseded=True)
    calls = {
        "get": lambda: fuzz_store.get(memory_id, user_id=user_id),
        "update": lambda: fuzz_store.update(memory_id, content=content, user_id=user_id),
        "supersede": lambda: fuzz_store.supersede(memory_id, content, user_id=user_id),
        "delete": lambda: fuzz_store.delete(memory_id, user_id=user_id),
        "history": lambda: fuzz_store.history(memory_id, user_id=user_id),
    }
    with pytest.raises(PersistentMemoryError):  # no such memory, or a bad argument
        calls[which]()
    assert fuzz_store.count(include_superseded=True) == before
    _assert_sound(fuzz_store)


filter_st = st.dictionaries(
    st.sampled_from(["category", "agent_id", "session_id", "metadata", "since", "until",
                     "mode", "candidates", "mmr", "bogus"]),
    st.one_of(nasty_text, wrong_types, metadata_st, st.lists(nasty_text, max_size=2)),
    max_size=3)


@given(query=st.one_of(nasty_text, wrong_types), user_id=user_st,
       k=st.one_of(st.integers(-5, 20_000), wrong_types), filters=filter_st)
@SETTINGS
def test_search_returns_own_hits_or_raises_typed(fuzz_store: MemoryStore, query: Any,
                                                 user_id: Any, k: Any,
                                                 filters: dict[str, Any]) -> None:
    try:
        hits = fuzz_store.search(query, user_id=user_id, k=k, **filters)
    except Exception as exc:
        assert _is_typed(exc), f"untyped {type(exc).__name__}: {exc}"
    else:
        assert all(h.memory.user_id == user_id for h in hits)
        assert len(hits) <= k


# ---------------------------------------------------------------- the model-output parser
HANDLES = {h: Memory.model_construct(id=h, user_id="u", content=text)
           for h, text in (("m1", "likes tea"), ("m2", "lives in Oslo"))}
TURN = datetime(2026, 1, 1, tzinfo=timezone.utc)
op_item = st.fixed_dictionaries({}, optional={
    "op": st.one_of(st.sampled_from(["ADD", "update", " SUPERSEDE ", "DELETE", "NONE", "nope"]),
                    json_leaf),
    "handle": st.one_of(st.sampled_from(["m1", "m2", " m1 ", "m3"]), json_leaf),
    "content": st.one_of(nasty_text, json_leaf),
    "category": st.one_of(st.sampled_from(["food", "x" * 41]), json_leaf),
    "importance": st.one_of(st.sampled_from([0.5, 7, "0.3", "high", 2**1100, -1e308]),
                            json_leaf),
    "valid_from": st.one_of(st.sampled_from(
        ["2024-05-01", "2030-01-01", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
         "2024-13-01", "yesterday", "2024-05-01Z"]), json_leaf),
    "sources": st.one_of(st.lists(st.sampled_from(["m1", "m2", "m9"]), max_size=3), json_leaf),
})
payload_st = st.one_of(
    st.fixed_dictionaries({"operations": st.one_of(st.lists(op_item, max_size=4), json_leaf)}),
    st.fixed_dictionaries({"facts": st.lists(op_item, max_size=4)}),
    st.fixed_dictionaries({"merges": st.lists(op_item, max_size=4)}),
    json_like,
)
answer_text = st.one_of(any_text, st.sampled_from([
    "", "   ", "{", "```json\n{\"operations\": []}\n```", "[" * 100_000 + "]" * 100_000,
    "{\"operations\": " + "[" * 50_000 + "]" * 50_000 + "}", "{\"facts\": [{}]}",
    "noise {\"operations\": [{\"op\": \"ADD\", \"content\": \"x\"}]} noise", "\ud800{}",
]))


@given(payload=payload_st, text=answer_text)
@settings(SETTINGS, max_examples=200)
# Found by fuzzing, kept as regressions (each raised OverflowError / RecursionError before).
@example(payload={"facts": [{"content": "x", "valid_from": "0001-01-01T00:00:00+14:00"}]},
         text="[" * 100_000)
@example(payload={"operations": [{"op": "ADD", "content": "x", "importance": 2**1100}]},
         text="")
@example(payload={"merges": [{"sources": ["m1"], "content": "x", "importance": -(2**1100)}]},
         text="")
def test_parser_raises_extraction_error_or_returns_valid_ops(payload: Any, text: str) -> None:
    limits = Limits()
    said = Evidence([TurnMessage("user", "x " + text[:200])])
    for parse in (lambda p, t: validate_operations(p, t, HANDLES, said, turn_time=TURN,
                                                   limits=limits),
                  lambda p, t: validate_facts(p, t, said, turn_time=TURN, limits=limits),
                  lambda p, t: validate_merges(p, t, HANDLES, limits=limits)):
        for source in (lambda: (payload, ""), lambda: payload_of(AIMessage(content=text))):
            try:
                planned = parse(*source()).ops
            except ExtractionError:
                continue
            for op in planned:
                assert op.handle is None or op.handle in HANDLES
                assert op.content is None or 0 < len(op.content) <= limits.max_fact_chars
                assert op.importance is None or 0.0 <= op.importance <= 1.0
                assert op.valid_from is None or op.valid_from <= TURN
                assert all(s in HANDLES for s in op.sources)
                assert math.isfinite(op.importance or 0.0)
