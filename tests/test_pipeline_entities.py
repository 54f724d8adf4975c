"""The pipeline's one call also names each fact's entities: linked when the text has them."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, HumanMessage

from langchain_persistent_memory import AddOp, InvalidInputError, MemoryManager, MemoryStore
from langchain_persistent_memory.pipeline.model_answers import MemoryOperations
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
    assert len(json.dumps(action)) < 250  # a small addition to every prompt's schema


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
