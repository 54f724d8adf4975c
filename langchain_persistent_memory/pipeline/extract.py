"""Extraction: what the model is shown of a turn, and which of its facts the turn grounds.

Only the user's own words can become the user's facts. The model sees the turn as one line
per message, each labelled with its role and neutralised (:mod:`..untrusted`): user
messages, and assistant replies marked as context. Tool and system messages are left out
unless the application opts in (``extract_from``), and are then marked as lower trust.

Every ADD / UPDATE / SUPERSEDE carries ``evidence``: words quoted from the turn. It is
accepted only when found, after normalising case, whitespace and quotes, in a message whose
role may ground facts (a user message, or an opted-in tool/system message); and not when
it lies inside text the user quoted or pasted (quotation marks, code blocks, ``>`` lines),
since that is someone else's text. A fact whose evidence is about someone else ("my sister
is vegetarian") must name them (:mod:`.attribution`). Everything else is dropped and
counted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import ExtractionError
from ..untrusted import fold, neutralise
from .attribution import misattributed
from .checks import (
    Limits,
    PlannedOp,
    check_category,
    check_date,
    check_fact,
    check_importance,
    check_items,
)
from .messages import Role, TurnMessage
from .recover import recover_items

__all__ = ["CONTEXT_ROLES", "Checked", "Evidence", "ShownTurn", "ground", "show_turn",
           "validate_facts"]

logger = logging.getLogger("langchain_persistent_memory.pipeline")

CONTEXT_ROLES: frozenset[Role] = frozenset({"tool", "system"})
_LABELS: dict[Role, str] = {
    "user": "user",
    "assistant": "assistant (context only; not the user's words)",
    "tool": "tool output (lower trust; not the user's words)",
    "system": "system (lower trust; not the user's words)",
}
_DOUBLE_QUOTES = dict.fromkeys(map(ord, "\"“”„‟«»「」『』〝〞＂"), '"')
_SINGLE_QUOTES = dict.fromkeys(map(ord, "‘’‚‛′`´"), "'")
# Quoted or pasted text: "…" (any quote style, folded to "), code fences (backticks are
# folded to '), and e-mail style "> " lines.
_QUOTED = re.compile(r'"[^"]{1,4000}"|\'\'\'.*?(?:\'\'\'|\Z)|^[ \t]*>.*$',
                     re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class ShownTurn:
    """The turn as the model sees it, and the messages whose words may ground facts."""

    transcript: str
    grounds: tuple[TurnMessage, ...]
    notes: tuple[str, ...] = ()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " …[truncated]"


def show_turn(turn: Sequence[TurnMessage], *, max_message_chars: int, max_turn_chars: int,
              extract_from: frozenset[Role] = frozenset()) -> ShownTurn:
    """One neutralised line per message within both budgets (oldest messages go first).

    A cut is logged as a warning and listed in ``notes``: the model never sees the cut text,
    so nothing in it can be extracted.
    """
    notes: list[str] = []
    kept = [m for m in turn if m.role not in CONTEXT_ROLES or m.role in extract_from]
    long = [len(m.text) for m in kept if len(m.text) > max_message_chars]
    if long:
        notes.append(f"{len(long)} message(s) of up to {max(long)} characters were cut to "
                     f"{max_message_chars} characters (max_message_chars)")
    kept = [m._replace(text=_cut(m.text, max_message_chars)) for m in kept]
    lines = [f"{_LABELS[m.role]}: {neutralise(m.text)}" for m in kept]
    total, start = 0, len(lines)
    while start > 0 and total + len(lines[start - 1]) + 1 <= max_turn_chars:
        start -= 1
        total += len(lines[start]) + 1
    if start == len(lines) and lines:  # even the last message alone is too long
        start = len(lines) - 1
        lines[start] = lines[start][:max_turn_chars]
        notes.append(f"the last message was cut to the turn budget of {max_turn_chars} "
                     "characters (max_turn_chars)")
    elif start:
        notes.append(f"{start} earlier message(s) of a {len(lines)}-message turn were left out "
                     f"to fit max_turn_chars={max_turn_chars}")
    for note in notes:
        logger.warning("memory turn: %s", note)
    shown = kept[start:]
    grounds = tuple(m for m in shown if m.role == "user" or m.role in extract_from)
    return ShownTurn("\n".join(lines[start:]), grounds, tuple(notes))


def _normalised(text: str) -> tuple[str, list[bool]]:
    """Case-, whitespace- and quote-normalised text, and per character whether it lies
    inside quoted or pasted text."""
    text = fold(text).translate(_DOUBLE_QUOTES).translate(_SINGLE_QUOTES)
    text = text.replace("‹", "<").replace("›", ">")
    quoted = [False] * len(text)
    for match in _QUOTED.finditer(text):
        for i in range(match.start(), match.end()):
            quoted[i] = True
    out: list[str] = []
    mask: list[bool] = []
    for ch, inside in zip(text, quoted, strict=True):
        if ch.isspace():
            if out and out[-1] == " ":
                continue
            ch = " "
        out.append(ch.lower())
        mask.append(inside)
    return "".join(out), mask


def _needle(evidence: str) -> str:
    text, _ = _normalised(evidence)
    return text.strip().strip("\"'.,;:!?… ").strip()


class Evidence:
    """Finds quoted evidence in the messages allowed to ground facts."""

    def __init__(self, grounds: Sequence[TurnMessage]) -> None:
        self._sources = [(m, *_normalised(m.text)) for m in grounds]

    def said_by_user(self, words: str) -> bool:
        """Whether a user message of the turn has ``words`` as whole words (an alias the
        model gives must be one the user used)."""
        needle = _needle(words)
        if not needle:
            return False
        pattern = re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)")
        return any(message.role == "user" and pattern.search(text)
                   for message, text, _ in self._sources)

    def source_of(self, evidence: Any) -> TurnMessage | None:
        """The message the evidence was found in (user messages first), else None."""
        if not isinstance(evidence, str):
            return None
        needle = _needle(evidence)
        if len(needle) < 3:
            return None
        for message, text, quoted in sorted(self._sources, key=lambda s: s[0].role != "user"):
            start = text.find(needle)
            while start >= 0:
                inside = quoted[start:start + len(needle)]
                own = sum(1 for q, ch in zip(inside, needle, strict=True)
                          if not q and ch.isalnum())
                letters = sum(1 for ch in needle if ch.isalnum())
                if own * 2 > letters:  # mostly the user's own words, not a quotation
                    return message
                start = text.find(needle, start + 1)
        return None


@dataclass(frozen=True)
class Checked:
    """Operations that passed every check, and why others were dropped."""

    ops: list[PlannedOp]
    dropped: list[str]


def ground(op: PlannedOp, item: dict[str, Any], where: str, evidence: Evidence,
           dropped: list[str]) -> PlannedOp | None:
    """``op`` with its evidence and the role it came from, or None (reason in ``dropped``)."""
    quoted = item.get("evidence")
    source = evidence.source_of(quoted)
    if source is None:
        why = "no evidence" if not isinstance(quoted, str) or not quoted.strip() else \
            "its evidence is not the user's own words in this turn"
        dropped.append(f"{where} ({op.op} {str(op.content)[:60]!r}): {why}")
        return None
    text = " ".join(str(quoted).split())[:500]
    subject = misattributed(text, str(op.content))
    if subject is not None:
        dropped.append(f"{where} ({op.op} {str(op.content)[:60]!r}): its evidence is about "
                       f"{subject}, not the user: say so in the fact (e.g. \"The user's "
                       f"sister …\", or the person's name)")
        return None
    return PlannedOp(op=op.op, handle=op.handle, content=op.content, category=op.category,
                     importance=op.importance, valid_from=op.valid_from, evidence=text,
                     evidence_role=source.role, evidence_position=source.position,
                     evidence_message_id=source.id,
                     entities=tuple((name, tuple(a for a in aliases if evidence.said_by_user(a)))
                                    for name, aliases in op.entities))


def validate_facts(payload: Any, raw_text: str, evidence: Evidence, *, turn_time: datetime,
                   limits: Limits) -> Checked:
    """Check an :class:`ExtractedFacts` answer (two-call mode): facts come back as ADDs
    (grounded like any operation), things to forget as DELETEs whose content says what."""
    items, cut = recover_items(payload, raw_text, "facts")
    dropped = [f"facts: {cut} item(s) cut off by a truncated answer"] if cut else []
    facts: list[PlannedOp] = []
    for i, item in enumerate(check_items(items, "facts", limits)):
        where = f"facts[{i}]"
        fact = PlannedOp(op="ADD", content=check_fact(item.get("content"), where, limits),
                         category=check_category(item.get("category"), where, limits),
                         importance=check_importance(item.get("importance"), where),
                         valid_from=check_date(item.get("valid_from"), where, turn_time))
        grounded = ground(fact, item, where, evidence, dropped)
        if grounded is not None:
            facts.append(grounded)
    forget = payload.get("forget") if isinstance(payload, dict) else None
    forget = forget or []
    if not isinstance(forget, list) or len(forget) + len(facts) > limits.max_operations:
        raise ExtractionError(f"'forget' must be a list of at most {limits.max_operations} "
                              "short phrases")
    for i, phrase in enumerate(forget):
        facts.append(PlannedOp(op="DELETE", content=check_fact(phrase, f"forget[{i}]", limits)))
    return Checked(facts, dropped)
