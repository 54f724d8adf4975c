"""The pipeline's one call also names each fact's entities: linked when the text has them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_persistent_memory import AddOp, InvalidInputError, MemoryManager, MemoryStore
from langchain_persistent_memory.entities import extract_entities
from langchain_persistent_memory.pipeline.model_answers import MemoryOperations
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings
from tests.support.fake_chat import ScriptedChatModel, tool_call_message


def test_model_entities_are_linked_when_the_fact_contains_them(store: MemoryStore) -> None:
    said = "btw I started at acme labs, the office is in Berlin"
    llm = ScriptedChatModel([tool_call_message("MemoryOperations", {"operations": [{
        "op": "ADD", "content": "The user works at acme labs in Berlin.", "evidence": said,
        "entities": ["acme labs", "Berlin", "Paris", 7]}]})])
    result = MemoryManager(store, llm).process([HumanMessage(said), AIMessage("Nice!")],
                                               user_id="alice")
    assert result.status == "applied" and result.llm_calls == 1
    [change] = result.operations
    linked = {e.key: e.memory_ids for e in store.entities("alice")}
    # "acme labs" is lower case (the extractor alone misses it); "Paris" is not in the fact.
    assert linked == {"acme labs": (change.memory_id,), "berlin": (change.memory_id,)}


def test_the_entities_field_is_one_optional_list_per_operation() -> None:
    schema = MemoryOperations.model_json_schema()
    action = schema["$defs"]["MemoryAction"]["properties"]["entities"]
    assert "entities" not in schema["$defs"]["MemoryAction"].get("required", [])
    assert len(json.dumps(action)) < 300  # a small addition to every prompt's schema


def test_store_ops_refuse_malformed_entity_lists(store: MemoryStore) -> None:
    for bad in ("Berlin", [""], ["x" * 300], [1]):
        try:
            store.apply([AddOp(content="The user lives in Berlin", entities=bad)],
                        user_id="u")
        except InvalidInputError as exc:
            assert exc.field == "entities"
        else:
            raise AssertionError(f"accepted {bad!r}")
    assert store.count("u") == 0
    store.apply([AddOp(content="the user likes acme tea", entities=["acme"])], user_id="u")
    assert [e.key for e in store.entities("u")] == ["acme"]


def _caroline_scores(store: MemoryStore, user_id: str) -> tuple[dict[str, float], ...]:
    query = "What class did Caroline start?"
    plain = {"mmr": False, "topic_weight": 0.0, "topic_focus": 0.0}  # the entity bonus alone
    return tuple({h.memory.content: h.score for h in store.search(
        query, user_id=user_id, k=5, **plain, **weight)} for weight in (
        {}, {"entity_weight": 0.0, "hop_weight": 0.0}))


def test_model_given_entities_count_in_ranking_also_after_reopen(
        store_url: str, embeddings: HashEmbeddings, tmp_path: Path) -> None:
    """A name the local extractor misses (a sentence's first word) but the model gave is
    linked in SQL, and the partition uses that link: the memory gains the mention bonus,
    in the writing process and in a new one that loads the user from SQL."""
    said = "Caroline here: I started a pottery class"
    linked = "Caroline started a pottery class."
    plain = "The user started a pottery class."
    assert extract_entities(linked) == []  # the extractor alone finds nothing
    llm = ScriptedChatModel([tool_call_message("MemoryOperations", {"operations": [
        {"op": "ADD", "content": linked, "evidence": said, "entities": ["Caroline"]},
        {"op": "ADD", "content": plain, "evidence": said}]})])
    with MemoryStore(store_url, embeddings=embeddings, index_path=tmp_path / "i.lpm") as store:
        store.add("The user likes tea.", user_id="u")  # the partition is loaded before
        store.search("tea", user_id="u")
        result = MemoryManager(store, llm).process([HumanMessage(said), AIMessage("Nice!")],
                                                   user_id="u")
        assert result.status == "applied"
        assert [e.key for e in store.entities("u")] == ["caroline"]
        assert index_mismatches(store) == []
        runs = [_caroline_scores(store, "u")]
    with MemoryStore(store_url, embeddings=embeddings, index_path=tmp_path / "i.lpm") as store:
        runs.append(_caroline_scores(store, "u"))  # reloaded from SQL
        assert index_mismatches(store) == []
    for boosted, off in runs:
        assert boosted[linked] == pytest.approx(off[linked] * 1.25)  # half of 0.5: a mention
        assert boosted[plain] == pytest.approx(off[plain])
