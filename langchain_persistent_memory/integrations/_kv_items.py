"""Pure pieces of the LangGraph store: its table, namespace encoding and value filters.

Items live in ``lpm_kv_items``, a table in the same database as the memories (created on
first use). The text an item exposes to semantic search is stored as ordinary memories of a
scope derived from the namespace, so FAISS partitioning keeps namespaces apart exactly as it
keeps users apart. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Boolean, Column, Float, Index, MetaData, Table, Text

from ..errors import InvalidInputError
from ..scopes import NAMESPACE_PREFIX, NamespaceScope
from ..store.schema import JSONType, PKType, UTCDateTime

__all__ = ["FILTER_OPERATORS", "decode_namespace", "encode_namespace", "items",
           "key_tag", "kv_metadata", "matches_filter", "namespace_scope", "scopes",
           "validate_filter"]

kv_metadata = MetaData()

items = Table(
    "lpm_kv_items",
    kv_metadata,
    Column("pk", PKType, primary_key=True, autoincrement=True),
    Column("namespace", Text, nullable=False),  # labels joined by "." (labels cannot hold ".")
    Column("key", Text, nullable=False),
    Column("value", JSONType, nullable=False),
    Column("indexed", Boolean, nullable=False),  # has text in the semantic index
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ttl_minutes", Float),
    Column("expires_at", UTCDateTime),
    Index("ux_lpm_kv_items_ns_key", "namespace", "key", unique=True),
    Index("ix_lpm_kv_items_expires", "expires_at"),
)

# Namespace -> its scope, written with the first indexed text: a long namespace's scope is
# a hash, so without this ``purge`` could not find its history once its items were deleted.
scopes = Table(
    "lpm_kv_scopes",
    kv_metadata,
    Column("scope", Text, primary_key=True),
    Column("namespace", Text, nullable=False),
)

FILTER_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
_MAX_SCOPE = 256


def encode_namespace(namespace: Sequence[str]) -> str:
    return ".".join(namespace)


def decode_namespace(text: str) -> tuple[str, ...]:
    return tuple(text.split("."))


def namespace_scope(namespace: str) -> NamespaceScope:
    """The scope that holds a namespace's indexed text (one partition), of its own kind:
    no user id can name it (see ``scopes``).

    Readable when possible (``langgraph:memories.alice``), hashed when too long or not a
    valid id, so any namespace maps to exactly one scope; ``scopes`` records the hashed
    ones' namespaces so ``purge`` finds them by prefix.
    """
    scope = NAMESPACE_PREFIX + namespace
    if len(scope) <= _MAX_SCOPE and not any(unicodedata.category(c) == "Cc" for c in scope):
        return NamespaceScope(scope)
    return NamespaceScope(NAMESPACE_PREFIX + "#" + hashlib.sha256(namespace.encode()).hexdigest())


def key_tag(key: str) -> str:
    """Tag (stored as the memory's ``agent_id``) naming the item a memory indexes.

    Using the agent_id also keeps the store's duplicate check per item: two items with the
    same text in one namespace each keep their own index entry.
    """
    return "k:" + hashlib.sha256(key.encode()).hexdigest()


def validate_filter(flt: Mapping[str, Any] | None, path: str = "filter") -> None:
    """Reject unknown ``$`` operators up front (before any item is compared)."""
    if flt is None:
        return
    if not isinstance(flt, Mapping):
        raise InvalidInputError(f"{path} must be a dict, not {type(flt).__name__}",
                                field="filter")
    for name, expected in flt.items():
        if not isinstance(name, str):
            raise InvalidInputError(f"{path} keys must be strings", field="filter")
        if name.startswith("$"):
            if name not in FILTER_OPERATORS:
                raise InvalidInputError(
                    f"unknown filter operator {name!r} in {path}; known: "
                    f"{', '.join(FILTER_OPERATORS)}", field="filter")
        elif isinstance(expected, Mapping):
            validate_filter(expected, f"{path}.{name}")


def _compare(value: Any, operator: str, expected: Any) -> bool:
    if operator == "$eq":
        return bool(value == expected)
    if operator == "$ne":
        return bool(value != expected)
    try:
        left, right = float(value), float(expected)
    except (TypeError, ValueError):
        return False  # a missing or non-numeric field never satisfies an ordering
    return {"$gt": left > right, "$gte": left >= right,
            "$lt": left < right, "$lte": left <= right}[operator]


def matches_filter(value: Any, expected: Any) -> bool:
    """JSON containment with operators, as LangGraph's reference stores define it."""
    if isinstance(expected, Mapping):
        if any(str(k).startswith("$") for k in expected):
            return all(_compare(value, op, v) for op, v in expected.items())
        return isinstance(value, Mapping) and all(
            matches_filter(value.get(k), v) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        return (isinstance(value, (list, tuple)) and len(value) == len(expected)
                and all(matches_filter(a, b) for a, b in zip(value, expected)))
    return bool(value == expected)


def match_namespace(namespace: tuple[str, ...], path: Sequence[str], kind: str) -> bool:
    """ListNamespaces match conditions: prefix or suffix, ``*`` matches any label."""
    if len(namespace) < len(path):
        return False
    if kind == "prefix":
        pairs = zip(namespace, path)
    elif kind == "suffix":
        pairs = zip(reversed(namespace), reversed(path))
    else:
        raise InvalidInputError(f"unknown namespace match type {kind!r}", field="match_type")
    return all(want == "*" or have == want for have, want in pairs)
