"""The JSON Lines backup format, one line at a time: write a row, check and parse a line.

Pure functions, no I/O: :mod:`.transfer` reads and writes files and the database. The format
is described there.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import ValidationError

from ..entities import Entity
from ..errors import InvalidInputError
from ..models import EventType, Provenance
from ..scopes import NamespaceScope, is_namespace_scope
from ..validation import (
    check_content,
    check_id,
    check_importance,
    check_label,
    check_metadata,
    check_new_memory_id,
    check_optional_id,
    check_user_id,
    content_hash,
    to_utc,
)
from .entity_rows import check_links
from .origins import PROVENANCE_FIELDS, provenance_values
from .rows import decode_vector

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Header", "MemoryRecord", "bad_line", "dumps",
           "event_line", "iso", "memory_line", "records"]

FORMAT_NAME = "langchain-persistent-memory"
FORMAT_VERSION = 1

_MEMORY_KEYS = {"type", "id", "user_id", "agent_id", "session_id", "content", "category",
                "importance", "created_at", "updated_at", "valid_from", "valid_to",
                "superseded_by", "metadata", "content_hash", "embedding", "entities"}
_EVENT_KEYS = {"type", "memory_id", "user_id", "event", "old_content", "new_content",
               "created_at", "metadata", "provenance"}
_HEADER_KEYS = {"type", "format", "version", "embedding_model", "embedding_dim", "user_id",
                "memories", "events", "exported_at"}


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def memory_line(row: Any, links: list[Entity]) -> dict[str, Any]:
    """A memory row and its entity links (as stored: the extractor's and the model's)."""
    return {
        "type": "memory", "id": row.id, "user_id": row.user_id, "agent_id": row.agent_id,
        "session_id": row.session_id, "content": row.content, "category": row.category,
        "importance": row.importance, "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at), "valid_from": iso(row.valid_from),
        "valid_to": iso(row.valid_to), "superseded_by": row.superseded_by,
        "metadata": row.metadata or {}, "content_hash": row.content_hash,
        "embedding": base64.b64encode(bytes(row.embedding)).decode("ascii"),
        "entities": [{"name": e.name, "kind": e.kind, "subject": e.subject,
                      "aliases": list(e.aliases)} for e in links],
    }


def event_line(row: Any) -> dict[str, Any]:
    return {
        "type": "event", "memory_id": row.memory_id, "user_id": row.user_id,
        "event": row.event, "old_content": row.old_content, "new_content": row.new_content,
        "created_at": iso(row.created_at), "metadata": row.metadata or {},
        "provenance": None if row.p_origin is None else
        {name: getattr(row, "p_" + name) for name in PROVENANCE_FIELDS}
        | {"message_ids": row.p_message_ids or []},  # NULL: written before schema v7
    }


def _provenance(obj: dict[str, Any], lineno: int) -> dict[str, Any] | None:
    """An event line's provenance as ``lpm_provenance`` values (None: none recorded)."""
    raw = obj.get("provenance")
    if raw is None:
        return None
    try:
        return provenance_values(Provenance.model_validate(raw))
    except ValidationError as exc:
        raise bad_line(lineno, f"provenance: {exc.errors()[0]['msg']}", "provenance") from None
    except InvalidInputError as exc:
        raise bad_line(lineno, str(exc), "provenance") from None


def scope_id(value: Any) -> str:
    """A line's user id: a user, or a LangGraph namespace scope (a full backup holds both)."""
    if isinstance(value, str) and is_namespace_scope(value):
        value = NamespaceScope(value)
    return check_user_id(value)


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass
class MemoryRecord:
    values: dict[str, Any]  # column values, embedding blob filled in later if missing
    vector: np.ndarray | None
    entities: list[Entity] | None = None  # None: an older export, links come from the text


@dataclass
class Header:
    model: str | None
    dim: int | None
    memories: int | None
    events: int | None


def bad_line(lineno: int, message: str, field: str | None = None) -> InvalidInputError:
    return InvalidInputError(f"line {lineno}: {message}", field=field)


def _time(obj: dict[str, Any], key: str, lineno: int, *, required: bool) -> datetime | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise bad_line(lineno, f"{key} is required", key)
        return None
    if not isinstance(value, str):
        raise bad_line(lineno, f"{key} must be an ISO 8601 string", key)
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise bad_line(lineno, f"{key} is not an ISO 8601 time: {value!r}", key) from None
    return to_utc(parsed, key)


def _vector(value: Any, lineno: int) -> np.ndarray:
    """Base64 little-endian float32 (what export writes) or a plain list of numbers."""
    try:
        if isinstance(value, str):
            raw = base64.b64decode(value, validate=True)
            if len(raw) % 4:
                raise ValueError("length is not a multiple of 4 bytes")
            vector = decode_vector(raw)
        elif isinstance(value, list) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
            vector = np.asarray(value, dtype="<f4")
        else:
            raise ValueError("expected base64 text or a list of numbers")
    except ValueError as exc:
        raise bad_line(lineno, f"embedding is unreadable: {exc}", "embedding") from None
    if vector.size == 0 or not np.isfinite(vector).all() or not np.linalg.norm(vector) > 0:
        raise bad_line(lineno, "embedding must be a non-zero vector of finite numbers", "embedding")
    return vector


def _checked(lineno: int, check: Callable[[], Any]) -> Any:
    """Run a validator and prefix its error with the line number."""
    try:
        return check()
    except InvalidInputError as exc:
        raise bad_line(lineno, str(exc), exc.field) from None


def _parse_memory(obj: dict[str, Any], lineno: int, max_chars: int) -> MemoryRecord:
    unknown = set(obj) - _MEMORY_KEYS
    if unknown:
        raise bad_line(lineno, f"unknown memory fields {sorted(unknown)}")
    memory_id = _checked(lineno, lambda: check_id(obj.get("id"), "id"))
    _checked(lineno, lambda: check_new_memory_id(memory_id))
    content = _checked(lineno, lambda: check_content(obj.get("content"), max_chars=max_chars))
    digest = content_hash(content)
    if obj.get("content_hash") not in (None, digest):
        raise bad_line(lineno, "content_hash does not match content (edited after export?); "
                   "drop content_hash and embedding to have the text embedded again",
                   "content_hash")
    superseded_by = _checked(lineno, lambda: check_optional_id(obj.get("superseded_by"),
                                                                "superseded_by"))
    values = {
        "id": memory_id,
        "user_id": _checked(lineno, lambda: scope_id(obj.get("user_id"))),
        "agent_id": _checked(lineno, lambda: check_optional_id(obj.get("agent_id"), "agent_id")),
        "session_id": _checked(lineno, lambda: check_optional_id(obj.get("session_id"),
                                                                 "session_id")),
        "content": content,
        "category": _checked(lineno, lambda: check_label(obj.get("category"))),
        "importance": _checked(lineno, lambda: check_importance(obj.get("importance", 0.5))),
        "created_at": _time(obj, "created_at", lineno, required=True),
        "updated_at": _time(obj, "updated_at", lineno, required=True),
        "valid_from": _time(obj, "valid_from", lineno, required=True),
        "valid_to": _time(obj, "valid_to", lineno, required=False),
        "superseded_by": superseded_by,
        "metadata": _checked(lineno, lambda: check_metadata(obj.get("metadata"))),
        "content_hash": digest,
    }
    raw = obj.get("embedding")
    links = obj.get("entities")
    return MemoryRecord(values, None if raw is None else _vector(raw, lineno),
                        None if links is None else
                        _checked(lineno, lambda: check_links(links, content)))


def _parse_event(obj: dict[str, Any], lineno: int) -> dict[str, Any]:
    unknown = set(obj) - _EVENT_KEYS
    if unknown:
        raise bad_line(lineno, f"unknown event fields {sorted(unknown)}")
    try:
        event = EventType(obj.get("event")).value
    except ValueError:
        raise bad_line(lineno, f"event must be one of {[e.value for e in EventType]}",
                   "event") from None
    texts = {}
    for key in ("old_content", "new_content"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise bad_line(lineno, f"{key} must be a string or null", key)
        texts[key] = value
    return {
        "memory_id": _checked(lineno, lambda: check_id(obj.get("memory_id"), "memory_id")),
        "user_id": _checked(lineno, lambda: scope_id(obj.get("user_id"))),
        "event": event, **texts,
        "created_at": _time(obj, "created_at", lineno, required=True),
        "metadata": _checked(lineno, lambda: check_metadata(obj.get("metadata"))),
        "provenance": _provenance(obj, lineno),
    }


def _parse_header(obj: dict[str, Any]) -> Header:
    if obj.get("format") != FORMAT_NAME:
        raise bad_line(1, f"not a {FORMAT_NAME} export (format {obj.get('format')!r})", "format")
    if obj.get("version") != FORMAT_VERSION:
        raise bad_line(1, f"export format version {obj.get('version')!r} is not supported "
                   f"(this release reads version {FORMAT_VERSION})", "version")
    unknown = set(obj) - _HEADER_KEYS
    if unknown:
        raise bad_line(1, f"unknown header fields {sorted(unknown)}")
    for key in ("embedding_dim", "memories", "events"):
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise bad_line(1, f"{key} must be a non-negative integer", key)
    model = obj.get("embedding_model")
    if model is not None and not isinstance(model, str):
        raise bad_line(1, "embedding_model must be a string", "embedding_model")
    return Header(model, obj.get("embedding_dim"), obj.get("memories"), obj.get("events"))


def records(lines: Iterator[str], max_chars: int) -> Iterator[tuple[int, str, Any]]:
    """Yield ``(lineno, kind, record)``; the header first. Raises on the first bad line."""
    seen_header = False
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise bad_line(lineno, f"not valid JSON: {exc}") from None
        except RecursionError:  # the parser recurses once per level of nesting
            raise bad_line(lineno, "JSON nested too deeply to read") from None
        if not isinstance(obj, dict):
            raise bad_line(lineno, "each line must be a JSON object")
        kind = obj.get("type")
        if not seen_header:
            if kind != "header":
                raise bad_line(lineno, "the first line must be the export header", "type")
            seen_header = True
            yield lineno, "header", _parse_header(obj)
        elif kind == "memory":
            yield lineno, "memory", _parse_memory(obj, lineno, max_chars)
        elif kind == "event":
            yield lineno, "event", _parse_event(obj, lineno)
        else:
            raise bad_line(lineno, f"unknown line type {kind!r}", "type")
    if not seen_header:
        raise InvalidInputError("the file is empty: no export header", field="src")


