"""Rich renderings of memories, history and stats for the terminal (no I/O besides printing).

Stored text is untrusted: a memory can hold terminal escape sequences (recolour, retitle the
window, move the cursor, hide a line) or Rich markup. Everything taken from the store goes
through :func:`safe` and is printed as plain text, never as markup.
"""

from __future__ import annotations

import json
import re
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
           "safe", "stamp", "to_json"]

# ESC-introduced sequences (CSI, OSC up to its terminator, two-character escapes), then any
# remaining C0/C1 control character except newline and tab (\r could overwrite a line), and
# the bidirectional overrides that make a terminal show text in another order than stored.
_TERMINAL_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_JSON_UNESCAPED_CONTROL = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (newline and tab
    kept), so stored text cannot drive the terminal it is printed on."""
    return _TERMINAL_CONTROL.sub("", text)


def to_json(data: Any) -> str:
    """JSON for stdout: json.dumps escapes C0 controls; C1 ones (0x9b is an 8-bit CSI), DEL
    and bidi overrides are escaped here too, so ``--json`` in a terminal is as safe as a
    table, and a script still reads the exact stored text."""
    text = json.dumps(data, ensure_ascii=False)
    return _JSON_UNESCAPED_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def stamp(value: datetime | None) -> str:
    """A short, sortable timestamp (UTC as stored); blank for ``None``."""
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def memory_json(memory: Memory, score: float | None = None) -> str:
    """One memory as a JSON line (embedding left out), for ``--json`` output and scripts."""
    data: dict[str, Any] = memory.model_dump(mode="json", exclude={"embedding"})
    if score is not None:
        data["score"] = round(score, 6)
    return to_json(data)


def print_memories(console: Console, items: Sequence[Memory | ScoredMemory], *,
                   title: str) -> None:
    """Memories (or search hits with scores), two lines each so full ids stay copyable."""
    console.print(f"[bold]{escape(safe(title))}[/]")
    for item in items:
        memory, score = item if isinstance(item, ScoredMemory) else (item, None)
        parts = [f"[cyan]{memory.id}[/]"]
        if score is not None:
            parts.append(f"score {score:.3f}")
        if memory.category:
            parts.append(f"[magenta]{escape(safe(memory.category))}[/]")
        parts.append(f"imp {memory.importance:.2f}")
        valid = f"since {stamp(memory.valid_from)}"
        if memory.valid_to is not None:
            valid += f" [yellow]until {stamp(memory.valid_to)}[/]"
        parts.append(valid)
        console.print("  ".join(parts), highlight=False)
        console.print(Padding(Text(safe(memory.content)), (0, 0, 0, 4)), highlight=False)


def print_memory(console: Console, memory: Memory) -> None:
    """Every field of one memory as a two-column table."""
    table = Table(show_header=False, title=f"memory {memory.id}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in _fields(memory):
        table.add_row(name, Text(safe(value)))
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
    table.add_column("origin", overflow="fold")
    for event in events:
        origin = event.provenance.summary() if event.provenance else ""
        table.add_row(stamp(event.created_at), event.event.value,
                      Text(safe(event.old_content or "")), Text(safe(event.new_content or "")),
                      Text(safe(origin)))
    console.print(table)


def print_stats(console: Console, stats: dict[str, Any]) -> None:
    table = Table(show_header=False, title="store")
    table.add_column(style="bold")
    table.add_column()
    for key, value in stats.items():
        table.add_row(key.replace("_", " "), Text("" if value is None else safe(str(value))))
    console.print(table)
