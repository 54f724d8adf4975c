"""What the web UI shows and does, as plain functions over the store (no Streamlit here).

Keeping the logic out of the layout means it is unit-tested directly, and the Streamlit page
(:mod:`.app`) stays a thin arrangement of widgets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from ..errors import InvalidInputError
from ..models import Memory, MemoryEvent, Provenance
from ..store import EntityRow, MemoryStore

__all__ = [
    "COLUMN_WIDTHS",
    "EVENT_LABELS",
    "NO_CATEGORY",
    "apply_edit",
    "category_counts",
    "entities_frame",
    "entity_memories",
    "hit_markdown",
    "lineage",
    "md_escape",
    "memories_frame",
    "memories_over_time",
    "memory_label",
    "memory_markdown",
    "summary",
    "timeline_rows",
]

_FROM_UI = Provenance(origin="ui")  # edits made in the web UI say so in their history

NO_CATEGORY = "(none)"
EVENT_LABELS = {"ADD": "added", "UPDATE": "updated", "SUPERSEDE": "superseded",
                "DELETE": "deleted"}
_COLUMNS = ["content", "category", "importance", "status", "id", "valid_from", "valid_to",
            "created_at", "updated_at"]
_TIMES = ["valid_from", "valid_to", "created_at", "updated_at"]
COLUMN_WIDTHS: dict[str, int] = {
    "content": 300, "category": 110, "importance": 100, "status": 95, "valid_from": 140,
    "valid_to": 140, "created_at": 140, "updated_at": 140, "id": 300}
"""Column widths in pixels: each fits its header and values ("superseded", a full
"YYYY-MM-DD HH:mm", a 36-character id); the table scrolls sideways rather than cut them."""

# CommonMark lets a backslash escape any ASCII punctuation: escaped, stored text can't open
# a link, an image, emphasis, a heading, a code span, LaTeX ($) or a Streamlit :color[]
# directive. HTML is never rendered by st.markdown, so < and > are harmless either way.
_AUTOLINK = re.compile(r"(?i)(https?|ftp|www)(?=[:.])")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&\"'=^])")


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
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    for column in _TIMES:  # datetimes, so "no end" is an empty cell (NaT), not "None"
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


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
            "origin": event.provenance.summary() if event.provenance else "",
        })
    return rows


def memory_label(memory: Memory, width: int = 70) -> str:
    """Short text for pickers: the content, cut to ``width``, flagged when superseded."""
    text = " ".join(memory.content.split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text if memory.is_current else f"{text} (superseded)"


def summary(memories: Sequence[Memory]) -> dict[str, int]:
    """Headline numbers for the page, from *all* the user's memories (superseded included),
    so they do not change with what the table shows."""
    current = sum(1 for m in memories if m.is_current)
    return {"current": current, "superseded": len(memories) - current,
            "categories": len({m.category or NO_CATEGORY for m in memories})}


def md_escape(text: str) -> str:
    """Stored text as literal Markdown: every special character escaped, line breaks kept.

    GFM also turns bare URLs and e-mail addresses into links after parsing, escapes or not;
    an invisible word joiner (U+2060) after ``http``/``www`` and before ``@`` stops that.
    """
    text = _AUTOLINK.sub("\\1\u2060", text).replace("@", "\u2060@")
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return "  \n".join(line.strip() for line in escaped.splitlines())


def lineage(memory: Memory, memories: Sequence[Memory]) -> list[tuple[str, Memory]]:
    """What this memory replaced and what replaced it (history alone records only the
    supersede on the old fact): ``("replaces", old)`` / ``("replaced by", new)`` pairs."""
    by_id = {m.id: m for m in memories}
    pairs = [("replaces", m) for m in memories if m.superseded_by == memory.id]
    if memory.superseded_by and memory.superseded_by in by_id:
        pairs.append(("replaced by", by_id[memory.superseded_by]))
    return pairs


def hit_markdown(memory: Memory, score: float) -> str:
    """One search hit: score, text, then category, importance and id in grey."""
    category = md_escape(memory.category) if memory.category else "no category"
    return (f"**{score:.3f}** · {md_escape(memory.content)}  \n"
            f":gray[{category} · importance {memory.importance:.2f} · {memory.id}]")


def memory_markdown(memory: Memory) -> str:
    """The fields of one memory as a Markdown list (stored text escaped)."""
    until = f"{memory.valid_to:%Y-%m-%d %H:%M}" if memory.valid_to else "now"
    return (f"- **category**: {md_escape(memory.category) if memory.category else '—'}\n"
            f"- **importance**: {memory.importance:.2f}\n"
            f"- **valid**: {memory.valid_from:%Y-%m-%d %H:%M} → {until}\n"
            f"- **created** {memory.created_at:%Y-%m-%d %H:%M}, "
            f"**updated** {memory.updated_at:%Y-%m-%d %H:%M}\n"
            f"- **id**: `{memory.id}`")


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
                               provenance=_FROM_UI, **changes)
    return store.update(memory.id, user_id=memory.user_id, provenance=_FROM_UI, **changes)


def entities_frame(rows: Sequence[EntityRow]) -> pd.DataFrame:
    """The entities table: name, other names, kind, how many memories name it and are
    about it."""
    return pd.DataFrame({"entity": [r.name for r in rows],
                         "also called": [", ".join(r.aliases) for r in rows],
                         "kind": [r.kind for r in rows],
                         "memories": [len(r.memory_ids) for r in rows],
                         "about": [r.subject_of for r in rows]},
                        columns=["entity", "also called", "kind", "memories", "about"])


def entity_memories(row: EntityRow, memories: Sequence[Memory]) -> list[Memory]:
    """The memories behind one entity, in the order the page lists memories."""
    wanted = set(row.memory_ids)
    return [m for m in memories if m.id in wanted]
