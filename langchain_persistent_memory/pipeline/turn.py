"""One conversation turn, from messages to committed operations (logic only, no I/O).

Flow: the local gate (small talk and pure questions stop here) → fetch the user's memories
related to the turn (one embedding, cached by the store) → one model call that extracts and
reconciles (or two, in two-call mode) → read the answer leniently, check it strictly, one
repair at most → keep only operations grounded in the user's own words → apply everything in
one transaction. See :mod:`.steps` for how the I/O is executed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from ..errors import ExtractionError, InvalidInputError, MemoryNotFoundError
from ..models import AddOp, Memory, Operation, ScoredMemory
from ..untrusted import quote
from ..validation import content_hash
from .checks import Limits, PlannedOp
from .extract import Checked, Evidence, ShownTurn, show_turn, validate_facts
from .gate import answers_a_question, nothing_memorable
from .messages import Role, TurnMessage, user_texts
from .model_answers import ExtractedFacts, MemoryOperations
from .prompts import PipelinePrompts
from .reconcile import Provenance, changes, describe_memories, to_store_ops, validate_operations
from .recover import payload_of
from .results import MemoryChange, ProcessResult
from .steps import Apply, Search, Steps
from .structured import ModelCall, ModelReply

__all__ = ["TurnSettings", "Usage", "ask_validated", "process_steps"]

logger = logging.getLogger("langchain_persistent_memory.pipeline")

RAW_MODE_NOTICE = (
    "MemoryManager has no chat model: each user message is stored as it is. Fact extraction, "
    "updates and supersession need one: MemoryManager(store, llm=<any LangChain chat model>)."
)

Validate = Callable[[Any, str, bool], Checked]


@dataclass(frozen=True)
class TurnSettings:
    """How turns are processed; fixed per manager."""

    has_llm: bool
    prompts: PipelinePrompts
    limits: Limits
    related_k: int = 10
    two_call: bool = False
    max_message_chars: int = 4000
    max_turn_chars: int = 24000
    skip_small_talk: bool = True
    extract_from: frozenset[Role] = frozenset()
    model_name: str | None = None


@dataclass
class Usage:
    """LLM calls and tokens spent so far in one run, and what was dropped."""

    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    last_error: str | None = field(default=None)
    dropped: list[str] = field(default_factory=list)

    def add(self, reply: ModelReply) -> None:
        self.llm_calls += 1
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens


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
                  validate: Validate, prompts: PipelinePrompts,
                  usage: Usage) -> Steps[list[PlannedOp] | None]:
    """Call the model, validate, and retry once with the error; ``None`` if still invalid.

    An answer whose operations were *all* dropped as ungrounded also gets the repair;
    the second time they are dropped for good (listed in ``usage.dropped``).
    """
    call = ModelCall(messages, schema, run_name)
    for attempt in range(2):
        reply: ModelReply = yield call
        usage.add(reply)
        try:
            if reply.error:
                raise ExtractionError(reply.error)
            payload, raw_text = payload_of(reply.raw, reply.parsed)
            checked = validate(payload, raw_text, attempt == 1)
        except ExtractionError as exc:
            usage.last_error = str(exc)
            if attempt == 1:
                return None
            repair = prompts.repair_template.format(error=exc)
            call = ModelCall([*messages, AIMessage(content=_answer_text(reply)),
                              HumanMessage(content=repair)], schema, f"{run_name}.repair")
            continue
        usage.dropped.extend(checked.dropped)
        return checked.ops
    return None  # pragma: no cover - the loop always returns


def _strict_first(check: Callable[[Any, str], Checked]) -> Validate:
    """On the first attempt, an answer whose every operation was dropped for lack of
    grounding is sent back once (it usually just forgot ``evidence``)."""

    def validate(payload: Any, raw_text: str, final: bool) -> Checked:
        checked = check(payload, raw_text)
        if not final and checked.dropped and not checked.ops:
            raise ExtractionError(
                "; ".join(checked.dropped)[:800] + ". Each ADD, UPDATE and SUPERSEDE needs "
                "'evidence': the user's own words, quoted exactly from a user message; leave "
                "out facts the user did not state")
        return checked

    return validate


def _fact_line(fact: PlannedOp) -> str:
    if fact.op == "DELETE":
        return f"- the user asks to forget: {quote(str(fact.content))}"
    since = f" (since {fact.valid_from:%Y-%m-%d})" if fact.valid_from else ""
    return f"- {quote(str(fact.content))}{since} evidence: {quote(str(fact.evidence))}"


def _format_now(timestamp: datetime) -> str:
    return f"{timestamp:%Y-%m-%d (%A) %H:%M} UTC"


def _raw_steps(texts: list[str], user_id: str, settings: TurnSettings, timestamp: datetime,
               agent_id: str | None, session_id: str | None) -> Steps[ProcessResult]:
    ops: list[Operation] = []
    for text in dict.fromkeys(texts):
        if len(text) > settings.max_message_chars:
            logger.warning("raw mode: a %d-character message was cut to %d characters "
                           "(max_message_chars)", len(text), settings.max_message_chars)
            text = text[:settings.max_message_chars]
        ops.append(AddOp(content=text, agent_id=agent_id, session_id=session_id,
                         valid_from=timestamp, metadata={"source": "raw"}))
    applied = yield Apply(ops)
    return ProcessResult(user_id=user_id, status="raw", operations=tuple(changes(applied)))


def _related(related: list[ScoredMemory]) -> dict[str, Memory]:
    return {f"m{i + 1}": hit.memory for i, hit in enumerate(related)}


def _one_call_plan(shown: ShownTurn, handles: dict[str, Memory], timestamp: datetime,
                   settings: TurnSettings, usage: Usage) -> Steps[list[PlannedOp] | None]:
    """Extract and reconcile in one call: the design target."""
    prompts, evidence = settings.prompts, Evidence(shown.grounds)
    human = prompts.turn_template.format(now=_format_now(timestamp),
                                         memories=describe_memories(handles),
                                         conversation=shown.transcript)
    return (yield from ask_validated(
        [SystemMessage(content=prompts.system), HumanMessage(content=human)],
        MemoryOperations, "lpm.extract_and_reconcile",
        _strict_first(lambda p, t: validate_operations(p, t, handles, evidence,
                                                       turn_time=timestamp,
                                                       limits=settings.limits)),
        prompts, usage))


def _two_call_plan(shown: ShownTurn, handles: dict[str, Memory], timestamp: datetime,
                   settings: TurnSettings, usage: Usage) -> Steps[list[PlannedOp] | None]:
    """Extract facts, widen the related set with each fact's neighbours, then reconcile.

    ``handles`` grows in place, so validation and the store ops see the added memories.
    """
    prompts, limits, now = settings.prompts, settings.limits, _format_now(timestamp)
    evidence = Evidence(shown.grounds)
    human = prompts.extract_template.format(now=now, conversation=shown.transcript)
    facts = yield from ask_validated(
        [SystemMessage(content=prompts.extract_system), HumanMessage(content=human)],
        ExtractedFacts, "lpm.extract",
        _strict_first(lambda p, t: validate_facts(p, t, evidence, turn_time=timestamp,
                                                  limits=limits)), prompts, usage)
    if not facts:
        return facts
    for fact in facts:
        assert fact.content is not None
        shown_ids = {m.id for m in handles.values()}
        for hit in (yield Search(fact.content, settings.related_k)):
            if hit.memory.id not in shown_ids:
                shown_ids.add(hit.memory.id)
                handles[f"m{len(handles) + 1}"] = hit.memory
    human = prompts.reconcile_template.format(
        now=now, memories=describe_memories(handles),
        facts="\n".join(_fact_line(f) for f in facts))
    return (yield from ask_validated(
        [SystemMessage(content=prompts.reconcile_system), HumanMessage(content=human)],
        MemoryOperations, "lpm.reconcile",
        _strict_first(lambda p, t: validate_operations(p, t, handles, evidence,
                                                       turn_time=timestamp, limits=limits)),
        prompts, usage))


def process_steps(turn: list[TurnMessage], *, user_id: str, agent_id: str | None,
                  session_id: str | None, timestamp: datetime,
                  settings: TurnSettings) -> Steps[ProcessResult]:
    """The whole turn as a step generator (see :mod:`.steps`)."""
    texts = user_texts(turn)
    if not texts and not any(m.role in settings.extract_from for m in turn):
        return ProcessResult(user_id=user_id, status="empty")
    if not settings.has_llm:
        return (yield from _raw_steps(texts, user_id, settings, timestamp, agent_id, session_id))
    if settings.skip_small_talk and not settings.extract_from and \
            not answers_a_question(turn) and nothing_memorable(texts):
        return ProcessResult(user_id=user_id, status="nothing_memorable")

    shown = show_turn(turn, max_message_chars=settings.max_message_chars,
                      max_turn_chars=settings.max_turn_chars,
                      extract_from=settings.extract_from)
    query = "\n".join(m.text for m in shown.grounds)[:settings.max_message_chars]
    handles = _related((yield Search(query, settings.related_k)))
    by_hash = {m.content_hash: m for m in handles.values()}
    if texts and all(content_hash(t) in by_hash for t in texts):
        same = tuple(MemoryChange("none", by_hash[content_hash(t)], duplicate=True)
                     for t in dict.fromkeys(texts))
        return ProcessResult(user_id=user_id, status="duplicate", operations=same)

    usage = Usage()
    planner = _two_call_plan if settings.two_call else _one_call_plan
    plan = yield from planner(shown, handles, timestamp, settings, usage)
    counts: dict[str, Any] = {"llm_calls": usage.llm_calls, "input_tokens": usage.input_tokens,
                              "output_tokens": usage.output_tokens,
                              "dropped": tuple(usage.dropped), "notes": shown.notes}
    if plan is None:
        logger.warning("memory turn skipped for user %r: the model's output was invalid "
                       "after one repair (%s)", user_id, usage.last_error)
        return ProcessResult(user_id=user_id, status="skipped", error=usage.last_error,
                             **counts)
    if usage.dropped:
        logger.info("memory turn of user %r: dropped %s", user_id, "; ".join(usage.dropped))

    provenance = Provenance(model=settings.model_name, agent_id=agent_id, session_id=session_id)
    ops, unchanged = to_store_ops(plan, handles, timestamp=timestamp, provenance=provenance)
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
                         operations=tuple(changes(applied) + unchanged), **counts)
