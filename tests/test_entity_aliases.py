"""Entity aliases: found by the local extractor or given by the chat model, stored with the
memory that gives them, matched in queries, removed with their memory, carried by
export/import — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from sqlalchemy import text

from langchain_persistent_memory import AddOp, InvalidInputError, MemoryManager, MemoryStore
from langchain_persistent_memory.entities import extract_entities
from tests.support.consistency import index_mismatches
from tests.support.embeddings import HashEmbeddings
from tests.support.fake_chat import ScriptedChatModel, tool_call_message


def aliases(store: MemoryStore, user_id: str, **kw: bool) -> dict[str, tuple[str, ...]]:
    return {e.key: e.aliases for e in store.entities(user_id, **kw)}


@pytest.mark.parametrize(("said", "expected"), [
    ("Melanie (Mel) loves pottery", {"melanie": ("Mel",)}),
    ("I asked Robert, or Bob, to come", {"robert": ("Bob",)}),
    ("Robert, aka Bob, came by", {"robert": ("Bob",)}),
    ("Caroline: my sister Anna is vegetarian", {"caroline": (), "anna": ("sister",)}),
    ("Anna, my older sister, is vegetarian", {"anna": ("sister",)}),
    ("The user's best friend Sarah Jones moved", {"sarah jones": ("best friend",)}),
    ("I went to Paris or London", {"paris": (), "london": ()}),  # no alias without a comma
    ("Her sister Anna came", {"anna": ()}),  # only the user's own relations
    # LoCoMo turns an earlier version misread: an apposition must close
    ("Melanie: Marrying my partner and promising to be together", {"melanie": ()}),
    ("Melanie: Thankfully, my son's ok", {"melanie": ()}),
    ("Andrew: My girlfriend, Toby and I are going camping", {"andrew": (), "toby": ()}),
    ("John: my colleague Rob invited me", {"john": (), "rob": ("colleague",)}),
    ("I met my brother, Tom, today", {"tom": ("brother",)}),
])
def test_the_extractor_reads_aliases_from_the_text(said: str,
                                                   expected: dict[str, tuple[str, ...]]) -> None:
    assert {e.key: e.aliases for e in extract_entities(said)} == expected


def test_aliases_are_stored_per_user_and_listed(store: MemoryStore) -> None:
    a = store.add("Caroline: my sister Anna is vegetarian", user_id="u1")
    store.add("Melanie (Mel) loves pottery", user_id="u1")
    store.add("Bob: my sister Lisa is a chef", user_id="u2")
    assert aliases(store, "u1") == {"caroline": (), "anna": ("sister",), "melanie": ("Mel",)}
    assert aliases(store, "u2") == {"bob": (), "lisa": ("sister",)}  # "sister" is Lisa here
    anna = next(e for e in store.entities("u1") if e.key == "anna")
    assert anna.memory_ids == (a.id,) and anna.kind == "person"


def _scores(store: MemoryStore, query: str, user_id: str) -> tuple[dict[str, float], ...]:
    plain = {"mmr": False, "topic_weight": 0.0, "topic_focus": 0.0, "k": 10}
    return tuple({h.memory.content: h.score for h in store.search(
        query, user_id=user_id, **plain, **weight)} for weight in (
        {}, {"entity_weight": 0.0, "hop_weight": 0.0}))


SAID = ["Caroline: my sister Anna visited last week", "Anna: I make great lasagna",
        "Caroline: Melanie (Mel) paints", "Melanie: pottery is my thing",
        "Caroline: the weather was grey", "Caroline: work was busy"]


@pytest.mark.parametrize(("query", "about"), [
    ("What does my sister cook?", "Anna: I make great lasagna"),
    ("what does mel like", "Melanie: pottery is my thing"),
])
def test_a_query_naming_an_alias_ranks_the_entitys_memories(
        store_url: str, embeddings: HashEmbeddings, tmp_path: Path, query: str,
        about: str) -> None:
    """The alias resolves to the entity: its own memories (here the one it is the subject
    of, which never uses the alias) gain the subject bonus, in the writing process and in
    one that loads the user from SQL."""
    runs = []
    with MemoryStore(store_url, embeddings=embeddings, index_path=tmp_path / "i") as store:
        store.search("warm up", user_id="u")  # loaded before the writes: updated in place
        store.add_many(SAID, user_id="u")
        store.add("Zed: my sister Ruth cooks", user_id="other")  # another user's "sister"
        assert index_mismatches(store) == []
        runs.append(_scores(store, query, "u"))
    with MemoryStore(store_url, embeddings=embeddings, index_path=tmp_path / "i") as store:
        runs.append(_scores(store, query, "u"))
    for boosted, off in runs:
        assert about in boosted
        assert boosted[about] == pytest.approx(off.get(about, 0.0) * 1.5)  # it is about her
        assert boosted["Caroline: work was busy"] == \
            pytest.approx(off["Caroline: work was busy"])


def test_deleting_the_memory_that_gave_an_alias_removes_it(store: MemoryStore) -> None:
    said = store.add("Caroline: my sister Anna visited", user_id="u")
    store.add("Anna: I make great lasagna", user_id="u")
    store.search("sister", user_id="u")  # the partition is loaded
    store.delete(said.id, user_id="u")
    assert aliases(store, "u") == {"anna": ()}  # Anna stays (her own memory), "sister" goes
    boosted, off = _scores(store, "What does my sister cook?", "u")
    assert boosted == off  # "sister" names nobody any more
    supersede = store.add("Caroline: Melanie (Mel) paints", user_id="u")
    store.supersede(supersede.id, "Caroline: I think Melanie paints no more", user_id="u")
    assert aliases(store, "u")["melanie"] == ()
    assert aliases(store, "u", include_superseded=True)["melanie"] == ("Mel",)
    assert index_mismatches(store) == []


def test_forget_user_removes_aliases(store: MemoryStore) -> None:
    store.add("Caroline: Melanie (Mel) paints", user_id="gone")
    store.add("Caroline: Melanie (Mel) paints", user_id="kept")
    store.forget_user("gone")
    with store.engine.connect() as conn:
        users = conn.execute(text("SELECT DISTINCT user_id FROM lpm_memory_entities "
                                  "WHERE aliases IS NOT NULL")).scalars().all()
    assert users == ["kept"]
    assert aliases(store, "gone") == {}


def test_store_ops_take_names_with_aliases(store: MemoryStore) -> None:
    store.apply([AddOp(content="the user likes acme tea",
                       entities=[{"name": "acme", "aliases": ["ACME Tea Co"]}, "tea"])],
                user_id="u")
    assert aliases(store, "u") == {"acme": ("ACME Tea Co",), "tea": ()}
    for bad in ([{"name": "acme", "aliases": "x"}], [{"name": "acme", "alias": ["x"]}],
                [{"name": "acme", "aliases": [""]}], [{"aliases": ["x"]}]):
        with pytest.raises(InvalidInputError) as info:
            store.apply([AddOp(content="acme again", entities=bad)], user_id="u")
        assert info.value.field == "entities"
    assert store.count("u") == 1


def test_the_model_gives_aliases_the_user_said(store: MemoryStore) -> None:
    """One call: "Name (alias)" or {name, aliases}; an alias is kept only when the user's
    own words in the turn contain it, a name only when the fact contains it."""
    said = "My sister Anna, we call her Annie, lives in Oslo"
    llm = ScriptedChatModel([tool_call_message("MemoryOperations", {"operations": [{
        "op": "ADD", "content": "The user's sister lives in Oslo; her name is Anna.",
        "evidence": said,
        "entities": ["Anna (my sister, Annie, Queen Anne)",
                     {"name": "Oslo", "aliases": ["Kristiania"]}, "Bergen (Bob)"]}]})])
    result = MemoryManager(store, llm).process([HumanMessage(said), AIMessage("Nice!")],
                                               user_id="u")
    assert result.status == "applied" and result.llm_calls == 1
    # "Queen Anne" and "Kristiania" were never said; Bergen is not in the fact
    assert aliases(store, "u") == {"anna": ("sister", "Annie"), "oslo": ()}
    boosted, off = _scores(store, "where does annie live", "u")
    [fact] = boosted
    assert boosted[fact] == pytest.approx(off[fact] * 1.25)  # a mention of Anna


def _export(store: MemoryStore) -> list[dict[str, object]]:
    buffer = io.StringIO()
    store.export_jsonl(buffer)
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def _import(store: MemoryStore, lines: list[dict[str, object]]) -> int:
    return store.import_jsonl(io.StringIO("".join(json.dumps(x) + "\n" for x in lines)))


def test_export_import_carries_links_the_text_alone_would_lose(store: MemoryStore) -> None:
    store.apply([AddOp(content="the user likes acme tea",
                       entities=[{"name": "acme", "aliases": ["ACME Tea Co"]}])], user_id="u")
    store.add("Caroline: Melanie (Mel) paints", user_id="u")
    before = {e.key: (e.kind, e.subject_of, e.aliases, len(e.memory_ids))
              for e in store.entities("u")}
    lines = _export(store)
    memory = next(x for x in lines if x.get("content") == "the user likes acme tea")
    assert memory["entities"] == [{"name": "acme", "kind": "name", "subject": False,
                                   "aliases": ["ACME Tea Co"]}]
    store.forget_user("u")
    assert _import(store, lines) == 2
    after = {e.key: (e.kind, e.subject_of, e.aliases, len(e.memory_ids))
             for e in store.entities("u")}
    assert after == before and "acme" in after  # the extractor alone misses lower-case acme
    boosted, off = _scores(store, "what does mel do", "u")
    assert boosted["Caroline: Melanie (Mel) paints"] == \
        pytest.approx(off["Caroline: Melanie (Mel) paints"] * 1.25)
    assert index_mismatches(store) == []


def test_an_older_export_without_links_still_imports(store: MemoryStore) -> None:
    store.apply([AddOp(content="the user likes acme tea", entities=["acme"])], user_id="u")
    store.add("Caroline: Melanie (Mel) paints", user_id="u")
    lines = _export(store)
    for line in lines:
        line.pop("entities", None)
    store.forget_user("u")
    assert _import(store, lines) == 2
    # derived from the text, as before links were exported: the model-given "acme" is lost
    assert aliases(store, "u") == {"caroline": (), "melanie": ("Mel",)}


@pytest.mark.parametrize("bad", [
    "Melanie",  # not a list
    [{"name": "Paris", "kind": "name", "subject": False, "aliases": []}],  # not in the text
    [{"name": "Melanie", "kind": "god", "subject": False, "aliases": []}],
    [{"name": "Melanie", "kind": "name", "subject": "yes", "aliases": []}],
    [{"name": "Melanie", "kind": "name", "subject": False, "aliases": "Mel"}],
    [{"name": "Melanie", "kind": "name", "subject": False, "aliases": [], "user_id": "x"}],
    [{"name": "Melanie"}, {"name": "melanie"}],  # one entity twice
])
def test_import_refuses_bad_links_and_writes_nothing(store: MemoryStore, bad: object) -> None:
    store.add("Caroline: Melanie (Mel) paints", user_id="u")
    store.add("Melanie: pottery", user_id="v")
    lines = _export(store)
    store.forget_user("u")
    store.forget_user("v")
    next(x for x in lines if x.get("user_id") == "v")["entities"] = bad
    with pytest.raises(InvalidInputError) as info:
        _import(store, lines)
    assert info.value.field == "entities" and "line" in str(info.value)
    assert store.count("u") == 0 and store.count("v") == 0 and store.entities("u") == []


def test_a_version_7_database_gains_aliases_and_keeps_its_links(store_url: str) -> None:
    with MemoryStore(store_url, embeddings=HashEmbeddings()) as store:
        store.add("Caroline: Melanie (Mel) paints", user_id="u")
        with store.engine.begin() as conn:  # back to the version 7 layout
            conn.exec_driver_sql("ALTER TABLE lpm_memory_entities DROP COLUMN aliases")
            conn.exec_driver_sql("UPDATE lpm_meta SET value = '7' "
                                 "WHERE key = 'schema_version'")
    with MemoryStore(store_url, embeddings=HashEmbeddings()) as store:
        assert aliases(store, "u") == {"caroline": (), "melanie": ()}  # links kept, no alias
        store.add("Caroline: Robert, or Bob, sings", user_id="u")
        assert aliases(store, "u")["robert"] == ("Bob",)
        assert index_mismatches(store) == []
