"""Malformed model answers through the real ``ChatOpenAI`` client, per structured-output
method: how many turns are recovered in one call, skipped cleanly after the one repair, or
applied with every fact dropped (no or wrong evidence, cut off). Nothing may raise.

The corpus is ``tests/support/bad_answers.py`` (code fences, prose, single quotes, trailing
commas, truncated JSON, fields under other names, missing ``op``, wrong types…), served by
the local OpenAI-compatible stub.

Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/model_answers.py``
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_openai import ChatOpenAI

from langchain_persistent_memory import MemoryManager, MemoryStore
from tests.support.bad_answers import DROPPED, RECOVERED, SKIPPED, USER
from tests.support.embeddings import HashEmbeddings
from tests.support.openai_stub import OpenAIStub

METHODS = ("json_schema", "function_calling", "json_mode")


class Script:
    raw = ""

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("tools"):
            return {"tool_calls": [{"name": body["tools"][0]["function"]["name"],
                                    "arguments": self.raw}]}
        return {"content": self.raw}


def main() -> None:
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    corpus = [*(raw for raw, _ in RECOVERED.values()), *SKIPPED.values(), *DROPPED.values()]
    print(f"corpus: {len(corpus)} raw answers")
    print("| method | recovered (1 call) | repaired | skipped with reason | all facts dropped "
          "| raised |\n|---|---|---|---|---|---|")
    script = Script()
    with OpenAIStub(script) as stub, tempfile.TemporaryDirectory() as folder:
        for method in METHODS:
            counts = dict.fromkeys(("recovered", "repaired", "skipped", "dropped", "raised"), 0)
            for n, raw in enumerate(corpus):
                store = MemoryStore(f"sqlite:///{folder}/{method}-{n}.db",
                                    embeddings=HashEmbeddings())
                llm = ChatOpenAI(base_url=stub.base_url, api_key="sk-test",
                                 model="gpt-4o-mini", max_retries=0)
                script.raw = raw
                try:
                    result = MemoryManager(store, llm, structured_output_method=method).process(
                        USER, user_id="alice")
                except Exception:  # counting is the point
                    counts["raised"] += 1
                    continue
                finally:
                    store.close()
                if result.status == "skipped":
                    counts["skipped"] += 1
                elif result.dropped and not result.operations:
                    counts["dropped"] += 1
                else:
                    counts["recovered" if result.llm_calls == 1 else "repaired"] += 1
            print(f"| {method} | {counts['recovered']} | {counts['repaired']} | "
                  f"{counts['skipped']} | {counts['dropped']} | {counts['raised']} |")


if __name__ == "__main__":
    main()
