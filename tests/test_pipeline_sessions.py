"""Multi-session scenarios, every session in a fresh Python process.

Why: memory is only useful if what one session learned is there, correct, in the next one.
Each step below runs in its own interpreter (``python -m tests.test_pipeline_sessions``)
against the same SQLite file and index, so nothing survives in memory between sessions.
The chat model is a rule-following fake: it can only act on memories the pipeline retrieved
and showed it under handles, so a retrieval or persistence bug makes the scenario fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage

from langchain_persistent_memory import ANY_USER

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the session side
def _rule_model(rules: list[tuple[str, Callable[[dict[str, str]], dict[str, Any]]]]) -> Any:
    """A fake model applying ``rules`` (trigger word in the conversation -> operation)."""
    from tests.support.fake_chat import ScriptedChatModel, tool_call_message

    def reply(messages: list[BaseMessage]) -> AIMessage:
        prompt = messages[-1].text
        memories = dict(re.findall(r"^\[(m\d+)\] \([^)]*\) (.*)$", prompt, re.M))
        said = prompt.split("<conversation>")[-1]
        ops = [make(memories) for trigger, make in rules if trigger in said]
        return tool_call_message("MemoryOperations", {"operations": ops})

    return ScriptedChatModel(default_response=reply)


def _handle(memories: dict[str, str], needle: str) -> str | None:
    return next((h for h, text in memories.items() if needle in text), None)


def _replace(needle: str, content: str) -> Callable[[dict[str, str]], dict[str, Any]]:
    def make(memories: dict[str, str]) -> dict[str, Any]:
        old = _handle(memories, needle)
        if old is None:  # the old fact was not retrieved: the scenario will notice
            return {"op": "ADD", "content": content}
        return {"op": "SUPERSEDE", "handle": old, "content": content}
    return make


def _add(content: str) -> Callable[[dict[str, str]], dict[str, Any]]:
    return lambda memories: {"op": "ADD", "content": content}


RULES = [
    ("VS Code", _add("The user codes in VS Code.")),
    ("NeoVim", _replace("VS Code", "The user codes in NeoVim.")),
    ("dog", _add("The user has a dog named Rex.")),
    ("Lisbon", _add("The user lives in Lisbon.")),
    ("Rose Street", _add("The user's address is 12 Rose Street.")),
    ("forget my address", lambda m: {"op": "DELETE", "handle": _handle(m, "address")}),
    ("vegetarian", _add("The user is vegetarian.")),
    ("live in Paris", _add("The user lives in Paris.")),
    ("live in Berlin", _add("The user lives in Berlin.")),
    ("moved to Rome", _replace("lives in", "The user lives in Rome.")),
]


def _session(db: str, step: str) -> dict[str, Any]:
    from langchain_persistent_memory import MemoryManager, MemoryStore
    from tests.support.embeddings import HashEmbeddings

    store = MemoryStore(f"sqlite:///{db}", embeddings=HashEmbeddings())
    llm = _rule_model(RULES)
    manager = MemoryManager(store, llm)
    out: dict[str, Any] = {}

    def say(user: str, *texts: str) -> None:
        for text in texts:
            manager.submit(text, user_id=user, session_id=step)
        manager.flush()

    def state(user: str) -> dict[str, Any]:
        everything = store.list(user, include_superseded=True)
        return {
            "current": sorted(m.content for m in store.list(user)),
            "superseded": sorted(m.content for m in everything if m.valid_to is not None),
            "events": {m.content: [e.event.value for e in store.history(m.id, user_id=ANY_USER)]
                       for m in everything},
        }

    if step == "editor-1":
        say("alice", "I code in VS Code every day", "My dog is great", "I moved to Lisbon")
    elif step == "editor-2":
        say("alice", "I switched to NeoVim last month")
    elif step == "editor-3":
        out = state("alice")
        out["top"] = store.search("which editor does the user code in", user_id="alice",
                                  k=1)[0].memory.content
    elif step == "forget-1":
        say("alice", "My address is 12 Rose Street", "I moved to Lisbon")
    elif step == "forget-2":
        say("alice", "Please forget my address")
    elif step == "forget-3":
        out = state("alice")
        out["hits"] = [h.memory.content for h in store.search(
            "address 12 Rose Street", user_id="alice", k=10, include_superseded=True)]
        out["indexed"] = store.stats()["indexed_vectors"]
        out["rows"] = store.count("alice", include_superseded=True)
    elif step in ("repeat-1", "repeat-2"):
        say("alice", "I am vegetarian")
    elif step == "repeat-3":
        out = state("alice")
    elif step == "users-1":
        say("alice", "I live in Paris")
        say("bob", "I live in Berlin")
    elif step == "users-2":
        say("alice", "I moved to Rome")
    elif step == "users-3":
        out = {"alice": state("alice"), "bob": state("bob")}
        out["bob_hit"] = store.search("where does the user live", user_id="bob",
                                      k=1)[0].memory.content
    out["prompts"] = [m[-1].text for m in llm.calls]
    manager.close()
    store.close()
    return out


# ---------------------------------------------------------------- the test side
SCENARIOS = ("editor", "forget", "repeat", "users")


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Session n of every scenario runs in the n-th fresh process (each scenario its own db)."""
    folder = tmp_path_factory.mktemp("sessions")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    outputs: dict[str, list[dict[str, Any]]] = {name: [] for name in SCENARIOS}
    for number in (1, 2, 3):
        proc = subprocess.run([sys.executable, "-m", "tests.test_pipeline_sessions",
                               str(folder), str(number)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        for name, out in json.loads(proc.stdout.strip().splitlines()[-1]).items():
            outputs[name].append(out)
    return outputs


def test_switching_editor_supersedes_across_sessions(sessions: dict[str, Any]):
    _, second, final = sessions["editor"]
    assert "The user codes in VS Code." in second["prompts"][0]  # retrieved from disk
    assert final["top"] == "The user codes in NeoVim."
    assert "The user codes in NeoVim." in final["current"]
    assert final["superseded"] == ["The user codes in VS Code."]
    assert final["events"]["The user codes in VS Code."] == ["ADD", "SUPERSEDE"]


def test_forgetting_an_address_removes_it_from_search_and_index(sessions: dict[str, Any]):
    _, second, final = sessions["forget"]
    assert "The user's address is 12 Rose Street." in second["prompts"][0]
    assert final["current"] == ["The user lives in Lisbon."]
    assert not any("Rose Street" in hit for hit in final["hits"])
    assert final["indexed"] == final["rows"] == 1


def test_repeated_fact_is_not_duplicated(sessions: dict[str, Any]):
    _, second, final = sessions["repeat"]
    assert len(second["prompts"]) == 1  # the model proposed it again; the pipeline kept one
    assert final["current"] == ["The user is vegetarian."]
    assert final["events"] == {"The user is vegetarian.": ["ADD"]}


def test_two_users_with_conflicting_facts_never_mix(sessions: dict[str, Any]):
    _, second, final = sessions["users"]
    assert "Paris" in second["prompts"][0] and "Berlin" not in second["prompts"][0]
    assert final["alice"]["current"] == ["The user lives in Rome."]
    assert final["alice"]["superseded"] == ["The user lives in Paris."]
    assert final["bob"]["current"] == ["The user lives in Berlin."]
    assert final["bob"]["superseded"] == []
    assert final["bob_hit"] == "The user lives in Berlin."


if __name__ == "__main__":
    print(json.dumps({name: _session(str(Path(sys.argv[1]) / f"{name}.db"),
                                     f"{name}-{sys.argv[2]}") for name in SCENARIOS}))
