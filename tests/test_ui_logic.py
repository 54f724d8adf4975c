"""The web UI's behaviour (frames, charts data, edits) on a real SQLite store."""

from __future__ import annotations

import html as html_module
import re
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from langchain_persistent_memory import InvalidInputError, MemoryStore
from langchain_persistent_memory.ui.logic import (
    COLUMN_WIDTHS,
    NO_CATEGORY,
    apply_edit,
    category_counts,
    entities_frame,
    entity_memories,
    hit_markdown,
    lineage,
    md_escape,
    memories_frame,
    memories_over_time,
    memory_label,
    memory_markdown,
    summary,
    timeline_rows,
)
from tests.support.embeddings import HashEmbeddings


class Clock:
    """Controllable "now" so chart buckets are known."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock: Clock):
    with MemoryStore(f"sqlite:///{tmp_path / 'ui.db'}", embeddings=HashEmbeddings(),
                     clock=clock) as s:
        yield s


def test_frame_charts_and_summary(store: MemoryStore, clock: Clock) -> None:
    tea = store.add("Alice likes tea", user_id="alice", category="preference", importance=0.8)
    store.add("Alice lives in Porto", user_id="alice", category="location")
    clock.now += timedelta(days=2)
    store.add("Alice runs", user_id="alice")
    store.supersede(tea.id, "Alice likes green tea", user_id="alice")
    memories = store.list("alice", include_superseded=True)

    frame = memories_frame(memories)
    assert list(frame["content"]) == ["Alice likes green tea", "Alice runs",
                                      "Alice lives in Porto", "Alice likes tea"]
    assert list(frame["status"]) == ["current", "current", "current", "superseded"]
    assert frame.loc[3, "valid_to"] == clock.now and frame.loc[1, "category"] == NO_CATEGORY

    counts = category_counts(memories)
    assert counts.to_dict("records") == [
        {"category": "preference", "memories": 2}, {"category": NO_CATEGORY, "memories": 1},
        {"category": "location", "memories": 1}]

    over_time = memories_over_time(memories)
    assert [(r["day"].day, r["category"], r["added"]) for r in over_time.to_dict("records")] \
        == [(1, "location", 1), (1, "preference", 1), (3, NO_CATEGORY, 1),
            (3, "preference", 1)]
    assert memories_over_time([]).empty
    assert summary(memories) == {"current": 3, "superseded": 1, "categories": 3}
    assert memory_label(memories[3]) == "Alice likes tea (superseded)"
    assert memory_label(store.add("x " * 80, user_id="alice"), width=10) == "x x x x x…"


def test_edit_in_place_records_an_update(store: MemoryStore) -> None:
    memory = store.add("Alice likes tea", user_id="alice", category="preference")
    saved = apply_edit(store, memory, content="Alice likes black tea ", category="preference",
                       importance=0.9, supersede=False)
    assert saved.id == memory.id and saved.content == "Alice likes black tea"
    assert saved.importance == 0.9
    rows = timeline_rows(store.history(memory.id, user_id="alice"))
    assert [(r["event"], r["before"], r["after"]) for r in rows] == [
        ("added", "", "Alice likes tea"), ("updated", "Alice likes tea", "Alice likes black tea")]
    assert [r["origin"] for r in rows] == ["api", "ui"]  # the UI's edit says where it came from


def test_edit_as_supersede_keeps_the_old_fact(store: MemoryStore) -> None:
    memory = store.add("Alice lives in Porto", user_id="alice", category="location")
    new = apply_edit(store, memory, content="Alice lives in Lisbon", category="location",
                     importance=memory.importance, supersede=True)
    assert new.id != memory.id and new.content == "Alice lives in Lisbon"
    old = store.get(memory.id, user_id="alice")
    assert old.valid_to is not None and old.superseded_by == new.id
    assert [r["event"] for r in timeline_rows(store.history(memory.id,
            user_id="alice"))] == ["added",
                                                                          "superseded"]


def test_rejected_edits_write_nothing(store: MemoryStore) -> None:
    memory = store.add("Alice likes tea", user_id="alice", category="preference")
    with pytest.raises(InvalidInputError, match="nothing changed"):
        apply_edit(store, memory, content="Alice likes tea", category="preference",
                   importance=memory.importance, supersede=False)
    with pytest.raises(InvalidInputError, match="superseding needs"):
        apply_edit(store, memory, content="Alice likes tea", category="drinks",
                   importance=memory.importance, supersede=True)
    with pytest.raises(InvalidInputError):
        apply_edit(store, memory, content="   ", category="", importance=0.5,
                   supersede=False)
    assert store.get(memory.id, user_id="alice") == memory
    assert len(store.history(memory.id, user_id="alice")) == 1


def test_frame_has_every_column_and_empty_end_times(store: MemoryStore) -> None:
    old = store.add("Alice likes tea", user_id="alice")
    new = store.supersede(old.id, "Alice likes green tea", user_id="alice")
    frame = memories_frame(store.list("alice", include_superseded=True))
    assert list(frame["id"]) == [new.id, old.id]
    assert set(COLUMN_WIDTHS) == set(frame.columns)
    # A current memory has no end: an empty cell (NaT), never the text "None".
    assert frame.loc[0, "valid_to"] is pd.NaT and frame.loc[1, "valid_to"] is not pd.NaT
    assert str(frame["valid_to"].dtype).startswith("datetime64")
    assert "None" not in frame.astype(str).to_string()


def test_summary_counts_superseded_whatever_the_table_shows(store: MemoryStore) -> None:
    old = store.add("Alice likes tea", user_id="alice", category="drink")
    store.supersede(old.id, "Alice likes green tea", user_id="alice")
    store.add("Alice runs", user_id="alice", category="sport")
    everything = store.list("alice", include_superseded=True)
    assert summary(everything) == {"current": 2, "superseded": 1, "categories": 2}


def test_lineage_links_both_ways(store: MemoryStore) -> None:
    porto = store.add("Alice lives in Porto", user_id="alice")
    lisbon = store.supersede(porto.id, "Alice lives in Lisbon", user_id="alice")
    faro = store.supersede(lisbon.id, "Alice lives in Faro", user_id="alice")
    every = {m.id: m for m in store.list("alice", include_superseded=True)}
    assert [(r, m.id) for r, m in lineage(every[lisbon.id], list(every.values()))] == [
        ("replaces", porto.id), ("replaced by", faro.id)]
    assert [(r, m.id) for r, m in lineage(every[faro.id], list(every.values()))] == [
        ("replaces", lisbon.id)]
    # The store's history of the new fact alone does not say what it replaced.
    assert [e.event.value for e in store.history(faro.id, user_id="alice")] == ["ADD"]


HOSTILE_MD = ("![pixel](http://127.0.0.1:9/track.png) [click me](http://evil.example) "
              "<img src=x onerror=alert(1)> https://evil.example **bold** _it_ `code` "
              ":red[red] $x^2$ \\\\ end\n# heading\n- item\n> quote\n1. one\n---")


def _render(markdown: str) -> str:
    from markdown_it import MarkdownIt

    # CommonMark plus GFM tables and strikethrough; bare-URL links are checked in the real
    # page by tests/test_ui_browser.py.
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def test_stored_text_is_escaped_for_markdown(store: MemoryStore) -> None:
    memory = store.add(HOSTILE_MD, user_id="alice", category="[cat](http://evil.example)")
    for markdown in (md_escape(memory.content), hit_markdown(memory, 0.5),
                     memory_markdown(memory)):
        html = _render(markdown)
        for tag in ("<a ", "<img", "<strong>bold", "<em>", "<code>code", "<h1", "<blockquote",
                    "<ol", "<hr"):
            assert tag not in html, (tag, html)
    # GFM links bare URLs and e-mail addresses after parsing: none may survive as such.
    escaped = md_escape(memory.content + " www.evil.example mal@evil.example")
    assert not re.search(r"https?:|www\\?\.|\w@", escaped.replace("\\", "")), escaped
    plain = _render(md_escape(memory.content)).replace("\u2060", "")
    text = re.sub(r"<[^>]+>", "", plain)
    # Every character of the stored text is still there to read.
    for word in ("![pixel](http://127.0.0.1:9/track.png)", "[click me](http://evil.example)",
                 "**bold**", ":red[red]", "$x^2$", "# heading", "1. one"):
        assert word in html_module.unescape(text), word


def test_entity_view_lists_entities_and_the_memories_behind_each(store: MemoryStore) -> None:
    trip = store.add("Caroline: I flew to Sweden with Melanie", user_id="u")
    store.add("Melanie: I hear Sweden is cold", user_id="u")
    store.add("Caroline: pottery class tonight", user_id="u")
    rows = store.entities("u")
    frame = entities_frame(rows)
    assert list(frame.columns) == ["entity", "also called", "kind", "memories", "about"]
    table = {r["entity"]: (r["kind"], r["memories"], r["about"])
             for r in frame.to_dict("records")}
    assert table == {"Caroline": ("person", 2, 2), "Melanie": ("person", 2, 1),
                     "Sweden": ("name", 2, 0)}
    caroline = next(r for r in rows if r.key == "caroline")
    memories = store.list("u")
    shown = entity_memories(caroline, memories)
    assert [m.content for m in shown] == [m.content for m in memories
                                          if m.content.startswith("Caroline:")]
    assert trip in shown
    assert entities_frame([]).empty
    store.add("Caroline: Melanie (Mel) made a bowl", user_id="u")
    aliases = {r["entity"]: r["also called"] for r in entities_frame(
        store.entities("u")).to_dict("records")}
    assert aliases["Melanie"] == "Mel" and aliases["Sweden"] == ""
