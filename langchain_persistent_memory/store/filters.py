"""Search filters, validated once and turned into SQL (no I/O here).

Filters narrow the candidate set inside one user's partition; they never widen a search
beyond the user, so they cannot be used to reach another user's memories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles

from ..errors import InvalidInputError
from ..validation import check_id, check_labels, check_metadata, to_utc
from .schema import memories

__all__ = ["FILTER_NAMES", "SearchFilters", "build_filter_query"]

FILTER_NAMES = ("category", "agent_id", "session_id", "metadata", "since", "until")


@dataclass(frozen=True)
class SearchFilters:
    include_superseded: bool = False
    categories: tuple[str, ...] | None = None
    agent_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(cls, *, include_superseded: bool = False, category: str | list[str] | None = None,
           agent_id: str | None = None, session_id: str | None = None,
           metadata: dict[str, Any] | None = None, since: datetime | None = None,
           until: datetime | None = None, **unknown: Any) -> SearchFilters:
        """Validate filter arguments; unknown names are an error, not silently ignored."""
        if unknown:
            raise InvalidInputError(
                f"unknown filter(s) {sorted(unknown)}; known: {', '.join(FILTER_NAMES)}",
                field=sorted(unknown)[0],
            )
        checked_metadata = check_metadata(metadata)
        for key, value in checked_metadata.items():
            _metadata_clause(key, value)  # reject unfilterable values before any I/O
        return cls(
            include_superseded=bool(include_superseded),
            categories=check_labels(category),
            agent_id=None if agent_id is None else check_id(agent_id, "agent_id"),
            session_id=None if session_id is None else check_id(session_id, "session_id"),
            metadata=checked_metadata,
            since=to_utc(since, "since"),
            until=to_utc(until, "until"),
        )

    @staticmethod
    def plain(include_superseded: bool = False) -> SearchFilters:
        """No filter beyond validity: one shared instance each (the common search)."""
        return _PLAIN[bool(include_superseded)]

    @property
    def needs_sql(self) -> bool:
        """True when something beyond user and validity narrows the candidates."""
        return bool(self.categories or self.agent_id or self.session_id or self.metadata
                    or self.since or self.until)


_PLAIN = {flag: SearchFilters(include_superseded=flag) for flag in (False, True)}


class MetadataEquals(ColumnElement[bool]):
    """``metadata[key] == value`` with a plain key and a type-exact comparison.

    The key is never spliced into a JSON path (where ``a"."b`` would reach a nested
    ``{"a": {"b": ...}}`` on SQLite), and a filter matches only values of its own JSON type:
    ``True`` does not match ``1``, ``1`` does not match ``"1"``; numbers compare as numbers
    (``1`` matches ``1.0``), on both backends. Compiled per dialect below.
    """

    type = Boolean()
    inherit_cache = False  # the SQL embeds the key's type; rare enough not to cache

    def __init__(self, key: str, value: bool | int | float | str) -> None:
        self.key = key
        self.value = value

    def json_types(self) -> tuple[str, ...]:
        """SQLite ``json_each.type`` names that may hold the filter's value."""
        if isinstance(self.value, bool):
            return ("true",) if self.value else ("false",)
        if isinstance(self.value, (int, float)):
            return ("integer", "real")
        return ("text",)


@compiles(MetadataEquals)
def _metadata_equals_sqlite(element: MetadataEquals, compiler: Any, **kw: Any) -> str:
    entry = func.json_each(memories.c.metadata).table_valued("key", "type", "atom")
    clauses = [entry.c.key == element.key, entry.c.type.in_(element.json_types())]
    if not isinstance(element.value, bool):  # true/false are their own types
        clauses.append(entry.c.atom == element.value)
    return str(compiler.process(exists(select(literal(1)).select_from(entry)
                                       .where(and_(*clauses))), **kw))


@compiles(MetadataEquals, "postgresql")
def _metadata_equals_postgres(element: MetadataEquals, compiler: Any, **kw: Any) -> str:
    # JSONB containment: top-level key, JSON-typed, numeric equality; never casts the
    # stored value (a cast raises DataError on rows holding another type).
    return str(compiler.process(
        type_coerce(memories.c.metadata, JSONB).contains({element.key: element.value}), **kw))


def _metadata_clause(key: str, value: Any) -> ColumnElement[bool]:
    if isinstance(value, (bool, int, float, str)):
        return MetadataEquals(key, value)
    raise InvalidInputError(
        f"metadata filter on {key!r} must be a string, number or bool", field="metadata")


def build_filter_query(user_id: str, filters: SearchFilters, *, columns: list[Any]) -> Select[Any]:
    """SELECT ``columns`` of the user's memories that pass ``filters``."""
    clauses: list[ColumnElement[bool]] = [memories.c.user_id == user_id]
    if not filters.include_superseded:
        clauses.append(memories.c.valid_to.is_(None))
    if filters.categories:
        clauses.append(memories.c.category.in_(filters.categories))
    if filters.agent_id is not None:
        clauses.append(memories.c.agent_id == filters.agent_id)
    if filters.session_id is not None:
        clauses.append(memories.c.session_id == filters.session_id)
    if filters.since is not None:
        clauses.append(memories.c.valid_from >= filters.since)
    if filters.until is not None:
        clauses.append(memories.c.valid_from <= filters.until)
    clauses.extend(_metadata_clause(k, v) for k, v in filters.metadata.items())
    return select(*columns).where(and_(*clauses))
