"""The ``lpm`` command on a real SQLite store with deterministic embeddings.

Each invocation opens and closes the store, so every test also proves that what one command
wrote survives to the next (a "restart").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner, Result

from langchain_persistent_memory import ANY_USER, MemoryStore
from langchain_persistent_memory.cli.app import app
from tests.support.embeddings import HashEmbeddings

HASH = "tests.support.embeddings:HashEmbeddings"
ROOT = Path(__file__).resolve().parents[1]

Run = Callable[..., Result]


def wide_hash_embeddings() -> HashEmbeddings:
    """A second, different model for the reembed test (loaded via 'module:name')."""
    return HashEmbeddings(dim=96, model="hash-wide")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def lpm(db: Path) -> Run:
    runner = CliRunner()
    base = {"LPM_DATABASE_URL": f"sqlite:///{db}", "LPM_EMBEDDINGS": HASH, "LPM_USER": None,
            "COLUMNS": "200"}

    def run(*args: str, input: str | None = None, ok: bool = True,
            env: dict[str, str | None] | None = None) -> Result:
        result = runner.invoke(app, list(args), env={**base, **(env or {})}, input=input)
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return run


def add(lpm: Run, text: str, user: str = "alice", *extra: str) -> dict:
    return json.loads(lpm("add", text, "-u", user, "--json", *extra).stdout)


def json_lines(result: Result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def assert_user_error(result: Result, fragment: str) -> None:
    """Exit code 1, one 'Error:' line on stderr naming the problem, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_every_command_and_parameter_has_help(lpm: Run) -> None:
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    expected = {"add", "search", "list", "show", "edit", "forget", "forget-user", "export",
                "import", "reindex", "reembed", "stats", "chat", "ui", "users"}
    assert expected <= set(group.commands)
    for name, command in group.commands.items():
        assert (command.help or "").strip(), f"lpm {name} has no help text"
        for param in command.params:
            assert (getattr(param, "help", None) or "").strip(), \
                f"lpm {name}: {param.name} has no help"
        assert lpm(name, "--help").stdout.count(command.help.strip().split()[0]) >= 1
    for param in group.params:
        assert (getattr(param, "help", None) or "").strip(), f"lpm --{param.name} has no help"


def test_add_list_search_persist_across_invocations(lpm: Run) -> None:
    coffee = add(lpm, "Alice drinks espresso coffee every morning", "alice", "-c", "preference",
                 "--importance", "0.9", "-m", "source=cli", "-m", "level=3")
    add(lpm, "Alice works at Acme as an engineer", "alice", "-c", "work")
    add(lpm, "Bob drinks coffee too", "bob")
    assert coffee["category"] == "preference" and coffee["importance"] == 0.9
    assert coffee["metadata"] == {"source": "cli", "level": 3}

    listed = json_lines(lpm("list", "-u", "alice", "--json"))
    assert [m["content"] for m in listed] == ["Alice works at Acme as an engineer",
                                             "Alice drinks espresso coffee every morning"]
    hits = json_lines(lpm("search", "espresso coffee", "-u", "alice", "--json", "-k", "2"))
    assert hits[0]["id"] == coffee["id"] and hits[0]["score"] > hits[1]["score"]
    assert all(h["user_id"] == "alice" for h in hits)  # bob's coffee is never seen
    table = lpm("list", "-u", "alice").stdout
    assert coffee["id"] in table and "espresso" in table and "preference" in table
    assert lpm("list", "-u", "alice", "-c", "work", "--json").stdout.count('"id"') == 1
    assert lpm("users").stdout.split() == ["alice", "2", "bob", "1"]


def test_edit_supersede_and_show_history(lpm: Run) -> None:
    job = add(lpm, "Alice works at Acme", "alice", "-c", "work")
    lpm("edit", job["id"], "--content", "Alice works at Acme in Berlin", "--importance", "0.7")
    lpm("edit", job["id"], "--content", "Alice works at Initech", "--supersede")

    shown = json.loads(lpm("show", job["id"], "--json").stdout)
    assert [e["event"] for e in shown["history"]] == ["ADD", "UPDATE", "SUPERSEDE"]
    assert [e["provenance"]["origin"] for e in shown["history"]] == ["cli"] * 3
    assert shown["history"][1]["old_content"] == "Alice works at Acme"
    assert shown["memory"]["valid_to"] is not None and shown["memory"]["importance"] == 0.7
    current = json_lines(lpm("list", "-u", "alice", "--json"))
    assert [m["content"] for m in current] == ["Alice works at Initech"]
    assert shown["memory"]["superseded_by"] == current[0]["id"]
    everything = json_lines(lpm("list", "-u", "alice", "--all", "--json"))
    assert len(everything) == 2
    text = lpm("show", job["id"]).stdout
    assert "SUPERSEDE" in text and "Initech" in text and "origin" in text and "cli" in text


def test_forget_one_memory_keeps_its_history(lpm: Run) -> None:
    keep = add(lpm, "Alice likes tea")
    gone = add(lpm, "Alice has a cat named Tom")
    assert "forgot" in lpm("forget", gone["id"], "--reason", "asked").stdout
    assert [m["id"] for m in json_lines(lpm("list", "-u", "alice", "--json"))] == [keep["id"]]
    history = json.loads(lpm("show", gone["id"], "--json").stdout)
    assert history["memory"] is None
    assert [e["event"] for e in history["history"]] == ["ADD", "DELETE"]
    assert_user_error(lpm("forget", gone["id"], ok=False), "no memory")


def test_forget_user_asks_first(lpm: Run) -> None:
    add(lpm, "Alice likes tea")
    add(lpm, "Bob likes coffee", "bob")
    refused = lpm("forget-user", "alice", input="n\n", ok=False)
    assert refused.exit_code == 1
    assert lpm("users").stdout.split() == ["alice", "1", "bob", "1"]
    assert "erased 1" in lpm("forget-user", "alice", "--yes").stdout
    assert lpm("users").stdout.split() == ["bob", "1"]


@pytest.mark.parametrize(("args", "fragment"), [
    (["search", "   ", "-u", "alice"], "query must be a non-empty string"),
    (["add", "x", "-u", "alice", "--importance", "2"], "importance"),
    (["add", "   ", "-u", "alice"], "content must not be empty"),
    (["show", "no-such-id"], "no memory with id 'no-such-id'"),
    (["edit", "no-such-id"], "nothing to change"),
    (["add", "x", "-u", "alice", "-m", "novalue"], "key=value"),
    (["--embeddings", "nope", "search", "x", "-u", "alice"], "unknown embeddings 'nope'"),
    (["--embeddings", "tests.support.nothing:Foo", "search", "x", "-u", "a"], "cannot load"),
    (["--embeddings", "local", "search", "coffee", "-u", "alice"], "--embeddings"),
    (["--db", "postgresql+psycopg://nobody@127.0.0.1:1/none", "list", "-u", "a"],
     "database error"),
    (["import", "missing.jsonl"], "missing.jsonl"),
])
def test_user_mistakes_are_one_line_errors(lpm: Run, db: Path, args: list[str],
                                           fragment: str) -> None:
    add(lpm, "Alice drinks coffee")
    before = db.read_bytes()
    assert_user_error(lpm(*args, ok=False), fragment)
    assert json_lines(lpm("list", "-u", "alice", "--json"))[0]["content"] == \
        "Alice drinks coffee"
    assert lpm("stats", "--json").stdout.count('"memories": 1') == 1
    del before


def test_memory_of_another_user_is_out_of_scope(lpm: Run) -> None:
    memory = add(lpm, "Alice's secret")
    assert_user_error(lpm("show", memory["id"], "-u", "bob", ok=False), "for user 'bob'")
    assert_user_error(lpm("forget", memory["id"], "-u", "bob", ok=False), "no memory")
    assert lpm("show", memory["id"], "-u", "alice", "--json").exit_code == 0


def test_export_then_import_into_a_fresh_store(lpm: Run, tmp_path: Path) -> None:
    first = add(lpm, "Alice drinks espresso")
    lpm("edit", first["id"], "--content", "Alice drinks double espresso")
    add(lpm, "Bob plays chess", "bob")
    dump = tmp_path / "backup.jsonl"
    assert "exported 2" in lpm("export", str(dump)).stdout
    header = json.loads(dump.read_text().splitlines()[0])
    assert header["type"] == "header" and header["memories"] == 2

    other = CliRunner()
    env = {"LPM_DATABASE_URL": f"sqlite:///{tmp_path / 'restored.db'}", "LPM_EMBEDDINGS": HASH}
    restored = other.invoke(app, ["import", str(dump), "-u", "alice"], env=env)
    assert restored.exit_code == 0, restored.output
    assert "imported 1" in restored.stdout
    listed = other.invoke(app, ["list", "-u", "alice", "--json"], env=env)
    assert [json.loads(x)["id"] for x in listed.stdout.splitlines()] == [first["id"]]
    shown = json.loads(other.invoke(app, ["show", first["id"], "--json"], env=env).stdout)
    assert [e["event"] for e in shown["history"]] == ["ADD", "UPDATE"]
    assert other.invoke(app, ["users"], env=env).stdout.split() == ["alice", "1"]
    hits = other.invoke(app, ["search", "espresso", "-u", "alice", "--json"], env=env)
    assert json.loads(hits.stdout.splitlines()[0])["id"] == first["id"]
    again = other.invoke(app, ["import", str(dump)], env=env)
    assert again.exit_code == 1 and "Traceback" not in again.output


def test_reindex_reloads_partitions_from_sql(lpm: Run, db: Path) -> None:
    memory = add(lpm, "Alice collects vinyl records")
    add(lpm, "Alice runs marathons")
    out = lpm("reindex").stdout
    assert "indexed 2 vectors" in out
    hits = json_lines(lpm("search", "vinyl records", "-u", "alice", "--json"))
    assert hits[0]["id"] == memory["id"]


def test_reembed_switches_the_model(lpm: Run) -> None:
    memory = add(lpm, "Alice collects vinyl records")
    add(lpm, "Alice runs marathons")
    wide = f"{__name__}:wide_hash_embeddings"
    out = lpm("reembed", "--to", wide).stdout
    assert "re-embedded 2" in out and "2/2" in out
    stats = json.loads(lpm("stats", "--json").stdout)
    assert stats["embedding_model"] == "HashEmbeddings:hash-wide" and stats["dimension"] == 96
    assert_user_error(lpm("search", "vinyl", "-u", "alice", ok=False), "hash-wide")
    hits = json_lines(lpm("--embeddings", wide, "search", "vinyl records", "-u", "alice",
                          "--json"))
    assert hits[0]["id"] == memory["id"]


def test_stats_counts(lpm: Run) -> None:
    memory = add(lpm, "Alice likes tea")
    lpm("edit", memory["id"], "--content", "Alice likes green tea", "--supersede")
    add(lpm, "Bob likes coffee", "bob")
    stats = json.loads(lpm("stats", "--json").stdout)
    assert stats["memories"] == 2 and stats["superseded"] == 1 and stats["users"] == 2
    assert stats["embedding_model"] == "HashEmbeddings:hash-bow" and stats["dimension"] == 64
    assert "history events" in lpm("stats").stdout


def test_installed_lpm_script_runs_as_a_real_process(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("lpm")
    assert script.exists(), "the lpm entry point is not installed"
    env = {**os.environ, "LPM_DATABASE_URL": str(tmp_path / "proc.db"), "LPM_EMBEDDINGS": HASH,
           "PYTHONPATH": str(ROOT)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), *args], env=env, capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)

    added = run("add", "Alice keeps bees", "-u", "alice", "--json")
    assert added.returncode == 0, added.stderr
    memory_id = json.loads(added.stdout)["id"]
    bad = run("show", "missing-id")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "Error: no memory with id 'missing-id'"
    # a bare path became a SQLite file holding the memory
    with MemoryStore(f"sqlite:///{tmp_path / 'proc.db'}", embeddings=HashEmbeddings()) as store:
        assert store.get(memory_id, user_id=ANY_USER).content == "Alice keeps bees"


def test_store_written_by_cli_opens_in_python(lpm: Run, db: Path) -> None:
    memory = add(lpm, "Alice speaks Portuguese", "alice", "-c", "skill")
    with MemoryStore(f"sqlite:///{db}", embeddings=HashEmbeddings()) as store:
        assert store.get(memory["id"], user_id=ANY_USER).category == "skill"
        assert store.search("Portuguese", user_id="alice")[0].memory.id == memory["id"]
