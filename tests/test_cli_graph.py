"""``lpm graph``: a user's entities with counts, as a table and as JSON lines."""

from __future__ import annotations

from tests.test_cli import Run, add, db, json_lines, lpm

__all__ = ["db", "lpm"]  # the fixtures, shared with test_cli


def test_graph_lists_entities_links_and_memories(lpm: Run) -> None:
    first = add(lpm, "Caroline: I moved here from Sweden", "alice")
    second = add(lpm, "Melanie: I hear Sweden is lovely, Caroline", "alice")
    add(lpm, "Bob: I live in Oslo", "bob")
    rows = {r["key"]: r for r in json_lines(lpm("graph", "-u", "alice", "--json"))}
    assert set(rows) == {"caroline", "sweden", "melanie"}
    assert sorted(rows["sweden"]["memory_ids"]) == sorted([first["id"], second["id"]])
    assert rows["caroline"]["memories"] == 2 and rows["caroline"]["subject_of"] == 1
    assert rows["melanie"]["kind"] == "person"
    table = lpm("graph", "-u", "alice").stdout
    assert table.splitlines()[0] == "3 entities, 5 links"
    assert "Sweden\tname\t2" in table and "Oslo" not in table  # bob's are never shown


def test_graph_shows_aliases(lpm: Run) -> None:
    add(lpm, "Caroline: my sister Anna (Annie) is here", "alice")
    add(lpm, "Bob: my sister Eva is here", "bob")
    rows = {r["key"]: r for r in json_lines(lpm("graph", "-u", "alice", "--json"))}
    assert rows["anna"]["aliases"] == ["Annie", "sister"] and rows["caroline"]["aliases"] == []
    table = lpm("graph", "-u", "alice").stdout
    assert "Anna\tperson\t1\taka Annie, sister" in table and "Eva" not in table


def test_graph_follows_forget_and_says_when_empty(lpm: Run) -> None:
    memory = add(lpm, "Caroline: I moved here from Sweden", "alice")
    lpm("forget", memory["id"], "-u", "alice")
    assert json_lines(lpm("graph", "-u", "alice", "--json")) == []
    assert "no entities" in lpm("graph", "-u", "alice").stdout
