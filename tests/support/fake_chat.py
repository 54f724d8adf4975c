"""A scripted fake chat model for deterministic unit tests.

Why: most library logic (extraction, summarisation, tool routing) only needs *a* chat model
that returns known messages, records what it was asked and reports token usage. Going through
HTTP for that is slow and noisy, so :class:`ScriptedChatModel` plays back a script in-process
while still behaving like a real ``BaseChatModel`` (invoke/ainvoke/stream, callbacks,
``bind_tools`` and ``with_structured_output`` via tool calling).

Script items are consumed in order; each is an ``AIMessage`` (optionally with ``tool_calls``),
a plain string, or a callable ``(messages) -> AIMessage | str`` so a reply can depend on the
prompt. Token usage is estimated as characters // 4 and attached as ``usage_metadata`` unless
the scripted message already carries its own.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import Field, PrivateAttr, SkipValidation

ScriptedReply = AIMessage | str
ScriptItem = ScriptedReply | Callable[[list[BaseMessage]], ScriptedReply]


def tool_call_message(name: str, args: dict[str, Any], content: str = "") -> AIMessage:
    """Build an ``AIMessage`` carrying a single tool call (e.g. named after a schema)."""
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    return AIMessage(content=content, tool_calls=[tool_call(name=name, args=args, id=call_id)])


def _message_chars(message: BaseMessage) -> int:
    """Characters a message contributes to a token estimate (text plus tool-call payloads)."""
    chars = len(message.text)
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            chars += len(call["name"]) + len(json.dumps(call["args"]))
    return chars


_USER_LINE = re.compile(r"^user: (.*)$", re.MULTILINE)
_QUOTED_EVIDENCE = re.compile(r"evidence: «(.*?)»")


def _user_lines(messages: Sequence[BaseMessage]) -> list[str]:
    prompt = messages[-1].text if messages else ""
    for message in messages:  # a repair prompt: the turn is in an earlier message
        if "<conversation>" in message.text or "evidence: «" in message.text:
            prompt = message.text
    return _USER_LINE.findall(prompt) or _QUOTED_EVIDENCE.findall(prompt)


def _ground(items: Any, lines: list[str]) -> Any:
    if not isinstance(items, list) or not lines:
        return items
    grounded = []
    for item in items:
        if isinstance(item, dict) and item.get("content") and "evidence" not in item:
            words = set(re.findall(r"\w+", str(item["content"]).lower()))
            best = max(lines, key=lambda line: len(words & set(re.findall(r"\w+", line.lower()))))
            item = {**item, "evidence": best}
        grounded.append(item)
    return grounded


def _with_evidence(message: AIMessage, messages: Sequence[BaseMessage]) -> AIMessage:
    lines = _user_lines(messages)
    if message.tool_calls:
        calls = []
        for call in message.tool_calls:
            args = dict(call["args"])
            for key in ("operations", "facts"):
                if key in args:
                    args[key] = _ground(args[key], lines)
            calls.append({**call, "args": args})
        return message.model_copy(update={"tool_calls": calls})
    try:
        payload = json.loads(message.text)
    except ValueError:
        return message
    if isinstance(payload, dict):
        for key in ("operations", "facts"):
            if key in payload:
                payload[key] = _ground(payload[key], lines)
        return message.model_copy(update={"content": json.dumps(payload)})
    return message


class ScriptedChatModel(GenericFakeChatModel):
    """Chat model that plays back scripted replies and records every call.

    ``calls`` holds the input messages of each call in order; ``call_count`` is its length.
    ``bound_tools`` holds the tools from the most recent ``bind_tools`` call.
    """

    messages: Iterator[AIMessage | str] = Field(default_factory=lambda: iter(()))
    """Unused (inherited from ``GenericFakeChatModel``); the script lives in ``responses``."""
    # SkipValidation: pydantic's union validation would try to coerce str items into AIMessage.
    responses: SkipValidation[list[ScriptItem]] = Field(default_factory=list)
    """Remaining script items, consumed front to back."""
    default_response: SkipValidation[ScriptItem | None] = None
    """Reply used once the script is exhausted; ``None`` makes an exhausted script an error."""
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[Any] = Field(default_factory=list)
    quote_user: bool = True
    """Fill a missing ``evidence`` of each scripted operation or fact with the user's line it
    shares most words with, as a model following the memory prompt does. ``False`` plays the
    script back exactly (tests of grounding itself)."""

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, responses: Sequence[ScriptItem] = (), **kwargs: Any) -> None:
        """Allow ``ScriptedChatModel([...])`` with the script as the positional argument."""
        kwargs.setdefault("responses", list(responses))
        super().__init__(**kwargs)

    @property
    def _llm_type(self) -> str:
        """Identify the model in callbacks and traces."""
        return "scripted-chat"

    @property
    def call_count(self) -> int:
        """Number of model calls made so far."""
        return len(self.calls)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Record the tools and return ``self``: the script decides which tool calls happen.

        Overriding this is also what enables ``BaseChatModel.with_structured_output``, which
        binds the schema as a tool and parses the first matching tool call.
        """
        del tool_choice, kwargs
        self.bound_tools = list(tools)
        return self

    def _next_reply(self, messages: list[BaseMessage]) -> AIMessage:
        """Record the call, take the next script item and attach estimated usage."""
        with self._lock:
            self.calls.append(list(messages))
            if self.responses:
                item: ScriptItem | None = self.responses.pop(0)
            else:
                item = self.default_response
            if item is None:
                raise AssertionError(
                    f"ScriptedChatModel script exhausted after {len(self.calls) - 1} call(s); "
                    f"last input: {messages!r}"
                )
        reply = item(list(messages)) if callable(item) else item
        message = AIMessage(content=reply) if isinstance(reply, str) else reply
        if not isinstance(message, AIMessage):
            raise TypeError(f"script item produced {type(message).__name__}, not AIMessage/str")
        if self.quote_user:
            message = _with_evidence(message, messages)
        if message.usage_metadata is None:
            input_tokens = sum(_message_chars(m) for m in messages) // 4
            output_tokens = _message_chars(message) // 4
            usage = {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            }
            message = message.model_copy(update={"usage_metadata": usage})
        else:
            message = message.model_copy()
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Return the next scripted reply."""
        del stop, run_manager, kwargs
        return ChatResult(generations=[ChatGeneration(message=self._next_reply(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream the next reply word by word, then tool calls and usage in a final chunk.

        The parent implementation drops ``tool_calls`` and ``usage_metadata`` when streaming,
        so this one is written to keep them.
        """
        del stop, kwargs
        message = self._next_reply(messages)
        text = message.content if isinstance(message.content, str) else message.text
        words = text.split(" ")
        tokens = [w + " " for w in words[:-1]] + [words[-1]] if text else []
        for token in tokens:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token, id=message.id))
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        call_chunks = [
            tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
            for i, c in enumerate(message.tool_calls)
        ]
        last = AIMessageChunk(
            content="",
            id=message.id,
            tool_call_chunks=call_chunks,
            usage_metadata=message.usage_metadata,
            additional_kwargs=message.additional_kwargs,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
        final = ChatGenerationChunk(message=last)
        if run_manager:
            run_manager.on_llm_new_token("", chunk=final)
        yield final
