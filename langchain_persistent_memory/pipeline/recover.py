"""Recovering the operations from a chat model's answer that does not quite fit the schema.

Why: local models (Ollama, vLLM, llama.cpp) and some hosted ones often answer with code
fences, trailing prose, single quotes, trailing commas, a truncated object, fields under
other names or a missing ``op``. Such an answer is usually recoverable without a second
call. Everything here is pure and lenient in *shape* only: the result still goes through the
strict checks of :mod:`.reconcile` / :mod:`.extract`, so nothing unchecked reaches the store.
An item cut off by a truncated answer is dropped, never stored half-written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import json_repair
from langchain_core.messages import AIMessage
from pydantic import BaseModel

from ..errors import ExtractionError

__all__ = ["payload_of", "recover_items"]

_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)(?:```|$)", re.DOTALL)
_HANDLE = re.compile(r"^\[?\s*m\s*(\d{1,4})\s*\]?$", re.IGNORECASE)

# Names models use for our fields, by field.
_ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "op": ("operation", "action", "type", "event", "kind", "op_type", "opName"),
    "handle": ("memory_handle", "memory_id", "id", "target", "ref", "existing", "mem"),
    "content": ("text", "fact", "value", "new_content", "statement", "sentence",
                "new_fact", "updated_content", "description"),
    "evidence": ("quote", "user_words", "source_text", "span", "citation", "said"),
    "importance": ("priority", "weight", "score", "salience"),
    "valid_from": ("date", "since", "start_date", "valid_since", "from"),
    "category": ("tag", "topic", "label", "kind_of_fact"),
}
_LIST_ALIASES: dict[str, tuple[str, ...]] = {
    "operations": ("ops", "actions", "changes", "memory_operations", "updates", "memories",
                   "items", "result", "results", "operation_list"),
    "facts": ("extracted_facts", "memories", "items", "result", "results", "fact_list"),
    "merges": ("merge", "groups", "result", "results"),
}
_OP_WORDS = {
    "ADD": ("add", "create", "insert", "new", "store", "remember", "save"),
    "UPDATE": ("update", "edit", "modify", "refine", "change"),
    "SUPERSEDE": ("supersede", "replace", "supercede", "overwrite"),
    "DELETE": ("delete", "remove", "forget", "erase"),
    "NONE": ("none", "noop", "no_op", "keep", "skip", "no_change", "nothing", "unchanged"),
}
_OP_NAMES = {word: op for op, words in _OP_WORDS.items() for word in words}
_IMPORTANCE_WORDS = {"low": 0.2, "medium": 0.5, "moderate": 0.5, "normal": 0.5, "high": 0.8,
                     "critical": 1.0, "essential": 1.0, "trivial": 0.1}


def _loads(text: str) -> Any:
    """Strict JSON first (whole text, fences, outer braces), then a tolerant repair."""
    return _parse(text)[0]


def _parse(text: str) -> tuple[Any, bool]:
    """The JSON value in ``text`` and whether it needed repairing."""
    stripped = text.strip()
    candidates = [stripped, *(m.strip() for m in _FENCE.findall(text))]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate), False
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            continue
    if start >= 0:
        try:  # the first complete object, when another one (or prose) follows it
            return json.JSONDecoder().raw_decode(text, start)[0], False
        except (ValueError, RecursionError):
            pass
    fenced = _FENCE.findall(text)
    source = fenced[0] if fenced else stripped
    first = min((i for i in (source.find("{"), source.find("[")) if i >= 0), default=-1)
    if first < 0:
        raise ExtractionError("the answer is not valid JSON (no object found)")
    try:
        value = json_repair.loads(source[first:])
    except (ValueError, RecursionError):  # pragma: no cover - json_repair is tolerant
        value = None
    if not isinstance(value, (dict, list)) or not value:
        raise ExtractionError("the answer is not valid JSON")
    return value, True


def payload_of(raw: AIMessage | None, parsed: Any = None) -> tuple[Any, str]:
    """The model's answer as plain data, and the raw text when it had to be repaired
    ("" otherwise: a strictly valid answer cannot have been cut off).

    Order: a tool call's arguments (valid or not), JSON in the message text (read here, not
    by the client's parser, which would silently complete a truncated answer), then
    whatever the structured parser made of it.

    Raises:
        ExtractionError: nothing usable in the message.
    """
    if raw is None or (not raw.tool_calls and not raw.invalid_tool_calls
                       and not raw.text.strip()):
        if isinstance(parsed, BaseModel):
            return parsed.model_dump(), ""
        if parsed is not None:
            return parsed, ""
    if raw is None:
        raise ExtractionError("the model returned nothing")
    if raw.tool_calls:
        return raw.tool_calls[0]["args"], ""
    if raw.invalid_tool_calls:
        args = str(raw.invalid_tool_calls[0].get("args") or "")
        value, repaired = _parse(args)
        return value, args if repaired else ""
    text = raw.text
    if not text.strip():
        raise ExtractionError("the answer is empty")
    value, repaired = _parse(text)
    return value, text if repaired else ""


def _unwrap(payload: Any, key: str) -> Any:
    """Find the list named ``key`` under the names and wrappings models use."""
    if isinstance(payload, str):
        payload = _loads(payload)
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, Mapping):
        raise ExtractionError(f"the answer must be a JSON object with the list '{key}'")
    if key in payload:
        value = payload[key]
        return _loads(value) if isinstance(value, str) and value.strip()[:1] in "[{" else value
    for alias in _LIST_ALIASES.get(key, ()):
        if alias in payload and isinstance(payload[alias], (list, dict)):
            value = payload[alias]
            return [value] if isinstance(value, dict) else value
    if len(payload) == 1:  # {"MemoryOperations": {...}} or {"response": {...}}
        (inner,) = payload.values()
        if isinstance(inner, (Mapping, list)):
            return _unwrap(inner, key)
    if key == "operations" and any(k in payload for k in ("op", "content", *_ITEM_ALIASES["op"])):
        return [payload]  # a single operation without the list around it
    if key == "facts" and "content" in payload:
        return [payload]
    raise ExtractionError(f"the answer must be a JSON object with the list '{key}'")


def _op_name(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    word = value.strip().strip("\"'").lower().replace("-", "_").replace(" ", "_")
    return _OP_NAMES.get(word, value.strip().upper())


def _handle(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"m{value}"
    if isinstance(value, str):
        match = _HANDLE.match(value.strip())
        if match:
            return f"m{int(match.group(1))}"
    return value


def _importance(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _IMPORTANCE_WORDS:
        return _IMPORTANCE_WORDS[value.strip().lower()]
    return value


def _content(value: Any) -> Any:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return value


def _item(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    """One item with our field names; ``op`` inferred when it can only be one thing."""
    item = dict(raw)
    for name, aliases in _ITEM_ALIASES.items():
        if name in item:
            continue
        for alias in aliases:
            if alias in item:
                item[name] = item.pop(alias)
                break
    if "memory" in item and not isinstance(item.get("memory"), Mapping):
        value = item.pop("memory")
        target = "handle" if _HANDLE.match(str(value).strip()) else "content"
        item.setdefault(target, value)
    if key != "operations":
        return item
    if "handle" in item:
        item["handle"] = _handle(item["handle"])
    if "op" not in item or item.get("op") in (None, ""):
        has_handle, has_content = bool(item.get("handle")), bool(item.get("content"))
        if has_content and not has_handle:
            item["op"] = "ADD"
        elif has_handle and not has_content:
            item["op"] = "NONE"
    item["op"] = _op_name(item.get("op"))
    item["importance"] = _importance(item.get("importance"))
    item["content"] = _content(item.get("content"))
    return item


def _complete(item: Mapping[str, Any], raw_text: str) -> bool:
    """False when the item's text was cut off by a truncated answer (a closing quote
    after it is missing from the raw text)."""
    if not raw_text:
        return True
    for name in ("content", "evidence"):
        value = item.get(name)
        if isinstance(value, str) and value:
            tail = value[-12:]
            forms = {tail, json.dumps(tail)[1:-1], json.dumps(tail, ensure_ascii=False)[1:-1]}
            if not any(f"{form}{quote}" in raw_text for form in forms for quote in "\"'"):
                return False
    return True


def recover_items(payload: Any, raw_text: str, key: str) -> tuple[list[Any], int]:
    """The items of the list ``key``, renamed and typed the way the schema asks.

    Returns:
        The items (non-objects are kept for the strict checks to reject) and how many were
        dropped because a truncated answer cut them off.

    Raises:
        ExtractionError: no such list anywhere in the answer.
    """
    items = _unwrap(payload, key)
    if items is None:
        return [], 0
    if not isinstance(items, list):
        raise ExtractionError(f"'{key}' must be a list")
    kept: list[Any] = []
    cut = 0
    for raw in items:
        if isinstance(raw, Mapping):
            if not _complete(raw, raw_text):
                cut += 1
                continue
            kept.append(_item(raw, key))
        else:
            kept.append(raw)
    return kept, cut
