"""What a new user types in the first hour: each mistake ends in one ``Error:`` line, and
stored text can never drive the terminal ``lpm`` prints it on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from langchain_persistent_memory.cli.app import app
from tests.test_cli import HASH, Run, add, assert_user_error, json_lines

pytest_plugins = ["tests.test_cli"]  # the lpm and db fixtures

NO_KEY = {"OPENAI_API_KEY": None}


@pytest.mark.parametrize(("args", "fragment"), [
    (["--embeddings", "openai", "search", "x", "-u", "alice"], "set OPENAI_API_KEY"),
    (["--embeddings", "openai:text-embedding-3-large", "add", "x", "-u", "alice"],
     "set OPENAI_API_KEY"),
    (["reembed", "--to", "openai:text-embedding-3-large"], "set OPENAI_API_KEY"),
    (["--embeddings", "langchain_core.embeddings:FakeEmbeddings", "search", "x", "-u", "a"],
     "cannot create embeddings 'langchain_core.embeddings:FakeEmbeddings'"),
    (["forget-user", "nobody", "--yes"], "user 'nobody' has no memories"),
    (["forget-user", "nobody"], "user 'nobody' has no memories"),  # before asking
])
def test_setup_mistakes_are_one_line_errors(lpm: Run, db: Path, args: list[str],
                                            fragment: str) -> None:
    add(lpm, "Alice drinks coffee")
    before = db.read_bytes()
    assert_user_error(lpm(*args, ok=False, env=NO_KEY), fragment)
    assert db.read_bytes() == before
    assert [m["content"] for m in json_lines(lpm("list", "-u", "alice", "--json"))] == \
        ["Alice drinks coffee"]


def test_database_in_a_missing_directory_is_an_error_not_created(lpm: Run,
                                                                 tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    for command in (["list", "-u", "alice"], ["add", "x", "-u", "alice"], ["stats"],
                    ["reembed"]):
        result = lpm("--db", str(missing / "x.db"), *command, ok=False)
        assert_user_error(result, f"no such directory for the database file: {missing}")
    assert not (tmp_path / "no").exists()
    # An existing directory is fine: a new database file is created there.
    assert lpm("--db", str(tmp_path / "new.db"), "list", "-u", "alice").exit_code == 0


def test_reimport_names_the_cli_flag_and_counts_what_export_wrote(lpm: Run,
                                                                  tmp_path: Path) -> None:
    kept = [add(lpm, f"Alice fact number {n}") for n in range(4)]
    lpm("edit", kept[0]["id"], "--content", "Alice fact zero, changed", "--supersede")
    gone = add(lpm, "Alice fact to forget")
    lpm("forget", gone["id"])
    dump = tmp_path / "all.jsonl"
    assert "exported 5 memories" in lpm("export", str(dump)).stdout

    result = lpm("import", str(dump), ok=False)
    assert_user_error(result, "5 of the file's memories")
    assert "--skip-existing" in result.stderr and "on_conflict" not in result.stderr
    assert "history of 1 deleted" in result.stderr
    assert "imported 0 memories" in lpm("import", str(dump), "--skip-existing").stdout


def test_import_of_a_user_the_file_does_not_hold_says_so(lpm: Run, tmp_path: Path) -> None:
    add(lpm, "Alice drinks coffee")
    dump = tmp_path / "alice.jsonl"
    lpm("export", str(dump))
    other = CliRunner()
    env = {"LPM_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}", "LPM_EMBEDDINGS": HASH}
    result = other.invoke(app, ["import", str(dump), "-u", "carol"], env=env)
    assert_user_error(result, "no memories of user 'carol'")
    assert other.invoke(app, ["users"], env=env).stdout.strip() == "no users yet"


def test_reembed_to_the_model_in_use_does_nothing_unless_forced(lpm: Run, db: Path) -> None:
    add(lpm, "Alice collects vinyl records")
    add(lpm, "Alice runs marathons")
    before = db.read_bytes()
    out = lpm("reembed", "--to", HASH).stdout
    assert "already uses HashEmbeddings:hash-bow" in out and "re-embedded" not in out
    assert db.read_bytes() == before
    assert "re-embedded 2 memories" in lpm("reembed", "--to", HASH, "--force").stdout


def test_help_shows_flags_without_a_value(lpm: Run) -> None:
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    flags = 0
    for name, command in group.commands.items():
        text = lpm(name, "--help").stdout
        assert "<bool>" not in text, name
        for param in command.params:
            if getattr(param, "is_flag", False):
                flags += 1
                long = next(o for o in param.opts if o.startswith("--"))
                line = next(x for x in text.splitlines() if long in x.split(", ")[-1].split())
                assert not line.split(long, 1)[1].startswith(" <"), line
    assert flags >= 5


HOSTILE = ("plain \x1b[31mred\x1b[0m \x1b]0;window title\x07 \x1b[2J\x1b[H "
           "back\rover \x9b31m \x07bell \u202eevil\u202c [bold]markup[/bold] end")
CONTROL = ("\x1b", "\x07", "\r", "\x9b", "\u202e")


def test_stored_escape_sequences_never_reach_the_terminal(lpm: Run) -> None:
    memory = add(lpm, HOSTILE, "mallory", "-c", "cat\x1b[8mhidden")
    lpm("edit", memory["id"], "--content", HOSTILE + " v2")
    outputs = {
        "list": lpm("list", "-u", "mallory").stdout,
        "search": lpm("search", "plain red", "-u", "mallory").stdout,
        "show": lpm("show", memory["id"]).stdout,
        "list --json": lpm("list", "-u", "mallory", "--json").stdout,
        "show --json": lpm("show", memory["id"], "--json").stdout,
        "search --json": lpm("search", "plain", "-u", "mallory", "--json").stdout,
    }
    for name, text in outputs.items():
        assert not any(c in text for c in CONTROL), (name, text)
        assert "plain" in text and "end" in text, name  # the printable text is all there
    assert "[bold]markup[/bold]" in outputs["list"]  # shown as typed, not as Rich markup
    # JSON keeps the exact stored text (escaped, not removed): scripts lose nothing.
    assert json.loads(outputs["list --json"])["content"] == HOSTILE + " v2"
    shown = json.loads(outputs["show --json"])
    assert [e["new_content"] for e in shown["history"]] == [HOSTILE, HOSTILE + " v2"]
