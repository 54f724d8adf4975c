"""One conversation turn, from messages to committed operations (logic only, no I/O).

Flow: fetch the user's memories related to the turn (one embedding, cached by the store) →
one model call that extracts and reconciles (or two, in two-call mode) → validate, one
repair at most → apply every operation in one transaction. See :mod:`.steps` for how the
I/O is executed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from ..errors import ExtractionError, InvalidInputError, MemoryNotFoundError
from ..models import AddOp, DeleteOp, Memory, Operation, ScoredMemory, SupersedeOp, UpdateOp
from ..validation import content_hash
from .messages import TurnMessage, render_transcript, user_texts
from .parsing import Limits, PlannedOp, payload_of, validate_facts, validate_operations
from .prompts import PipelinePrompts
from .results import MemoryChange, ProcessResult
from .schema import ExtractedFacts, MemoryOperations
from .steps import Apply, Search, Steps
from .structured import ModelCall, ModelReply

__all__ = ["TurnSettings", "Usage", "ask_validated", "describe_memories", "process_steps"]

logger = logging.getLogger("langchain_persistent_memory.pipeline")

RAW_MODE_NOTICE = (
    "MemoryManager has no chat model: each user message is stored as it is. Fact extraction, "
    "updates and supersession need one: MemoryManager(store, llm=<any LangChain chat model>)."
)


@dataclass(frozen=True)
class TurnSettings:
    """How turns are processed; fixed per manager."""

    has_llm: bool
    prompts: PipelinePrompts
    limits: Limits
    related_k: int = 10
    two_call: bool = False
    max_message_chars: int = 4000
    max_raw_chars: int = 4000


@dataclass
class Usage:
    """LLM calls and tokens spent so far in one run."""

    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    last_error: str | None = field(default=None)

    def add(self, reply: ModelReply) -> None:
        self.llm_calls += 1
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens


def describe_memories(handles: dict[str, Memory]) -> str:
    """Existing memories as ``[m1] (category, since 2026-01-01) content`` lines."""
    if not handles:
        return "(none)"
    lines = []
    for handle, memory in handles.items():
        label = ", ".join(x for x in (memory.category,
                                      f"since {memory.valid_from:%Y-%m-%d}") if x)
        lines.append(f"[{handle}] ({label}) {memory.content}")
    return "\n".join(lines)


def _answer_text(reply: ModelReply, limit: int = 2000) -> str:
    """The previous answer as text for the repair prompt (tool calls as JSON)."""
    raw = reply.raw
    if raw is None:
        return "(no answer)"
    if raw.tool_calls:
        text = json.dumps(raw.tool_calls[0]["args"], ensure_ascii=False, default=str)
    else:
        text = raw.text
    return text[:limit] + (" …" if len(text) > limit else "")


def ask_validated(messages: list[BaseMessage], schema: type[BaseModel], run_name: str,
                  validate: Callable[[Any], list[PlannedOp]], prompts: PipelinePrompts,
                  usage: Usage) -> Steps[list[PlannedOp] | None]:
    """Call the model, validate, and retry once with the error; ``None`` if still invalid."""
    call = ModelCall(messages, schema, run_name)
    for attempt in range(2):
        reply: ModelReply = yield call
        usage.add(reply)
        try:
            return validate(payload_of(reply.raw, reply.parsed))
        except ExtractionError as exc:
            usage.last_error = str(exc)
            if attempt == 1:
                return None
            repair = prompts.repair_template.format(error=exc)
            call = ModelCall([*messages, AIMessage(content=_answer_text(reply)),
                              HumanMessage(content=repair)], schema, f"{run_name}.repair")
    return None  # pragma: no cover - the loop always returns


def _fact_line(fact: PlannedOp) -> str:
    if fact.op == "DELETE":
        return f"- the user asks to forget: {fact.content}"
    since = f" (since {fact.valid_from:%Y-%m-%d})" if fact.valid_from else ""
    return f"- {fact.content}{since}"


def _format_now(timestamp: datetime) -> str:
    return f"{timestamp:%Y-%m-%d (%A) %H:%M} UTC"


def _to_store_ops(plan: Sequence[PlannedOp], handles: dict[str, Memory], *, timestamp: datetime,
                  agent_id: str | None, session_id: str | None,
                  ) -> tuple[list[Operation], list[MemoryChange]]:
    """Store operations for a validated plan, and the no-op changes (NONE, duplicates)."""
    known = {m.content_hash: m for m in handles.values()}
    ops: list[Operation] = []
    unchanged: list[MemoryChange] = []
    adding: set[str] = set()
    for p in plan:
        target = handles.get(p.handle) if p.handle else None
        if p.op == "NONE":
            if target is not None:
                unchanged.append(MemoryChange("none", target))
            continue
        if p.op == "ADD":
            assert p.content is not None
            h = content_hash(p.content)
            if h in adding:
                continue
            adding.add(h)
            if h in known:
                unchanged.append(MemoryChange("none", known[h], duplicate=True))
                continue
            ops.append(AddOp(content=p.content, category=p.category,
                             importance=0.5 if p.importance is None else p.importance,
                             agent_id=agent_id, session_id=session_id,
                             valid_from=p.valid_from or timestamp,
                             metadata={"source": "extracted"}))
        elif p.op == "UPDATE":
            assert target is not None
            if p.content == target.content and p.category in (None, target.category) \
                    and p.importance in (None, target.importance):
                unchanged.append(MemoryChange("none", target, duplicate=True))
                continue
            ops.append(UpdateOp(memory_id=target.id, content=p.content, category=p.category,
                                importance=p.importance))
        elif p.op == "SUPERSEDE":
            assert target is not None
            ops.append(SupersedeOp(memory_id=target.id, content=p.content, category=p.category,
                                   importance=p.importance,
                                   valid_from=p.valid_from or timestamp))
        else:  # DELETE
            assert target is not None
            ops.append(DeleteOp(memory_id=target.id, reason="forgotten by the memory pipeline"))
    return ops, unchanged


def _changes(applied: Sequence[Any]) -> list[MemoryChange]:
    return [MemoryChange("none" if a.duplicate_of_existing else a.kind, a.memory,
                         previous=a.previous, duplicate=a.duplicate_of_existing)
            for a in applied]


def _raw_steps(texts: list[str], user_id: str, settings: TurnSettings, timestamp: datetime,
               agent_id: str | None, session_id: str | None) -> Steps[ProcessResult]:
    ops: list[Operation] = []
    for text in dict.fromkeys(texts):
        if len(text) > settings.max_raw_chars:
            logger.warning("raw mode: a %d-character message was cut to %d characters",
                           len(text), settings.max_raw_chars)
            text = text[:settings.max_raw_chars]
        ops.append(AddOp(content=text, agent_id=agent_id, session_id=session_id,
                         valid_from=timestamp, metadata={"source": "raw"}))
    applied = yield Apply(ops)
    return ProcessResult(user_id=user_id, status="raw", operations=tuple(_changes(applied)))


def _related(related: list[ScoredMemory]) -> dict[str, Memory]:
    return {f"m{i + 1}": hit.memory for i, hit in enumerate(related)}


def _one_call_plan(turn: list[TurnMessage], handles: dict[str, Memory], timestamp: datetime,
                   settings: TurnSettings, usage: Usage) -> Steps[list[PlannedOp] | None]:
    """Extract and reconcile in one call: the design target."""
    prompts = settings.prompts
    human = prompts.turn_template.format(
        now=_format_now(timestamp), memories=describe_memories(handles),
        conversation=render_transcript(turn, max_chars=settings.max_message_chars))
    return (yield from ask_validated(
        [SystemMessage(content=prompts.system), HumanMessage(content=human)],
        MemoryOperations, "lpm.extract_and_reconcile",
        lambda p: validate_operations(p, handles, turn_time=timestamp, limits=settings.limits),
        prompts, usage))


def _two_call_plan(turn: list[TurnMessage], handles: dict[str, Memory], timestamp: datetime,
                   settings: TurnSettings, usage: Usage) -> Steps[list[PlannedOp] | None]:
    """Extract facts, widen the related set with each fact's neighbours, then reconcile.

    ``handles`` grows in place, so validation and the store ops see the added memories.
    """
    prompts, limits, now = settings.prompts, settings.limits, _format_now(timestamp)
    human = prompts.extract_template.format(
        now=now, conversation=render_transcript(turn, max_chars=settings.max_message_chars))
    facts = yield from ask_validated(
        [SystemMessage(content=prompts.extract_system), HumanMessage(content=human)],
        ExtractedFacts, "lpm.extract",
        lambda p: validate_facts(p, turn_time=timestamp, limits=limits), prompts, usage)
    if not facts:
        return facts
    for fact in facts:
        assert fact.content is not None
        shown = {m.id for m in handles.values()}
        for hit in (yield Search(fact.content, settings.related_k)):
            if hit.memory.id not in shown:
                shown.add(hit.memory.id)
                handles[f"m{len(handles) + 1}"] = hit.memory
    human = prompts.reconcile_template.format(
        now=now, memories=describe_memories(handles),
        facts="\n".join(_fact_line(f) for f in facts))
    return (yield from ask_validated(
        [SystemMessage(content=prompts.reconcile_system), HumanMessage(content=human)],
        MemoryOperations, "lpm.reconcile",
        lambda p: validate_operations(p, handles, turn_time=timestamp, limits=limits),
        prompts, usage))


def process_steps(turn: list[TurnMessage], *, user_id: str, agent_id: str | None,
                  session_id: str | None, timestamp: datetime,
                  settings: TurnSettings) -> Steps[ProcessResult]:
    """The whole turn as a step generator (see :mod:`.steps`)."""
    texts = user_texts(turn)
    if not texts:
        return ProcessResult(user_id=user_id, status="empty")
    if not settings.has_llm:
        return (yield from _raw_steps(texts, user_id, settings, timestamp, agent_id, session_id))

    handles = _related((yield Search("\n".join(texts)[:settings.max_message_chars],
                                     settings.related_k)))
    by_hash = {m.content_hash: m for m in handles.values()}
    if all(content_hash(t) in by_hash for t in texts):
        same = tuple(MemoryChange("none", by_hash[content_hash(t)], duplicate=True)
                     for t in dict.fromkeys(texts))
        return ProcessResult(user_id=user_id, status="duplicate", operations=same)

    usage = Usage()
    planner = _two_call_plan if settings.two_call else _one_call_plan
    plan = yield from planner(turn, handles, timestamp, settings, usage)
    counts = {"llm_calls": usage.llm_calls, "input_tokens": usage.input_tokens,
              "output_tokens": usage.output_tokens}
    if plan is None:
        logger.warning("memory turn skipped for user %r: the model's output was invalid "
                       "after one repair (%s)", user_id, usage.last_error)
        return ProcessResult(user_id=user_id, status="skipped", error=usage.last_error,
                             **counts)

    ops, unchanged = _to_store_ops(plan, handles, timestamp=timestamp, agent_id=agent_id,
                                   session_id=session_id)
    applied: list[Any] = []
    if ops:
        try:
            applied = yield Apply(ops)
        except (MemoryNotFoundError, InvalidInputError) as exc:
            # A memory changed between retrieval and commit (another writer): nothing was
            # written, the turn is reported as skipped rather than half-applied.
            logger.warning("memory turn skipped for user %r: %s", user_id, exc)
            return ProcessResult(user_id=user_id, status="skipped", error=str(exc), **counts)
    return ProcessResult(user_id=user_id, status="applied",
                         operations=tuple(_changes(applied) + unchanged), **counts)
