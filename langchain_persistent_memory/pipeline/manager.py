"""``MemoryManager``: turns conversation turns into memories that stay true.

It owns no data: everything goes through one :class:`MemoryStore`. ``process`` and
``aprocess`` run the same step logic (:mod:`.turn`) with blocking or async I/O; ``submit``
runs ``process`` on a background lane so a chat loop never waits for memory writes.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import weakref
from concurrent.futures import Future
from dataclasses import fields, replace
from datetime import datetime, timezone
from typing import Any, TypeVar

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from ..errors import InvalidInputError
from ..retrieval import SearchOptions
from ..store import MemoryStore
from ..validation import check_optional_id, check_user_id, to_utc
from .checks import Limits
from .consolidate import consolidate_steps
from .extract import CONTEXT_ROLES
from .messages import normalize_messages
from .prompts import PipelinePrompts
from .results import ConsolidationResult, ProcessResult
from .steps import Apply, FetchVectors, Request, Search, Steps, Timer, run_async, run_sync
from .structured import ModelCall, StructuredCaller
from .turn import RAW_MODE_NOTICE, TurnSettings, process_steps
from .turn_gate import TurnForgotten, TurnGate
from .user_locks import UserLocks
from .worker import BackgroundWorker

__all__ = ["MemoryManager"]

logger = logging.getLogger("langchain_persistent_memory.pipeline")

R = TypeVar("R", ProcessResult, ConsolidationResult)

# Reconciliation must see near-duplicates (to answer NONE) and plain relevance, not a
# date-boosted ranking: so no hit dedupe and no date boost.
RELATED_SEARCH: dict[str, Any] = {"dedupe_threshold": None, "date_boost": 0.0}


def _model_name(llm: BaseChatModel | None) -> str | None:
    if llm is None:
        return None
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(llm, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__


def _close_at_exit(ref: weakref.ReferenceType[MemoryManager]) -> None:
    manager = ref()
    if manager is not None:
        manager.close(timeout=30)


class MemoryManager:
    """Extracts, reconciles and stores a user's memories from conversation turns.

    Args:
        store: where memories live.
        llm: any LangChain chat model. ``None`` stores each user message as it is (raw
            mode) and logs once that extraction needs a chat model.
        prompts: replace any of the pipeline's prompts.
        structured_output_method: passed to ``with_structured_output`` (e.g.
            ``"function_calling"`` or ``"json_schema"``); default: the model's own default.
            Models without tool calling are asked for plain JSON automatically.
        two_call: extract first, then reconcile, in two model calls (better recall of
            related memories on long turns; a second call whenever the first finds something).
        related_k: existing memories shown to the model per turn.
        limits: caps on one model answer (operations, fact length).
        workers: background lanes for :meth:`submit`; one user always stays on one lane.
        search_options: ranking options for finding related memories (see
            :class:`~langchain_persistent_memory.retrieval.SearchOptions`); by default hybrid
            (vectors + keywords) with near-duplicate hits kept, since the model must see them.
        config: merged into every model call (callbacks, tags, metadata).
        max_message_chars: each message is cut to this many characters before the model
            sees it (a warning is logged and ``result.notes`` says so).
        max_turn_chars: budget of the whole transcript; the oldest messages are left out
            first (with a warning) when a turn is longer.
        skip_small_talk: the local gate: turns with only small talk or pure questions make
            no model call (``status == "nothing_memorable"``).
        extract_from: also show ``"tool"`` and/or ``"system"`` messages to extraction; facts
            grounded in them are stored with ``trust: "low"`` and their role. Default: none,
            only the user's own words can become facts.
    """

    def __init__(self, store: MemoryStore, llm: BaseChatModel | None = None, *,
                 prompts: PipelinePrompts | None = None,
                 structured_output_method: str | None = None, two_call: bool = False,
                 related_k: int = 10, limits: Limits | None = None, workers: int = 1,
                 search_options: dict[str, Any] | None = None,
                 config: RunnableConfig | None = None, max_message_chars: int = 4000,
                 max_turn_chars: int = 24000, skip_small_talk: bool = True,
                 extract_from: tuple[str, ...] = ()) -> None:
        if not isinstance(store, MemoryStore):
            raise InvalidInputError("store must be a MemoryStore", field="store")
        if isinstance(related_k, bool) or not isinstance(related_k, int) or \
                not 1 <= related_k <= 100:
            raise InvalidInputError("related_k must be an integer from 1 to 100",
                                    field="related_k")
        self.search_options = {**RELATED_SEARCH, **(search_options or {})}
        unknown = set(self.search_options) - {f.name for f in fields(SearchOptions)}
        if unknown:
            raise InvalidInputError(f"unknown search_options {sorted(unknown)}",
                                    field="search_options")
        SearchOptions(**self.search_options)  # raises InvalidInputError now, not per turn
        for name, value in (("max_message_chars", max_message_chars),
                            ("max_turn_chars", max_turn_chars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 100:
                raise InvalidInputError(f"{name} must be an integer ≥ 100", field=name)
        if isinstance(extract_from, str) or not set(extract_from) <= CONTEXT_ROLES:
            raise InvalidInputError("extract_from takes a tuple of 'tool' and/or 'system'",
                                    field="extract_from")
        self.store = store
        self.llm = llm
        self.prompts = prompts or PipelinePrompts()
        self.settings = TurnSettings(has_llm=llm is not None, prompts=self.prompts,
                                     limits=limits or Limits(), related_k=related_k,
                                     two_call=two_call, max_message_chars=max_message_chars,
                                     max_turn_chars=max_turn_chars,
                                     skip_small_talk=bool(skip_small_talk),
                                     extract_from=frozenset(extract_from),  # type: ignore[arg-type]
                                     model_name=_model_name(llm))
        self._caller = None if llm is None else StructuredCaller(
            llm, method=structured_output_method, prompts=self.prompts, config=config)
        self._worker = BackgroundWorker(lanes=workers)
        self._users = UserLocks()
        # Whoever forgets a user on this store (this manager, the store itself, the CLI…)
        # first stops this manager's turns of that user; the store holds the gate weakly.
        self._gate = TurnGate(self._worker.cancel)
        store.forget_guards.add(self._gate)
        self._raw_notice_logged = False
        atexit.register(_close_at_exit, weakref.ref(self))

    def __repr__(self) -> str:
        model = type(self.llm).__name__ if self.llm is not None else "raw mode"
        return f"MemoryManager({self.store!r}, llm={model})"

    # ------------------------------------------------------------------ turns
    def _turn(self, messages: Any, user_id: Any, agent_id: Any, session_id: Any,
              timestamp: Any) -> tuple[str, Steps[ProcessResult], int]:
        """Validate arguments (before any I/O), admit the turn (refused while its user is
        being forgotten) and build the step generator; also returns the turn's epoch."""
        user = check_user_id(user_id)
        epoch = self._gate.admit(user)
        turn = normalize_messages(messages)
        when = to_utc(timestamp, "timestamp") or datetime.now(timezone.utc)
        if self.llm is None and not self._raw_notice_logged:
            self._raw_notice_logged = True
            logger.warning(RAW_MODE_NOTICE)
        steps = process_steps(turn, user_id=user, agent_id=check_optional_id(agent_id, "agent_id"),
                              session_id=check_optional_id(session_id, "session_id"),
                              timestamp=when, settings=self.settings)
        return user, steps, epoch

    def process(self, messages: Any, *, user_id: str, agent_id: str | None = None,
                session_id: str | None = None,
                timestamp: datetime | None = None) -> ProcessResult:
        """Update ``user_id``'s memories from one conversation turn.

        Args:
            messages: LangChain messages, ``{"role", "content"}`` dicts, ``(role, text)``
                tuples, or a string (one user message).
            user_id: whose memories; the model never sees anyone else's.
            agent_id / session_id: recorded on new memories.
            timestamp: when the turn happened (default now); relative dates are resolved
                against it and it becomes ``valid_from`` of new facts.

        Returns:
            What was added, updated, superseded, deleted or left alone, with LLM calls and
            tokens. A turn whose model output stayed invalid has ``status == "skipped"``.

        Raises:
            InvalidInputError: bad arguments (nothing is written).
        """
        user, steps, epoch = self._turn(messages, user_id, agent_id, session_id, timestamp)
        return self._run(user, steps, epoch)

    async def aprocess(self, messages: Any, *, user_id: str, agent_id: str | None = None,
                       session_id: str | None = None,
                       timestamp: datetime | None = None) -> ProcessResult:
        """Async :meth:`process`: the model's ``ainvoke`` and the store's async methods."""
        user, steps, epoch = self._turn(messages, user_id, agent_id, session_id, timestamp)
        return await self._arun(user, steps, epoch)

    def submit(self, messages: Any, *, user_id: str, agent_id: str | None = None,
               session_id: str | None = None,
               timestamp: datetime | None = None) -> Future[ProcessResult]:
        """Process the turn in the background and return at once.

        Arguments are checked now (bad ones raise here); the turn is processed after all
        earlier turns of the same user. Errors are logged and set on the future.
        ``timestamp`` defaults to the time of this call, not of processing.
        """
        when = to_utc(timestamp, "timestamp") or datetime.now(timezone.utc)
        user, steps, epoch = self._turn(messages, user_id, agent_id, session_id, when)
        return self._worker.submit(user, lambda: self._run(user, steps, epoch))

    # ------------------------------------------------------------------ forgetting
    def forget_user(self, user_id: str) -> int:
        """Erase ``user_id`` completely, including turns of theirs not processed yet.

        The same as ``store.forget_user(user_id)``: the store stops every manager built on
        it first. Queued turns of the user are cancelled (their futures raise
        ``CancelledError``), a running one is waited for (or stops before its write if it
        was still at the model call), then the store forgets the user. Until this returns,
        new turns of the user are refused with :class:`ForgetInProgressError`; a turn
        accepted before it began and still waiting is skipped, so nothing reappears.

        Returns:
            The number of memories removed.
        """
        return self.store.forget_user(user_id)

    @property
    def forgetting(self) -> frozenset[str]:
        """Users being forgotten on this manager's store (their new turns are refused)."""
        return self._gate.forgetting

    async def aforget_user(self, user_id: str) -> int:
        """Async :meth:`forget_user` (``store.aforget_user``): also waits for the user's
        ``aprocess`` running on this event loop (the erasure itself runs in a worker
        thread)."""
        return await self.store.aforget_user(user_id)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for every submitted turn; False if ``timeout`` (seconds) ran out first."""
        return self._worker.flush(timeout)

    @property
    def pending(self) -> int:
        """Submitted turns not processed yet."""
        return self._worker.pending

    def close(self, timeout: float | None = None) -> bool:
        """Process what was submitted, then stop the background worker (the store stays open).

        Returns False if ``timeout`` ran out before the queue was drained.
        """
        return self._worker.close(timeout)

    async def aclose(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> MemoryManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MemoryManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ consolidation
    def _consolidation(self, user_id: Any, threshold: Any, max_cluster: Any,
                       max_memories: Any) -> tuple[str, Steps[ConsolidationResult]]:
        user = check_user_id(user_id)
        self._gate.admit(user)  # not while the user is being forgotten
        if self.llm is None:
            raise InvalidInputError("consolidate() needs a chat model: "
                                    "MemoryManager(store, llm=...)", field="llm")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or \
                not 0.0 < threshold <= 1.0:
            raise InvalidInputError("threshold must be in (0, 1]", field="threshold")
        for name, value in (("max_cluster", max_cluster), ("max_memories", max_memories)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise InvalidInputError(f"{name} must be an integer ≥ 2", field=name)
        return user, consolidate_steps(user, prompts=self.prompts, limits=self.settings.limits,
                                       threshold=float(threshold), max_cluster=max_cluster,
                                       max_memories=max_memories)

    def consolidate(self, user_id: str, *, threshold: float = 0.8, max_cluster: int = 8,
                    max_memories: int = 5000) -> ConsolidationResult:
        """Merge ``user_id``'s near-duplicate memories, one model call per cluster.

        Args:
            threshold: cosine similarity (of stored embeddings) that makes two memories
                candidates for a merge.
            max_cluster: most memories shown to the model at once.
            max_memories: most recent memories considered.

        Raises:
            InvalidInputError: no chat model, or bad arguments.
        """
        user, steps = self._consolidation(user_id, threshold, max_cluster, max_memories)
        return self._run(user, steps)

    async def aconsolidate(self, user_id: str, *, threshold: float = 0.8, max_cluster: int = 8,
                           max_memories: int = 5000) -> ConsolidationResult:
        user, steps = self._consolidation(user_id, threshold, max_cluster, max_memories)
        return await self._arun(user, steps)

    # ------------------------------------------------------------------ I/O executors
    def _fetch_vectors(self, user_id: str, limit: int) -> tuple[list[Any], np.ndarray]:
        current = self.store.list(user_id, limit=limit)
        full = [self.store.get(m.id, user_id=user_id, with_embedding=True) for m in current]
        if not full:
            return [], np.zeros((0, 0), dtype=np.float32)
        return full, np.asarray([m.embedding for m in full], dtype=np.float32)

    def _execute(self, user_id: str, request: Request, epoch: int | None = None) -> Any:
        if isinstance(request, ModelCall):
            assert self._caller is not None
            return self._caller.invoke(request)
        if isinstance(request, Search):
            return self.store.search(request.text, user_id=user_id, k=request.k,
                                     **self.search_options)
        if isinstance(request, Apply):
            self._gate.check(user_id, epoch)  # forgotten during the model call: no write
            return self.store.apply(request.ops, user_id=user_id)
        if isinstance(request, FetchVectors):
            return self._fetch_vectors(user_id, request.limit)
        raise TypeError(f"unknown request {request!r}")  # pragma: no cover

    async def _aexecute(self, user_id: str, request: Request, epoch: int | None = None) -> Any:
        if isinstance(request, ModelCall):
            assert self._caller is not None
            return await self._caller.ainvoke(request)
        if isinstance(request, Search):
            return await self.store.asearch(request.text, user_id=user_id, k=request.k,
                                            **self.search_options)
        if isinstance(request, Apply):
            self._gate.check(user_id, epoch)
            return await self.store.aapply(request.ops, user_id=user_id)
        # Local reads of stored vectors run in a worker thread.
        return await asyncio.to_thread(self._execute, user_id, request)

    @staticmethod
    def _forgotten(user_id: str, steps: Steps[R]) -> R:
        """The result of a turn whose user was forgotten after it was accepted."""
        steps.close()
        logger.warning("memory turn of user %r dropped: the user was forgotten after it was "
                       "accepted", user_id)
        return ProcessResult(user_id=user_id, status="skipped",  # type: ignore[return-value]
                             error="the user was forgotten after this turn was accepted")

    def _run(self, user_id: str, steps: Steps[R], epoch: int | None = None) -> R:
        """Run a turn (``epoch``: when it was accepted) or a consolidation (``None``)."""
        with self._users.hold(user_id):  # one turn per user at a time: see user_locks
            try:
                with self._gate.running(user_id, epoch):
                    timer = Timer()
                    result = run_sync(steps, lambda r: self._execute(user_id, r, epoch), timer)
            except TurnForgotten:
                return self._forgotten(user_id, steps)
        return replace(result, duration_ms=timer.elapsed_ms, model_ms=timer.model_ms)

    async def _arun(self, user_id: str, steps: Steps[R], epoch: int | None = None) -> R:
        async with self._users.ahold(user_id):
            try:
                with self._gate.running(user_id, epoch, asyncio.get_running_loop()):
                    timer = Timer()
                    result = await run_async(
                        steps, lambda r: self._aexecute(user_id, r, epoch), timer)
            except TurnForgotten:
                return self._forgotten(user_id, steps)
        return replace(result, duration_ms=timer.elapsed_ms, model_ms=timer.model_ms)
