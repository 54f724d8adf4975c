"""Asking a chat model for one of our schemas, with a JSON-mode fallback.

``with_structured_output`` (tool calling or JSON schema) is used whenever the model supports
it; a model without tool calling (``bind_tools`` raises ``NotImplementedError``) is asked
for plain JSON instead. The schema is handed over as a JSON-schema *dict*, never as the
pydantic class: with a class, some clients (``ChatOpenAI``'s ``json_schema`` method) validate
the answer themselves and raise out of the call when it does not fit. Either way the raw
message is kept, for token usage and so that :mod:`.recover` can read the answer itself.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ValidationError

from .prompts import PipelinePrompts

__all__ = ["ModelCall", "ModelReply", "StructuredCaller"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCall:
    """One request to the chat model: prompt messages, the schema wanted, the trace name."""

    messages: list[BaseMessage]
    schema: type[BaseModel]
    run_name: str


@dataclass(frozen=True)
class ModelReply:
    """The raw answer plus whatever the structured-output parser made of it."""

    raw: AIMessage | None
    parsed: Any
    input_tokens: int
    output_tokens: int
    error: str | None = None


def _usage(raw: AIMessage | None) -> tuple[int, int]:
    usage = getattr(raw, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)


class StructuredCaller:
    """Builds (once per schema) and runs the structured-output runnable of a chat model.

    Args:
        llm: any LangChain chat model.
        method: passed to ``with_structured_output`` (``"function_calling"``,
            ``"json_schema"``, ``"json_mode"``); ``None`` keeps the model's default.
        prompts: supplies the JSON instructions used by the fallback.
        config: merged into every call (callbacks, tags, metadata).
    """

    def __init__(self, llm: BaseChatModel, *, method: str | None, prompts: PipelinePrompts,
                 config: RunnableConfig | None = None) -> None:
        self.llm = llm
        self.method = method
        self.prompts = prompts
        self.config: RunnableConfig = config or {}
        self._runnables: dict[type[BaseModel], Runnable[Any, Any] | None] = {}
        self._lock = threading.Lock()

    def _runnable(self, schema: type[BaseModel]) -> Runnable[Any, Any] | None:
        """The structured runnable, or ``None`` when the model needs the JSON fallback."""
        with self._lock:
            if schema not in self._runnables:
                kwargs: dict[str, Any] = {"include_raw": True}
                if self.method is not None:
                    kwargs["method"] = self.method
                try:
                    self._runnables[schema] = self.llm.with_structured_output(
                        schema.model_json_schema(), **kwargs)
                except NotImplementedError:
                    logger.info("%s has no tool calling; asking it for plain JSON instead",
                                type(self.llm).__name__)
                    self._runnables[schema] = None
            return self._runnables[schema]

    def _json_messages(self, call: ModelCall) -> list[BaseMessage]:
        schema = json.dumps(call.schema.model_json_schema(), separators=(",", ":"))
        note = self.prompts.json_instructions.format(schema=schema)
        messages = list(call.messages)
        if messages and isinstance(messages[0], SystemMessage):
            messages[0] = SystemMessage(content=f"{messages[0].text}\n\n{note}")
        else:
            messages.insert(0, SystemMessage(content=note))
        return messages

    def _config(self, call: ModelCall) -> RunnableConfig:
        tags = [*self.config.get("tags", []), "langchain-persistent-memory"]
        return {**self.config, "run_name": call.run_name, "tags": tags}

    def _plan(self, call: ModelCall) -> tuple[Runnable[Any, Any], list[BaseMessage], bool]:
        runnable = self._runnable(call.schema)
        if runnable is None:
            return self.llm, self._json_messages(call), False
        # JSON mode constrains the syntax only: the schema has to be in the prompt.
        messages = self._json_messages(call) if self.method == "json_mode" else call.messages
        return runnable, messages, True

    @staticmethod
    def _reply(output: Any, structured: bool) -> ModelReply:
        if structured and isinstance(output, dict):
            raw, parsed = output.get("raw"), output.get("parsed")
        else:
            raw, parsed = output, None
        raw = raw if isinstance(raw, AIMessage) else None
        return ModelReply(raw, parsed, *_usage(raw))

    def invoke(self, call: ModelCall) -> ModelReply:
        runnable, messages, structured = self._plan(call)
        try:
            output = runnable.invoke(messages, config=self._config(call))
        except ValidationError as exc:
            return _malformed(exc)
        return self._reply(output, structured)

    async def ainvoke(self, call: ModelCall) -> ModelReply:
        runnable, messages, structured = self._plan(call)
        try:
            output = await runnable.ainvoke(messages, config=self._config(call))
        except ValidationError as exc:
            return _malformed(exc)
        return self._reply(output, structured)


def _malformed(exc: ValidationError) -> ModelReply:
    """A reply the client could not even build a message from (e.g. tool-call arguments
    that are a JSON list): an unusable answer, repaired or skipped like any other, not a
    provider failure to raise."""
    errors = exc.errors()
    where = ".".join(str(x) for x in errors[0]["loc"]) if errors else "?"
    why = errors[0]["msg"] if errors else "invalid"
    return ModelReply(None, None, 0, 0, error=f"the answer could not be read ({where}: {why})")
