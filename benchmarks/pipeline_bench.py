"""Pipeline benchmark: a scripted 50-turn, 5-session conversation through MemoryManager.

The chat model is a counting fake that follows the script: for each turn it knows the
intended operation (add, update, supersede, delete, nothing) and, like a real model, can
only refer to an existing memory if the pipeline retrieved it and showed it under a handle.
So the run measures what the pipeline controls: model calls per turn, prompt size, the
pipeline's own time per turn excluding the model, and whether the memory a turn changes was
retrieved. Tokens are estimated as characters / 4 (no tokenizer download).

Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/pipeline_bench.py --json pipeline.json
    .venv/bin/python benchmarks/pipeline_bench.py --embeddings hash      # no model load
    .venv/bin/python benchmarks/pipeline_bench.py --two-call             # extract + reconcile
    .venv/bin/python benchmarks/pipeline_bench.py --threads 1      # busy machine
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_persistent_memory import MemoryManager, MemoryStore

# (user says, intended op, needle naming the memory it changes, fact content)
Turn = tuple[str, str, str | None, str | None]
SESSIONS: list[list[Turn]] = [
    [
        ("Hi! I'm Maya, nice to meet you.", "ADD", None, "The user's name is Maya."),
        ("I work as a data engineer at Northwind.", "ADD", None,
         "The user works as a data engineer at Northwind."),
        ("What's the weather like on Mars?", "NOTHING", None, None),
        ("I code mostly in VS Code.", "ADD", None, "The user codes in VS Code."),
        ("I live in Porto with my partner.", "ADD", None, "The user lives in Porto."),
        ("Thanks, that's helpful!", "NOTHING", None, None),
        ("I have a dog called Biscuit.", "ADD", None, "The user has a dog called Biscuit."),
        ("I'm allergic to shellfish.", "ADD", None, "The user is allergic to shellfish."),
        ("Can you explain how a B-tree works?", "NOTHING", None, None),
        ("I prefer tea over coffee.", "ADD", None, "The user prefers tea over coffee."),
    ],
    [
        ("Good morning!", "NOTHING", None, None),
        ("Biscuit is a border collie, by the way.", "UPDATE", "Biscuit",
         "The user has a border collie called Biscuit."),
        ("I switched from VS Code to NeoVim last week.", "SUPERSEDE", "VS Code",
         "The user codes in NeoVim."),
        ("I'm training for a half marathon in April.", "ADD", None,
         "The user is training for a half marathon in April."),
        ("Summarise this article for me please.", "NOTHING", None, None),
        ("My sister Ines lives in Madrid.", "ADD", None, "The user's sister Ines lives in Madrid."),
        ("As I said, I prefer tea.", "NONE", "tea", None),
        ("I'm learning Rust on weekends.", "ADD", None, "The user is learning Rust."),
        ("What's 17 times 23?", "NOTHING", None, None),
        ("I usually cycle to work.", "ADD", None, "The user usually cycles to work."),
    ],
    [
        ("Hey again.", "NOTHING", None, None),
        ("We moved from Porto to Lisbon last month.", "SUPERSEDE", "Porto",
         "The user lives in Lisbon."),
        ("Please forget that I have a sister.", "DELETE", "Ines", None),
        ("I'm vegetarian since January.", "ADD", None, "The user is vegetarian."),
        ("Tell me a joke.", "NOTHING", None, None),
        ("I got promoted to lead data engineer.", "SUPERSEDE", "data engineer",
         "The user is a lead data engineer at Northwind."),
        ("My favourite band is Radiohead.", "ADD", None, "The user's favourite band is Radiohead."),
        ("I'm still coding in NeoVim.", "NONE", "NeoVim", None),
        ("How do I reverse a list in Python?", "NOTHING", None, None),
        ("I'm planning a trip to Japan in October.", "ADD", None,
         "The user plans a trip to Japan in October."),
    ],
    [
        ("Hello!", "NOTHING", None, None),
        ("The Japan trip will include Kyoto and Osaka.", "UPDATE", "Japan",
         "The user plans a trip to Japan (Kyoto and Osaka) in October."),
        ("I no longer cycle, I take the metro now.", "SUPERSEDE", "cycle",
         "The user takes the metro to work."),
        ("I'm reading Dune at the moment.", "ADD", None, "The user is reading Dune."),
        ("What's a good name for a cat?", "NOTHING", None, None),
        ("I adopted a cat named Miso.", "ADD", None, "The user has a cat named Miso."),
        ("I'm allergic to shellfish, remember?", "NONE", "shellfish", None),
        ("I play padel on Thursdays.", "ADD", None, "The user plays padel on Thursdays."),
        ("Explain transformers briefly.", "NOTHING", None, None),
        ("I finished Dune, now reading Hyperion.", "SUPERSEDE", "Dune",
         "The user is reading Hyperion."),
    ],
    [
        ("Hi, it's Maya.", "NONE", "Maya", None),
        ("The half marathon went well, 1:52!", "SUPERSEDE", "half marathon",
         "The user ran a half marathon in 1:52."),
        ("I'm not learning Rust any more.", "DELETE", "Rust", None),
        ("I started learning Japanese for the trip.", "ADD", None,
         "The user is learning Japanese."),
        ("What's the capital of Australia?", "NOTHING", None, None),
        ("Miso the cat loves the balcony.", "UPDATE", "Miso",
         "The user has a cat named Miso who loves the balcony."),
        ("I drink green tea mostly.", "UPDATE", "tea", "The user prefers green tea over coffee."),
        ("Forget the Radiohead thing.", "DELETE", "Radiohead", None),
        ("Write a haiku about autumn.", "NOTHING", None, None),
        ("Thanks for everything today!", "NOTHING", None, None),
    ],
]
USER = "maya"


class CountingChatModel(BaseChatModel):
    """Follows the script, counts calls and (estimated) tokens, never sleeps."""

    script: dict[str, Turn]
    calls: int = 0
    misses: int = 0
    current: str | None = None

    @property
    def _llm_type(self) -> str:
        return "counting-fake"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self.calls += 1
        prompt = messages[-1].text
        if "<conversation>" in prompt:
            said = prompt.split("<conversation>")[-1]
            self.current = next((t for t in self.script if t in said), None)
            if "Existing memories" not in prompt:  # two-call mode, extraction
                return self._reply("ExtractedFacts", self._facts(), messages)
        memories = dict(re.findall(r"^\[(m\d+)\] \([^)]*\) (.*)$", prompt, re.M))
        text = self.current
        operations: list[dict[str, Any]] = []
        if text is not None:
            _, op, needle, content = self.script[text]
            handle = next((h for h, m in memories.items() if needle and needle in m), None)
            if needle is not None and handle is None:
                self.misses += 1  # a real model could not have changed the right memory
                op = "ADD" if content else "NOTHING"
            if op != "NOTHING":
                operations.append({"op": op, "handle": handle, "content": content,
                                   "category": "misc", "importance": 0.6, "evidence": text})
        return self._reply("MemoryOperations", {"operations": operations}, messages)

    def _facts(self) -> dict[str, Any]:
        """What an extraction call would find in the current turn."""
        if self.current is None:
            return {"facts": [], "forget": []}
        _, op, needle, content = self.script[self.current]
        if op == "DELETE":
            return {"facts": [], "forget": [needle]}
        if op == "NOTHING":
            return {"facts": [], "forget": []}
        return {"facts": [{"content": content or needle, "evidence": self.current}],
                "forget": []}

    def _reply(self, tool: str, args: dict[str, Any], messages: list[BaseMessage]) -> ChatResult:
        chars_in = sum(len(m.text) for m in messages)
        reply = AIMessage(content="", tool_calls=[{"name": tool, "args": args,
                                                   "id": f"call_{self.calls}"}],
                          usage_metadata={"input_tokens": chars_in // 4,
                                          "output_tokens": len(json.dumps(args)) // 4,
                                          "total_tokens": 0})
        return ChatResult(generations=[ChatGeneration(message=reply)])


class TimedEmbeddings(Embeddings):
    """Wraps the real model to split the overhead into embedding time and everything else."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.model_name = type(inner).__name__
        self.ms = 0.0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        began = time.perf_counter()
        try:
            return self.inner.embed_documents(texts)
        finally:
            self.ms += (time.perf_counter() - began) * 1000

    def embed_query(self, text: str) -> list[float]:
        began = time.perf_counter()
        try:
            return self.inner.embed_query(text)
        finally:
            self.ms += (time.perf_counter() - began) * 1000


def _embeddings(kind: str, backend: str = "auto",
                threads: int | None = None) -> TimedEmbeddings:
    if kind == "local":
        from langchain_persistent_memory import LocalEmbeddings

        return TimedEmbeddings(LocalEmbeddings(backend=backend,  # type: ignore[arg-type]
                                               threads=threads))
    from tests.support.embeddings import HashEmbeddings

    return TimedEmbeddings(HashEmbeddings(dim=384))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(kind: str, two_call: bool, folder: Path, *, backend: str = "auto",
        threads: int | None = None) -> dict[str, Any]:
    embeddings = _embeddings(kind, backend, threads)
    embeddings.embed_query("warm up")  # model load is not per-turn overhead
    script = {turn[0]: turn for session in SESSIONS for turn in session}
    llm = CountingChatModel(script=script)
    start = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    results = []
    embed_ms: list[float] = []
    for number, session in enumerate(SESSIONS):
        # A fresh store and manager per session, as in a new process reading the same files.
        store = MemoryStore(f"sqlite:///{folder / 'bench.db'}", embeddings=embeddings)
        manager = MemoryManager(store, llm, two_call=two_call)
        for i, (said, *_rest) in enumerate(session):
            when = start + timedelta(days=7 * number, minutes=i)
            turn = [{"role": "user", "content": said},
                    {"role": "assistant", "content": "Got it. Anything else I can help with?"}]
            before = embeddings.ms
            results.append(manager.process(turn, user_id=USER, session_id=f"s{number + 1}",
                                           timestamp=when))
            embed_ms.append(embeddings.ms - before)
        manager.close()
        store.close()
    store = MemoryStore(f"sqlite:///{folder / 'bench.db'}", embeddings=embeddings)
    final = sorted(m.content for m in store.list(USER))
    superseded = store.count(USER, include_superseded=True) - len(final)
    store.close()
    overhead = [r.overhead_ms for r in results]
    changing = sum(1 for s in SESSIONS for t in s if t[2] is not None)
    return {
        "embeddings": kind, "mode": "two-call" if two_call else "one-call",
        "turns": len(results), "sessions": len(SESSIONS),
        "llm_calls_per_turn": sum(r.llm_calls for r in results) / len(results),
        "prompt_tokens_per_turn": sum(r.input_tokens for r in results) / len(results),
        "output_tokens_per_turn": sum(r.output_tokens for r in results) / len(results),
        "overhead_ms": {"p50": round(statistics.median(overhead), 2),
                        "p95": round(_pct(overhead, 0.95), 2),
                        "mean": round(statistics.fmean(overhead), 2)},
        "embedding_ms": {"p50": round(statistics.median(embed_ms), 2),
                         "p95": round(_pct(embed_ms, 0.95), 2)},
        "overhead_without_embedding_ms": {
            "p50": round(statistics.median(o - e for o, e in zip(overhead, embed_ms)), 2)},
        "load_average_1min": round(os.getloadavg()[0], 2),
        "related_memory_retrieved": f"{changing - llm.misses}/{changing}",
        "skipped_turns": sum(r.skipped for r in results),
        "final_memories": len(final), "superseded_rows": superseded,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embeddings", choices=["local", "hash"], default="local",
                    help="local all-MiniLM-L6-v2 (default) or hashed bag-of-words")
    ap.add_argument("--two-call", action="store_true", help="extract, then reconcile")
    ap.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto",
                    help="LocalEmbeddings backend (auto: ONNX Runtime when installed)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads per embedding call (default: the runtime's choice)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        figures = run(args.embeddings, args.two_call, Path(tmp), backend=args.backend,
                      threads=args.threads)
        figures["wall_s"] = round(time.perf_counter() - began, 1)
        figures["backend"], figures["threads"] = args.backend, args.threads
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
