"""What the web UI shows and does, as plain functions over the store (no Streamlit here).

Keeping the logic out of the layout means it is unit-tested directly, and the Streamlit page
(:mod:`.app`) stays a thin arrangement of widgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from ..errors import InvalidInputError
from ..models import Memory, MemoryEvent
from ..store import MemoryStore

__all__ = [
    "EVENT_LABELS",
    "NO_CATEGORY",
    "apply_edit",
    "category_counts",
    "memories_frame",
    "memories_over_time",
    "memory_label",
    "summary",
    "timeline_rows",
]

NO_CATEGORY = "(none)"
EVENT_LABELS = {"ADD": "added", "UPDATE": "updated", "SUPERSEDE": "superseded",
                "DELETE": "deleted"}
_COLUMNS = ["content", "category", "importance", "status", "valid_from", "valid_to",
            "created_at", "updated_at", "id"]


def memories_frame(memories: Sequence[Memory]) -> pd.DataFrame:
    """One row per memory with the fields a person scans for: text, category, validity."""
    rows = [{
        "content": m.content,
        "category": m.category or NO_CATEGORY,
        "importance": round(m.importance, 2),
        "status": "current" if m.is_current else "superseded",
        "valid_from": m.valid_from,
        "valid_to": m.valid_to,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "id": m.id,
    } for m in memories]
    return pd.DataFrame(rows, columns=_COLUMNS)


def category_counts(memories: Sequence[Memory]) -> pd.DataFrame:
    """Memories per category, largest first (ties by name), for the bar chart."""
    counts: dict[str, int] = {}
    for m in memories:
        key = m.category or NO_CATEGORY
        counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return pd.DataFrame(ordered, columns=["category", "memories"])


def memories_over_time(memories: Sequence[Memory]) -> pd.DataFrame:
    """Memories added per day and category (rows: day, category, added), for a stacked chart."""
    counts: dict[tuple[date, str], int] = {}
    for m in memories:
        key = (m.created_at.date(), m.category or NO_CATEGORY)
        counts[key] = counts.get(key, 0) + 1
    rows = [(pd.Timestamp(day), category, n) for (day, category), n in sorted(counts.items())]
    return pd.DataFrame(rows, columns=["day", "category", "added"])


def timeline_rows(events: Sequence[MemoryEvent]) -> list[dict[str, Any]]:
    """A memory's history as readable rows, oldest first: what happened, when, from what."""
    rows = []
    for event in events:
        kind = event.event.value
        rows.append({
            "when": event.created_at,
            "event": EVENT_LABELS.get(kind, kind.lower()),
            "before": event.old_content or "",
            "after": event.new_content or "",
        })
    return rows


def memory_label(memory: Memory, width: int = 70) -> str:
    """Short text for pickers: the content, cut to ``width``, flagged when superseded."""
    text = " ".join(memory.content.split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text if memory.is_current else f"{text} (superseded)"


def summary(memories: Sequence[Memory]) -> dict[str, int]:
    """Headline numbers for the page."""
    current = sum(1 for m in memories if m.is_current)
    return {"current": current, "superseded": len(memories) - current,
            "categories": len({m.category or NO_CATEGORY for m in memories})}


def apply_edit(store: MemoryStore, memory: Memory, *, content: str, category: str,
               importance: float, supersede: bool) -> Memory:
    """Save what the edit form changed: in place, or as a new fact superseding the old one.

    Only changed fields are sent; an unchanged form is an error rather than an empty event.

    Raises:
        InvalidInputError: nothing changed, or a supersede without new text.
    """
    new_content = content.strip()
    new_category = category.strip() or None
    changes: dict[str, Any] = {}
    if new_content != memory.content:
        changes["content"] = new_content
    if new_category != memory.category and new_category is not None:
        changes["category"] = new_category
    if abs(importance - memory.importance) > 1e-9:
        changes["importance"] = importance
    if not changes:
        raise InvalidInputError("nothing changed")
    if supersede:
        if "content" not in changes:
            raise InvalidInputError("superseding needs the new text of the fact",
                                    field="content")
        return store.supersede(memory.id, changes.pop("content"), user_id=memory.user_id,
                               **changes)
    return store.update(memory.id, user_id=memory.user_id, **changes)

