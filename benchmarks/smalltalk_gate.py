"""The local small-talk gate on a labelled corpus: model calls spared, facts missed.

Runs every turn of ``tests/support/gate_corpus.py`` through ``MemoryManager.process`` with
the gate on and off (a scripted model that counts calls) and prints calls per turn on
small talk / questions and the number of fact turns the gate wrongly skipped.

Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/smalltalk_gate.py``
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_persistent_memory import MemoryManager, MemoryStore
from tests.support.embeddings import HashEmbeddings
from tests.support.fake_chat import ScriptedChatModel, tool_call_message
from tests.support.gate_corpus import CORPUS


def calls(gate: bool) -> tuple[int, int, list[str]]:
    """(calls on small-talk turns, calls on fact turns, fact turns skipped)."""
    folder = Path(tempfile.mkdtemp())
    store = MemoryStore(f"sqlite:///{folder / 'g.db'}", embeddings=HashEmbeddings())
    llm = ScriptedChatModel(default_response=tool_call_message("MemoryOperations",
                                                               {"operations": []}))
    manager = MemoryManager(store, llm, skip_small_talk=gate)
    small = facts = 0
    missed: list[str] = []
    for n, (text, memorable) in enumerate(CORPUS):
        before = llm.call_count
        manager.process([("user", text), ("assistant", "Sure!")], user_id=f"u{n}")
        spent = llm.call_count - before
        if memorable:
            facts += spent
            if not spent:
                missed.append(text)
        else:
            small += spent
    store.close()
    return small, facts, missed


def main() -> None:
    n_small = sum(1 for _, m in CORPUS if not m)
    n_facts = len(CORPUS) - n_small
    print(f"corpus: {len(CORPUS)} turns ({n_small} small talk / questions, {n_facts} with facts)")
    for gate in (False, True):
        small, facts, missed = calls(gate)
        print(f"gate {'on ' if gate else 'off'}: calls per small-talk turn "
              f"{small / n_small:.2f}, calls per fact turn {facts / n_facts:.2f}, "
              f"facts missed {len(missed)} {missed}")


if __name__ == "__main__":
    main()
