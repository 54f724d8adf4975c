"""MemoryManager with a scripted chat model: every operation, end to end into a real store.

Why: these tests pin what one turn does to the store (rows, history, index) for each of
ADD / UPDATE / SUPERSEDE / DELETE / NONE, and the promises around the call itself: one call
per turn, none for empty or duplicate turns, handles instead of ids, dates, token counts.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_persistent_memory import ANY_USER, EventType, MemoryManager, MemoryStore
from tests.support.fake_chat import ScriptedChatModel, tool_call_message

TOOL = "MemoryOperations"
WHEN = datetime(2026, 3, 14, 10, 30, tzinfo=timezone.utc)


def ops(*operations: dict[str, Any]) -> AIMessage:
    return tool_call_message(TOOL, {"operations": list(operations)})


def handles_in(messages: list[BaseMessage]) -> dict[str, str]:
    """Handle -> memory text, as shown to the model in the last prompt."""
    return dict(re.findall(r"^\[(m\d+)\] \([^)]*\) (.*)$", messages[-1].text, re.M))


def seed(store: MemoryStore, user: str, *texts: str) -> list[str]:
    return [store.add(t, user_id=user, category="misc").id for t in texts]


def test_add_stores_extracted_fact_with_category_importance_and_dates(store: MemoryStore):
    llm = ScriptedChatModel([ops({"op": "ADD", "content": "The user is vegetarian.",
                                  "category": "Preference", "importance": 0.7})])
    result = MemoryManager(store, llm).process(
        [HumanMessage("btw I'm vegetarian"), AIMessage("Noted!")], user_id="alice",
        agent_id="chef", session_id="s1", timestamp=WHEN)
    assert result.status == "applied" and result.llm_calls == 1
    [change] = result.operations
    assert change.action == "add"
    stored = store.get(change.memory_id, user_id="alice")
    assert stored.content == "The user is vegetarian."
    assert (stored.category, stored.importance) == ("preference", 0.7)
    assert (stored.agent_id, stored.session_id, stored.valid_from) == ("chef", "s1", WHEN)
    assert store.search("vegetarian", user_id="alice")[0].memory.id == stored.id


def test_update_refines_in_place_and_records_history(store: MemoryStore):
    [mid] = seed(store, "alice", "The user has a dog.")
    llm = ScriptedChatModel([lambda msgs: ops({
        "op": "UPDATE", "handle": next(h for h, t in handles_in(msgs).items() if "dog" in t),
        "content": "The user has a dog named Rex."})])
    result = MemoryManager(store, llm).process("my dog is called Rex", user_id="alice")
    [change] = result.operations
    assert (change.action, change.memory_id) == ("update", mid)
    assert change.previous is not None and change.previous.content == "The user has a dog."
    assert store.get(mid, user_id=ANY_USER).content == "The user has a dog named Rex."
    assert [e.event for e in store.history(mid,
            user_id=ANY_USER)] == [EventType.ADD, EventType.UPDATE]


def test_supersede_keeps_old_row_with_valid_to(store: MemoryStore):
    [old] = seed(store, "alice", "The user lives in Paris.")
    llm = ScriptedChatModel([ops({"op": "SUPERSEDE", "handle": "m1",
                                  "content": "The user lives in Berlin.",
                                  "valid_from": "2026-03-01"})])
    result = MemoryManager(store, llm).process("I moved from Paris to Berlin on March 1st",
                                               user_id="alice", timestamp=WHEN)
    [change] = result.operations
    assert change.action == "supersede" and change.previous.id == old
    assert store.get(old, user_id=ANY_USER).valid_to == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert store.get(old, user_id=ANY_USER).superseded_by == change.memory_id
    hits = store.search("where does the user live", user_id="alice")
    assert [h.memory.content for h in hits] == ["The user lives in Berlin."]
    assert EventType.SUPERSEDE in [e.event for e in store.history(old, user_id=ANY_USER)]


def test_delete_removes_from_search_and_index(store: MemoryStore):
    address, _ = seed(store, "alice", "The user lives at 12 Rose Street.", "The user likes tea.")
    llm = ScriptedChatModel([lambda msgs: ops({
        "op": "DELETE", "handle": next(h for h, t in handles_in(msgs).items() if "Rose" in t)})])
    store.search("tea", user_id="alice")  # loads alice's partition into this process
    before = store.stats()["indexed_vectors"]
    result = MemoryManager(store, llm).process("please forget my address", user_id="alice")
    assert [c.action for c in result.operations] == ["delete"]
    assert all(h.memory.id != address for h in
               store.search("Rose Street address", user_id="alice", include_superseded=True))
    assert store.stats()["indexed_vectors"] == before - 1
    assert store.history(address, user_id=ANY_USER)[-1].event == EventType.DELETE


def test_none_writes_nothing(store: MemoryStore):
    [mid] = seed(store, "alice", "The user likes tea.")
    llm = ScriptedChatModel([ops({"op": "NONE", "handle": "m1"})])
    result = MemoryManager(store, llm).process("as I said, I like tea", user_id="alice")
    assert [(c.action, c.memory_id) for c in result.operations] == [("none", mid)]
    assert not result.changed and store.count("alice") == 1


def test_several_operations_commit_together(sqlite_store: MemoryStore):
    old, _ = seed(sqlite_store, "alice", "The user uses VS Code.", "The user has a cat.")
    llm = ScriptedChatModel([lambda msgs: ops(
        {"op": "SUPERSEDE", "handle": _h(msgs, "VS Code"), "content": "The user uses NeoVim."},
        {"op": "DELETE", "handle": _h(msgs, "cat")},
        {"op": "ADD", "content": "The user works at Acme.", "category": "work"},
    )])
    result = MemoryManager(sqlite_store, llm).process(
        "switched VS Code for NeoVim, no cat any more, and I now work at Acme", user_id="alice")
    assert sorted(c.action for c in result.operations) == ["add", "delete", "supersede"]
    current = sorted(m.content for m in sqlite_store.list("alice"))
    assert current == ["The user uses NeoVim.", "The user works at Acme."]
    assert sqlite_store.get(old, user_id=ANY_USER).valid_to is not None


def _h(messages: list[BaseMessage], needle: str) -> str:
    return next(h for h, t in handles_in(messages).items() if needle in t)


def test_prompt_shows_handles_and_timestamp_never_ids(sqlite_store: MemoryStore):
    ids = seed(sqlite_store, "alice", "The user lives in Paris.")
    llm = ScriptedChatModel([ops()])
    MemoryManager(sqlite_store, llm).process("I went hiking last week", user_id="alice",
                                             timestamp=WHEN)
    prompt = "\n".join(m.text for m in llm.calls[0])
    assert "[m1]" in prompt and ids[0] not in prompt
    assert "2026-03-14" in prompt


def test_relative_date_from_model_becomes_valid_from(sqlite_store: MemoryStore):
    llm = ScriptedChatModel([ops({"op": "ADD", "content": "The user started a new job at "
                                  "Acme on 2026-03-07.", "valid_from": "2026-03-07"})])
    result = MemoryManager(sqlite_store, llm).process("I started at Acme last Saturday",
                                                      user_id="alice", timestamp=WHEN)
    assert result.operations[0].memory.valid_from == datetime(2026, 3, 7, tzinfo=timezone.utc)


def test_future_valid_from_is_clamped_to_the_turn(sqlite_store: MemoryStore):
    llm = ScriptedChatModel([ops({"op": "ADD", "content": "The user plans to move.",
                                  "valid_from": "2030-01-01"})])
    result = MemoryManager(sqlite_store, llm).process("I'll move in 2030", user_id="alice",
                                                      timestamp=WHEN)
    assert result.operations[0].memory.valid_from == WHEN


def test_empty_turn_makes_no_call(sqlite_store: MemoryStore):
    llm = ScriptedChatModel([])
    manager = MemoryManager(sqlite_store, llm)
    for turn in ([], "   ", [{"role": "assistant", "content": "Hello! How can I help?"}]):
        result = manager.process(turn, user_id="alice")
        assert result.status == "empty" and result.llm_calls == 0
    assert llm.call_count == 0


def test_exact_duplicate_turn_makes_no_call(sqlite_store: MemoryStore):
    [mid] = seed(sqlite_store, "alice", "I like green tea")
    llm = ScriptedChatModel([])
    result = MemoryManager(sqlite_store, llm).process("I like green tea", user_id="alice")
    assert result.status == "duplicate" and llm.call_count == 0
    assert [(c.action, c.memory_id, c.duplicate) for c in result.operations] == [
        ("none", mid, True)]


def test_add_of_known_text_is_not_duplicated(sqlite_store: MemoryStore):
    [mid] = seed(sqlite_store, "alice", "The user is vegetarian.")
    llm = ScriptedChatModel([ops({"op": "ADD", "content": "The user is vegetarian."},
                                 {"op": "ADD", "content": "The user is vegetarian."})])
    result = MemoryManager(sqlite_store, llm).process("I'm vegetarian", user_id="alice")
    assert [(c.action, c.memory_id) for c in result.operations] == [("none", mid)]
    assert sqlite_store.count("alice") == 1


def test_small_talk_with_no_operations(sqlite_store: MemoryStore):
    llm = ScriptedChatModel([ops()])
    result = MemoryManager(sqlite_store, llm, skip_small_talk=False).process(
        "hi, how are you?", user_id="alice")
    assert result.status == "applied" and result.operations == () and result.llm_calls == 1
    assert sqlite_store.count("alice") == 0


class _RunNames(BaseCallbackHandler):
    def __init__(self) -> None:
        self.names: list[str] = []
        self.tokens = 0

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.names.append(kwargs.get("name") or "")

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.names.append(kwargs.get("name") or "")


def test_tokens_counted_and_runs_named(sqlite_store: MemoryStore):
    usage = {"input_tokens": 321, "output_tokens": 12, "total_tokens": 333}
    reply = ops({"op": "ADD", "content": "The user likes jazz."})
    llm = ScriptedChatModel([reply.model_copy(update={"usage_metadata": usage})])
    handler = _RunNames()
    manager = MemoryManager(sqlite_store, llm, config={"callbacks": [handler]})
    result = manager.process("I love jazz", user_id="alice")
    assert (result.llm_calls, result.input_tokens, result.output_tokens) == (1, 321, 12)
    assert "lpm.extract_and_reconcile" in handler.names
    assert result.duration_ms >= result.model_ms > 0


def test_two_call_mode_extracts_then_reconciles(sqlite_store: MemoryStore):
    [old] = seed(sqlite_store, "alice", "The user lives in Paris.")
    llm = ScriptedChatModel([
        tool_call_message("ExtractedFacts", {"facts": [{"content": "The user lives in Rome."}]}),
        lambda msgs: ops({"op": "SUPERSEDE", "handle": _h(msgs, "Paris"),
                          "content": "The user lives in Rome."}),
    ])
    result = MemoryManager(sqlite_store, llm, two_call=True).process(
        "I moved to Rome", user_id="alice")
    assert result.llm_calls == 2
    assert [c.action for c in result.operations] == ["supersede"]
    assert sqlite_store.get(old, user_id=ANY_USER).valid_to is not None
    assert "The user lives in Rome." in llm.calls[1][-1].text


def test_two_call_mode_stops_after_empty_extraction(sqlite_store: MemoryStore):
    llm = ScriptedChatModel([tool_call_message("ExtractedFacts", {"facts": []})])
    result = MemoryManager(sqlite_store, llm, two_call=True).process("I had a nice day",
                                                                     user_id="alice")
    assert result.llm_calls == 1 and result.operations == ()


class _AsyncOnlyModel(ScriptedChatModel):
    """Fails on the sync path, so passing tests prove aprocess awaits the model."""

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise AssertionError("aprocess must not call the sync model path")

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next_reply(messages))])


async def test_aprocess_awaits_the_model(sqlite_store: MemoryStore):
    [old] = seed(sqlite_store, "alice", "The user lives in Paris.")
    llm = _AsyncOnlyModel([ops({"op": "SUPERSEDE", "handle": "m1",
                                "content": "The user lives in Oslo."})])
    result = await MemoryManager(sqlite_store, llm).aprocess("moved to Oslo", user_id="alice")
    assert [c.action for c in result.operations] == ["supersede"]
    assert (await sqlite_store.aget(old, user_id=ANY_USER)).valid_to is not None


def test_users_never_see_each_other(store: MemoryStore):
    seed(store, "bob", "The user lives in Berlin.")
    seed(store, "alice", "The user lives in Paris.")
    llm = ScriptedChatModel([ops({"op": "SUPERSEDE", "handle": "m1",
                                  "content": "The user lives in Rome."})])
    MemoryManager(store, llm).process("I live in Rome now, not Berlin", user_id="alice")
    prompt = llm.calls[0][-1].text
    assert "Paris" in prompt and "Berlin." not in prompt.split("<conversation>")[0]
    assert [m.content for m in store.list("bob")] == ["The user lives in Berlin."]
    assert [m.content for m in store.list("alice")] == ["The user lives in Rome."]


def test_two_call_mode_forwards_forget_requests(sqlite_store: MemoryStore):
    [address] = seed(sqlite_store, "alice", "The user lives at 12 Rose Street.")
    llm = ScriptedChatModel([
        tool_call_message("ExtractedFacts", {"facts": [], "forget": ["the user's address"]}),
        lambda msgs: ops({"op": "DELETE", "handle": _h(msgs, "Rose Street")}),
    ])
    result = MemoryManager(sqlite_store, llm, two_call=True).process(
        "forget my address please", user_id="alice")
    assert "asks to forget: «the user's address»" in llm.calls[1][-1].text
    assert [(c.action, c.memory_id) for c in result.operations] == [("delete", address)]


def test_turn_is_embedded_once_and_reuses_the_query_cache(sqlite_store: MemoryStore,
                                                          embeddings: Any):
    """An app that searched with the user's message already paid for the turn's vector."""
    seed(sqlite_store, "alice", "The user lives in Paris.")
    said = "  I moved to Rome last week  "
    sqlite_store.search(said.strip(), user_id="alice")  # the app's own retrieval
    embedded_before = embeddings.texts_embedded
    llm = ScriptedChatModel([ops({"op": "SUPERSEDE", "handle": "m1",
                                  "content": "The user lives in Rome."})])
    MemoryManager(sqlite_store, llm).process(said, user_id="alice")
    new_texts = [t for call in embeddings.calls for t in call][embedded_before:]
    assert new_texts == ["The user lives in Rome."]  # only the new fact needed a vector
