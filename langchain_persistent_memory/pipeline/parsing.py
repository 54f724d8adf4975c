"""Validation of the chat model's output before anything reaches the store.

The model is untrusted: its answer may be malformed JSON, the wrong shape, oversized, or
steered by text hidden in the conversation. Everything here is pure; a failure raises
:class:`ExtractionError` whose message is written so the model can fix it in one retry.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import Any

from langchain_core.messages import AIMessage
from pydantic import BaseModel

from ..errors import ExtractionError, InvalidInputError
from ..models import Memory
from ..validation import check_content, check_label

__all__ = ["Limits", "PlannedOp", "payload_of", "validate_facts", "validate_merges",
           "validate_operations"]

_OPS = {"ADD", "UPDATE", "SUPERSEDE", "DELETE", "NONE"}
_NEEDS_HANDLE = {"UPDATE", "SUPERSEDE", "DELETE"}
_NEEDS_CONTENT = {"ADD", "UPDATE", "SUPERSEDE"}
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Limits:
    """Bounds on what one model answer may ask for."""

    max_operations: int = 32
    max_fact_chars: int = 1000
    max_category_chars: int = 40


@dataclass(frozen=True)
class PlannedOp:
    """A validated operation, still on handles; :mod:`.manager` turns it into store ops."""

    op: str
    handle: str | None = None
    content: str | None = None
    category: str | None = None
    importance: float | None = None
    valid_from: datetime | None = None
    sources: tuple[str, ...] = ()


def _json_in_text(text: str) -> Any:
    """Parse a JSON object out of plain text (whole text, a code fence, or the outer braces)."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            continue
    raise ExtractionError("the answer is not valid JSON")


def payload_of(raw: AIMessage | None, parsed: Any = None) -> Any:
    """The model's answer as plain data: the parsed object, else tool-call args, else JSON text.

    Raises:
        ExtractionError: nothing usable in the message.
    """
    if isinstance(parsed, BaseModel):
        return parsed.model_dump()
    if parsed is not None:
        return parsed
    if raw is None:
        raise ExtractionError("the model returned nothing")
    if raw.tool_calls:
        return raw.tool_calls[0]["args"]
    if raw.invalid_tool_calls:
        raise ExtractionError("the tool call arguments are not valid JSON")
    text = raw.text
    if not text.strip():
        raise ExtractionError("the answer is empty")
    return _json_in_text(text)


def _items(payload: Any, key: str, limits: Limits) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or key not in payload:
        raise ExtractionError(f"the answer must be a JSON object with the list '{key}'")
    items = payload[key]
    if items is None:
        return []
    if not isinstance(items, list):
        raise ExtractionError(f"'{key}' must be a list")
    if len(items) > limits.max_operations:
        raise ExtractionError(f"{len(items)} items in '{key}'; at most "
                              f"{limits.max_operations} are allowed")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ExtractionError(f"{key}[{i}] must be an object")
    return items


def _content(value: Any, where: str, limits: Limits) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ExtractionError(f"{where}: 'content' must be a non-empty string")
    text = " ".join(value.split())
    if len(text) > limits.max_fact_chars:
        raise ExtractionError(f"{where}: content is {len(text)} characters; keep facts under "
                              f"{limits.max_fact_chars}")
    try:
        return check_content(text, max_chars=limits.max_fact_chars)
    except InvalidInputError as exc:
        raise ExtractionError(f"{where}: {exc}") from None


def _category(value: Any, where: str, limits: Limits) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > limits.max_category_chars:
        raise ExtractionError(f"{where}: 'category' must be one short word")
    try:
        label = check_label(value.strip().lower())
    except InvalidInputError as exc:
        raise ExtractionError(f"{where}: {exc}") from None
    return label


def _importance(value: Any, where: str) -> float | None:
    """Numbers are clamped into [0, 1] (models drift to 0-10 scales); non-numbers are errors."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ExtractionError(f"{where}: 'importance' must be a number") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = max(-1, min(value, 11))  # same clamp as below, before float() can overflow
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ExtractionError(f"{where}: 'importance' must be a number from 0 to 1")
    if value > 1.0:
        value = value / 10.0 if value <= 10.0 else 1.0
    return min(1.0, max(0.0, float(value)))


def _date(value: Any, where: str, turn_time: datetime) -> datetime | None:
    """An ISO date or datetime, never later than the turn (a fact cannot start in the future)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ExtractionError(f"{where}: 'valid_from' must be a YYYY-MM-DD string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ExtractionError(f"{where}: 'valid_from' {value[:40]!r} is not YYYY-MM-DD") from None
    if len(value.strip()) <= 10:
        parsed = datetime.combine(parsed.date(), time(), tzinfo=timezone.utc)
    elif parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return min(parsed.astimezone(timezone.utc), turn_time)
    except OverflowError:  # e.g. year 1 at +14:00 is before datetime.min in UTC
        raise ExtractionError(f"{where}: 'valid_from' {value[:40]!r} is out of range") from None


def validate_operations(payload: Any, handles: dict[str, Memory], *, turn_time: datetime,
                        limits: Limits) -> list[PlannedOp]:
    """Check a :class:`MemoryOperations` answer against this turn's handles.

    Only handles shown to the model in this turn are accepted, and they all belong to the
    user being processed; so no answer can touch another user's memories.

    Raises:
        ExtractionError: anything wrong, with a message for the repair prompt.
    """
    planned: list[PlannedOp] = []
    touched: dict[str, str] = {}
    for i, item in enumerate(_items(payload, "operations", limits)):
        where = f"operations[{i}]"
        op = item.get("op")
        op = op.strip().upper() if isinstance(op, str) else op
        if op not in _OPS:
            raise ExtractionError(f"{where}: 'op' must be one of {sorted(_OPS)}, got {op!r:.40}")
        handle = item.get("handle")
        if handle is not None and not isinstance(handle, str):
            raise ExtractionError(f"{where}: 'handle' must be a string such as 'm1'")
        handle = handle.strip() if handle else None
        if op in _NEEDS_HANDLE and not handle:
            raise ExtractionError(f"{where}: {op} needs the handle of an existing memory")
        if op == "ADD":
            handle = None
        if handle is not None:
            if handle not in handles:
                known = ", ".join(handles) or "none"
                raise ExtractionError(f"{where}: unknown handle {handle[:40]!r} "
                                      f"(the handles of this turn are: {known})")
            if op != "NONE" and touched.get(handle, "NONE") != "NONE":
                raise ExtractionError(f"{where}: {handle} already has a {touched[handle]} "
                                      "operation; use one operation per memory")
            touched[handle] = op if op != "NONE" else touched.get(handle, "NONE")
        content = _content(item.get("content"), where, limits) if op in _NEEDS_CONTENT \
            else None
        planned.append(PlannedOp(
            op=op, handle=handle, content=content,
            category=_category(item.get("category"), where, limits),
            importance=_importance(item.get("importance"), where),
            valid_from=_date(item.get("valid_from"), where, turn_time),
        ))
    return planned


def validate_facts(payload: Any, *, turn_time: datetime, limits: Limits) -> list[PlannedOp]:
    """Check an :class:`ExtractedFacts` answer (two-call mode).

    Facts come back as ADDs, things to forget as DELETEs whose content says what.
    """
    facts = []
    for i, item in enumerate(_items(payload, "facts", limits)):
        where = f"facts[{i}]"
        facts.append(PlannedOp(
            op="ADD", content=_content(item.get("content"), where, limits),
            category=_category(item.get("category"), where, limits),
            importance=_importance(item.get("importance"), where),
            valid_from=_date(item.get("valid_from"), where, turn_time),
        ))
    forget = payload.get("forget") or []
    if not isinstance(forget, list) or len(forget) + len(facts) > limits.max_operations:
        raise ExtractionError(f"'forget' must be a list of at most {limits.max_operations} "
                              "short phrases")
    for i, item in enumerate(forget):
        facts.append(PlannedOp(op="DELETE", content=_content(item, f"forget[{i}]", limits)))
    return facts


def validate_merges(payload: Any, handles: dict[str, Memory], *,
                    limits: Limits) -> list[PlannedOp]:
    """Check a :class:`MergePlan`: known handles, each memory merged at most once."""
    merges = []
    used: set[str] = set()
    for i, item in enumerate(_items(payload, "merges", limits)):
        where = f"merges[{i}]"
        sources = item.get("sources")
        if not isinstance(sources, list) or not sources or \
                not all(isinstance(s, str) for s in sources):
            raise ExtractionError(f"{where}: 'sources' must be a non-empty list of handles")
        clean = tuple(dict.fromkeys(s.strip() for s in sources))
        for handle in clean:
            if handle not in handles:
                raise ExtractionError(f"{where}: unknown handle {handle[:40]!r}")
            if handle in used:
                raise ExtractionError(f"{where}: {handle} is already part of another merge")
            used.add(handle)
        merges.append(PlannedOp(
            op="MERGE", sources=clean, content=_content(item.get("content"), where, limits),
            category=_category(item.get("category"), where, limits),
            importance=_importance(item.get("importance"), where),
        ))
    return merges
