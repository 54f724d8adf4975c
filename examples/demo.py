"""The embedded-default demo: two users tell things in one process, a second process recalls.

Run through ``bash scripts/demo.sh`` (it sets everything up first), or by hand::

    python examples/demo.py remember --db demo_data/memories.db
    python examples/demo.py recall   --db demo_data/memories.db
"""

from __future__ import annotations

import argparse
import os

from langchain_persistent_memory import MemoryStore

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAID = {
    "alice": [
        ("I'm a backend developer and I mostly write Python.", "work", 0.8),
        ("Please keep answers short and technical.", "preference", 0.9),
        ("I live in Paris.", "personal", 0.6),
        ("I'm training for a half marathon in April.", "plan", 0.5),
    ],
    "bob": [
        ("I teach high-school chemistry.", "work", 0.8),
        ("I prefer long explanations with examples.", "preference", 0.9),
        ("I'm allergic to peanuts.", "health", 1.0),
    ],
}
QUESTIONS = {
    "alice": ["how should I format my answer?", "which programming language?"],
    "bob": ["how should I format my answer?", "any food restrictions?"],
}


def remember(db: str) -> None:
    print(f"[process {os.getpid()}] first run: storing what two users said in {db}")
    with MemoryStore(f"sqlite:///{db}") as store:
        for user, facts in SAID.items():
            store.add_many([{"content": c, "category": cat, "importance": imp}
                            for c, cat, imp in facts], user_id=user)
            print(f"  {user}: {store.count(user)} memories")
        # Alice moves: the old fact is superseded, not lost.
        paris = next(m for m in store.list("alice") if "Paris" in m.content)
        store.supersede(paris.id, "I moved from Paris to Berlin.", user_id="alice")
        print("  alice: 'I live in Paris.' superseded by 'I moved from Paris to Berlin.'")


def recall(db: str) -> None:
    print(f"\n[process {os.getpid()}] second run: a new process opens {db}")
    with MemoryStore(f"sqlite:///{db}") as store:
        for user, questions in QUESTIONS.items():
            for question in questions:
                print(f"\n  {user} asks: {question!r}")
                for hit in store.search(question, user_id=user, k=2):
                    # score ranks this search's hits; cosine is absolute (threshold on it)
                    print(f"    rank {hit.score:.2f}  cosine {hit.cosine:.2f}  "
                          f"[{hit.memory.category}] {hit.memory.content}")
        berlin = store.search("where does alice live?", user_id="alice", k=1)[0].memory
        print("\n  alice, where do you live? ->", berlin.content)
        old = store.history(berlin.id, user_id="alice")[0].metadata["supersedes"]
        print("  history of the superseded memory:")
        for event in store.history(old, user_id="alice"):
            print(f"    {event.created_at:%H:%M:%S} {event.event.value:9} "
                  f"{event.old_content!r} -> {event.new_content!r}")
        print("\n  scoping: bob's search for 'Berlin' ->",
              [m.content for m, _ in store.search("Berlin", user_id="bob", k=3)
               if "Berlin" in m.content] or "nothing (alice's memories never reach bob)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("step", choices=["remember", "recall"])
    parser.add_argument("--db", default="demo_data/memories.db")
    args = parser.parse_args()
    remember(args.db) if args.step == "remember" else recall(args.db)


if __name__ == "__main__":
    main()
