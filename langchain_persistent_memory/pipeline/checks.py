"""Field checks shared by the stages that read the chat model's answers.

The model is untrusted: its answer may be the wrong shape, oversized, or steered by text
hidden in the conversation. Everything here is pure; a failure raises
:class:`ExtractionError` whose message is written so the model can fix it in one retry.
Shapes are made lenient first (:mod:`.recover`); these checks are strict.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import Any

from ..errors import ExtractionError, InvalidInputError
from ..validation import check_content, check_label

__all__ = ["EntityName", "Limits", "PlannedOp", "check_category", "check_date",
           "check_entity_names", "check_fact", "check_importance", "check_items"]


@dataclass(frozen=True)
class Limits:
    """Bounds on what one model answer may ask for."""

    max_operations: int = 32
    max_fact_chars: int = 1000
    max_category_chars: int = 40


@dataclass(frozen=True)
class PlannedOp:
    """A validated operation, still on handles; :mod:`.reconcile` turns it into store ops."""

    op: str
    handle: str | None = None
    content: str | None = None
    category: str | None = None
    importance: float | None = None
    valid_from: datetime | None = None
    sources: tuple[str, ...] = ()
    evidence: str | None = None
    evidence_role: str | None = None
    evidence_position: int | None = None  # index of its message in the caller's list
    evidence_message_id: str | None = None
    entities: tuple[EntityName, ...] = ()  # names the model says the fact mentions (found
    # in it), each with the aliases the user said for it


def check_items(items: list[Any], key: str, limits: Limits) -> list[dict[str, Any]]:
    """The recovered items of the list ``key``: objects, and not too many."""
    if len(items) > limits.max_operations:
        raise ExtractionError(f"{len(items)} items in '{key}'; at most "
                              f"{limits.max_operations} are allowed")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ExtractionError(f"{key}[{i}] must be an object")
    return items


def check_fact(value: Any, where: str, limits: Limits) -> str:
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


def check_category(value: Any, where: str, limits: Limits) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > limits.max_category_chars:
        raise ExtractionError(f"{where}: 'category' must be one short word")
    try:
        label = check_label(value.strip().lower())
    except InvalidInputError as exc:
        raise ExtractionError(f"{where}: {exc}") from None
    return label


_MAX_ENTITY_NAMES = 24
_MAX_ALIASES = 8
_NAME_WITH_ALIASES = re.compile(r"^(.+?)\s*\(([^()]+)\)$")  # "Melanie (Mel, Mellie)"
_OWNER = re.compile(r"^(?:my|our|his|her|their|the user's|user's)\s+", re.IGNORECASE)

# An entity the model named: its name, as in the fact, and other names for it (aliases).
EntityName = tuple[str, tuple[str, ...]]


def _entity_item(value: Any) -> EntityName | None:
    """``"Name"``, ``"Name (alias, alias)"`` or ``{"name": ..., "aliases": [...]}``."""
    if isinstance(value, dict):
        name, aliases = value.get("name"), value.get("aliases") or []
        if not isinstance(name, str) or not isinstance(aliases, list):
            return None
    elif isinstance(value, str):
        name, aliases = value, []
        if (m := _NAME_WITH_ALIASES.match(value.strip())) is not None:
            name, aliases = m.group(1), m.group(2).split(",")
    else:
        return None
    cleaned = (_OWNER.sub("", " ".join(a.split())) for a in aliases if isinstance(a, str))
    return " ".join(name.split()), tuple(dict.fromkeys(
        a for a in cleaned if a and len(a) <= 100))[:_MAX_ALIASES]


def check_entity_names(value: Any, content: str | None) -> tuple[EntityName, ...]:
    """The model's entity names that the fact's text really contains (others are dropped:
    the list is a hint for linking, never a reason to refuse the operation), each with
    the aliases given for it (kept only if the user said them: see ``extract.ground``)."""
    if not isinstance(value, list) or content is None:
        return ()
    text = content.lower()
    found: dict[str, tuple[str, ...]] = {}
    for item in value:
        entity = _entity_item(item)
        if entity is not None and entity[0] and len(entity[0]) <= 100 and \
                entity[0].lower() in text and entity[0] not in found:
            found[entity[0]] = entity[1]
    return tuple(found.items())[:_MAX_ENTITY_NAMES]


def check_importance(value: Any, where: str) -> float | None:
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


def check_date(value: Any, where: str, turn_time: datetime) -> datetime | None:
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
