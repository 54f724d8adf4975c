"""Input checks shared by every write path.

They run before any I/O, so a rejected call leaves the store exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .errors import EmbeddingModelError, InvalidInputError
from .scopes import NAMESPACE_PREFIX, reserved_for_scopes

__all__ = [
    "DEFAULT_MAX_CONTENT_CHARS",
    "check_content",
    "check_embedding",
    "check_embeddings",
    "check_id",
    "check_importance",
    "check_label",
    "check_labels",
    "check_limit",
    "check_metadata",
    "check_metadata_json",
    "check_min_score",
    "check_new_memory_id",
    "check_offset",
    "check_query_vector",
    "check_user_id",
    "content_hash",
    "to_utc",
]

DEFAULT_MAX_CONTENT_CHARS = 100_000
MAX_ID_CHARS = 256
MAX_MEMORY_ID_CHARS = 36  # the width of lpm_memories.id: a UUID
MAX_LABEL_CHARS = 128
MAX_METADATA_BYTES = 64_000
MAX_METADATA_DEPTH = 20


# Unicode category Cc is exactly these code points; a regex checks an id in one C call
# (it runs for the user id of every search and add).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _check_text(value: str, field: str) -> None:
    """Reject characters no backend stores faithfully (NUL, lone surrogates)."""
    if "\x00" in value:
        raise InvalidInputError(f"{field} must not contain NUL characters", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{field} is not valid Unicode text: {exc.reason}",
                                field=field) from None


def check_content(value: Any, *, max_chars: int = DEFAULT_MAX_CONTENT_CHARS) -> str:
    """Return memory text if it is a non-blank string within the size limit."""
    if not isinstance(value, str):
        raise InvalidInputError(
            f"content must be a string, not {type(value).__name__}", field="content"
        )
    if not value.strip():
        raise InvalidInputError("content must not be empty or whitespace", field="content")
    if len(value) > max_chars:
        raise InvalidInputError(
            f"content is {len(value):,} characters; the limit is {max_chars:,} "
            "(MemoryStore(max_content_chars=...))",
            field="content",
        )
    _check_text(value, "content")
    return value


def check_id(value: Any, field: str) -> str:
    """Validate an identifier such as user_id, agent_id or a memory id."""
    if not isinstance(value, str):
        raise InvalidInputError(
            f"{field} must be a string, not {type(value).__name__}", field=field
        )
    if not value.strip():
        raise InvalidInputError(f"{field} must not be empty", field=field)
    if len(value) > MAX_ID_CHARS:
        raise InvalidInputError(f"{field} is longer than {MAX_ID_CHARS} characters", field=field)
    if _CONTROL.search(value):
        raise InvalidInputError(f"{field} must not contain control characters", field=field)
    _check_text(value, field)
    return value


def check_user_id(value: Any) -> str:
    """Every memory belongs to exactly one user; a missing user id is always an error. A
    plain string naming another scope kind (``langgraph:…``) is refused: see ``scopes``."""
    if value is None:
        raise InvalidInputError("user_id is required", field="user_id")
    checked = check_id(value, "user_id")
    if reserved_for_scopes(checked):
        raise InvalidInputError(
            f"user ids starting with {NAMESPACE_PREFIX!r} are reserved for LangGraph store "
            "namespaces (their own scope kind); choose another user id", field="user_id")
    return checked


def check_new_memory_id(value: Any, field: str = "id") -> str | None:
    """A caller-chosen id for a new memory (import, explicit ids): it must fit the column on
    every backend (SQLite would store a longer one, PostgreSQL would refuse it)."""
    if value is None:
        return None
    checked = check_id(value, field)
    if len(checked) > MAX_MEMORY_ID_CHARS:
        raise InvalidInputError(
            f"{field} is longer than {MAX_MEMORY_ID_CHARS} characters", field=field)
    return checked


def check_optional_id(value: Any, field: str) -> str | None:
    return None if value is None else check_id(value, field)


def check_label(value: Any, field: str = "category") -> str | None:
    """Short free-text labels (category); None means unset."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{field} must be a non-empty string or None", field=field)
    if len(value) > MAX_LABEL_CHARS:
        raise InvalidInputError(
            f"{field} is longer than {MAX_LABEL_CHARS} characters", field=field
        )
    _check_text(value, field)
    return value.strip()


def check_importance(value: Any) -> float:
    """Importance is a probability-like score in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(
            f"importance must be a number in [0, 1], not {type(value).__name__}",
            field="importance",
        )
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InvalidInputError(f"importance must be in [0, 1], got {value!r}", field="importance")
    return number


def check_labels(value: Any, field: str = "category") -> tuple[str, ...] | None:
    """One label or a list of them (a search filter); None means no filter."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    elif not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidInputError(
            f"{field} must be a string or a list of strings, not {type(value).__name__}",
            field=field)
    return tuple(str(check_label(v, field)) for v in value)


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"{field} must be a whole number, not {type(value).__name__}", field=field)
    if value < 0:
        raise InvalidInputError(f"{field} must not be negative, got {value}", field=field)
    return value


def check_limit(value: Any) -> int | None:
    """A page size: None (no limit) or an integer >= 0 (the same answer on every backend:
    SQLite would read -1 as "no limit", PostgreSQL refuses it)."""
    return None if value is None else _count(value, "limit")


def check_offset(value: Any) -> int:
    """Rows to skip: an integer >= 0."""
    return _count(value, "offset")


def check_min_score(value: Any) -> float | None:
    """A cosine-similarity floor: None or a finite number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise InvalidInputError(f"min_score must be a finite number or None, got {value!r}",
                                field="min_score")
    return float(value)


def _matrix(values: Any, field: str) -> np.ndarray:
    """Finite float32 numbers only: text, None (read as NaN) and ragged rows are refused.

    One C-level conversion (this runs on every embedding batch); numeric strings such as
    "0.5" pass as the numbers they spell.
    """
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            matrix = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:  # text, ragged rows
        raise InvalidInputError(f"{field} is not a list of numbers: {exc}", field=field) from None
    if not np.isfinite(matrix).all():
        raise InvalidInputError(f"{field} holds NaN, infinite or missing values (or numbers "
                                "too large for float32)", field=field)
    return matrix


def check_query_vector(values: Any, field: str = "vector") -> np.ndarray:
    """A query embedding: one non-empty row of finite numbers, as float32."""
    vector = _matrix(values, field)
    if vector.ndim != 1 or vector.size == 0:
        raise InvalidInputError(f"{field} must be a non-empty flat list of numbers", field=field)
    return vector


def check_embedding(values: Any, field: str = "embedding") -> np.ndarray:
    """A vector to store: finite and not all zeros (a zero vector has no direction, so it
    would match nothing, and an export holding one could not be imported)."""
    vector = check_query_vector(values, field)
    if not np.any(vector):
        raise InvalidInputError(f"{field} is all zeros", field=field)
    return vector


def check_embeddings(values: Any, count: int, field: str = "embeddings", *,
                     allow_zero: bool = False) -> np.ndarray:
    """What an embedding model returned for ``count`` texts: ``count`` equal-length rows of
    finite numbers, none all zeros unless ``allow_zero`` (a query: it just matches nothing).
    A broken model is refused before anything is written."""
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise EmbeddingModelError(
            f"the embedding model returned {type(values).__name__}, not a list of vectors")
    try:
        matrix = _matrix(values, field) if len(values) else np.zeros((0, 0), np.float32)
    except InvalidInputError as exc:
        raise EmbeddingModelError(f"the embedding model's output is unusable: {exc}") from None
    if matrix.ndim != 2 or matrix.shape[0] != count or (count and matrix.shape[1] == 0):
        raise EmbeddingModelError(
            f"the embedding model returned {len(values)} vector(s) of unequal or zero length "
            f"for {count} text(s)")
    zero = ~matrix.any(axis=1)
    if zero.any() and not allow_zero:
        raise EmbeddingModelError(
            f"the embedding model returned an all-zero vector for text #{int(np.argmax(zero))}")
    return matrix


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_METADATA_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def check_metadata(value: Any) -> dict[str, Any]:
    """Metadata must be a JSON object that survives a round trip unchanged."""
    return check_metadata_json(value)[0]


def check_metadata_json(value: Any) -> tuple[dict[str, Any], str]:
    """:func:`check_metadata` and the JSON text it checked (``ensure_ascii=False``), so a
    write can store that text instead of dumping the metadata again.

    Plain values (str keys; str, int, bool, None, finite floats below 2**53; lists and
    dicts of those, not too deep) survive JSON and JSONB by construction: they are copied
    and dumped once. Anything else takes the full check, a dump, parse and compare.
    """
    if value is None or (type(value) is dict and not value):  # the common case, no JSON work
        return {}, "{}"
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"metadata must be a dict, not {type(value).__name__}", field="metadata"
        )
    try:
        plain = _plain_copy(value, 0)
    except _NotPlain:
        return _round_tripped(value)
    text = json.dumps(plain, ensure_ascii=False)
    _check_metadata_text(text)
    return plain, text


class _NotPlain(Exception):
    """A metadata value the fast path leaves to the full check."""


def _plain_copy(value: Any, level: int) -> Any:
    """A copy of ``value`` made only of plain JSON types, or :class:`_NotPlain`. Exact
    types only: a subclass (an ``IntEnum``, a tuple) may not come back as itself."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if math.isfinite(value) and abs(value) < 2.0**53:
            return value
        raise _NotPlain
    if level >= MAX_METADATA_DEPTH - 1:  # near the limit: the full check counts exactly
        raise _NotPlain
    if kind is dict:
        copy: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            copy[key] = _plain_copy(item, level + 1)
        return copy
    if kind is list:
        return [_plain_copy(item, level + 1) for item in value]
    raise _NotPlain


def _round_tripped(value: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The full check: dump, parse back and compare, then refuse huge floats."""
    if _depth(value) > MAX_METADATA_DEPTH:
        raise InvalidInputError(
            f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels", field="metadata"
        )
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata is not JSON-serialisable: {exc}",
                                field="metadata") from None
    _check_metadata_text(text)
    round_trip: dict[str, Any] = json.loads(text)
    if round_trip != value:
        raise InvalidInputError(
            "metadata does not survive JSON unchanged (use str keys, lists not tuples)",
            field="metadata",
        )
    if _has_huge_float(round_trip):
        raise InvalidInputError(
            "metadata floats must be below 2**53 in magnitude: PostgreSQL's JSONB would "
            "return a different number (store big numbers as int or str)", field="metadata")
    return round_trip, text


def _check_metadata_text(text: str) -> None:
    """Size and characters of metadata's JSON text."""
    if len(text) > MAX_METADATA_BYTES:
        raise InvalidInputError(
            f"metadata is larger than {MAX_METADATA_BYTES:,} characters", field="metadata"
        )
    _check_text(text, "metadata")
    if "\\u0000" in text:
        raise InvalidInputError("metadata must not contain NUL characters", field="metadata")


def _has_huge_float(value: Any) -> bool:
    """Floats from 2**53 up: JSONB keeps their decimal text, which reads back as another
    number (e.g. -6.269516109007205e16 comes back as the int -62695161090072050)."""
    if isinstance(value, float):
        return abs(value) >= 2.0**53
    if isinstance(value, dict):
        return any(_has_huge_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_huge_float(v) for v in value)
    return False


def to_utc(value: Any, field: str) -> datetime | None:
    """Accept aware datetimes, naive ones (taken as UTC) or None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{field} must be a datetime", field=field)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def content_hash(content: str) -> str:
    """Hash used to find identical texts: reuse their embedding, skip exact duplicates."""
    return hashlib.sha256(content.strip().encode("utf-8")).hexdigest()
