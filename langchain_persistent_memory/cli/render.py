"""Rich renderings of memories, history and stats for the terminal (no I/O besides printing)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..models import Memory, MemoryEvent, ScoredMemory

__all__ = ["memory_json", "print_history", "print_memories", "print_memory", "print_stats",
           "stamp"]


def stamp(value: datetime | None) -> str:
    """A short, sortable timestamp (UTC as stored); blank for ``None``."""
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def memory_json(memory: Memory, score: float | None = None) -> str:
    """One memory as a JSON line (embedding left out), for ``--json`` output and scripts."""
    data: dict[str, Any] = memory.model_dump(mode="json", exclude={"embedding"})
    if score is not None:
        data["score"] = round(score, 6)
    return json.dumps(data, ensure_ascii=False)


def print_memories(console: Console, items: Sequence[Memory | ScoredMemory], *,
                   title: str) -> None:
    """Memories (or search hits with scores), two lines each so full ids stay copyable."""
    console.print(f"[bold]{escape(title)}[/]")
    for item in items:
        memory, score = item if isinstance(item, ScoredMemory) else (item, None)
        parts = [f"[cyan]{memory.id}[/]"]
        if score is not None:
            parts.append(f"score {score:.3f}")
        if memory.category:
            parts.append(f"[magenta]{escape(memory.category)}[/]")
        parts.append(f"imp {memory.importance:.2f}")
        valid = f"since {stamp(memory.valid_from)}"
        if memory.valid_to is not None:
            valid += f" [yellow]until {stamp(memory.valid_to)}[/]"
        parts.append(valid)
        console.print("  ".join(parts), highlight=False)
        console.print(Padding(escape(memory.content), (0, 0, 0, 4)), highlight=False)


def print_memory(console: Console, memory: Memory) -> None:
    """Every field of one memory as a two-column table."""
    table = Table(show_header=False, title=f"memory {memory.id}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in _fields(memory):
        table.add_row(name, Text(value))
    console.print(table)


def _fields(memory: Memory) -> Iterable[tuple[str, str]]:
    yield "content", memory.content
    yield "user", memory.user_id
    yield "category", memory.category or ""
    yield "importance", f"{memory.importance:.2f}"
    yield "status", "current" if memory.is_current else f"superseded by {memory.superseded_by}"
    yield "valid from", stamp(memory.valid_from)
    yield "valid to", stamp(memory.valid_to)
    yield "created", stamp(memory.created_at)
    yield "updated", stamp(memory.updated_at)
    if memory.agent_id:
        yield "agent", memory.agent_id
    if memory.session_id:
        yield "session", memory.session_id
    if memory.metadata:
        yield "metadata", json.dumps(memory.metadata, ensure_ascii=False)


def print_history(console: Console, events: Sequence[MemoryEvent]) -> None:
    """The timeline of a memory, oldest first."""
    table = Table(title="history")
    table.add_column("when", no_wrap=True)
    table.add_column("event", style="magenta")
    table.add_column("before", overflow="fold")
    table.add_column("after", overflow="fold")
    for event in events:
        table.add_row(stamp(event.created_at), event.event.value,
                      Text(event.old_content or ""), Text(event.new_content or ""))
    console.print(table)


def print_stats(console: Console, stats: dict[str, Any]) -> None:
    table = Table(show_header=False, title="store")
    table.add_column(style="bold")
    table.add_column()
    for key, value in stats.items():
        table.add_row(key.replace("_", " "), Text("" if value is None else str(value)))
    console.print(table)
