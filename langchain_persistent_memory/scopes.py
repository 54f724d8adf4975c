"""Scope kinds: whose memories a partition holds.

A memory belongs to one scope. Most scopes are users; a LangGraph ``PersistentStore``
namespace is a scope of its own kind (:class:`NamespaceScope`), spelled with the reserved
prefix ``langgraph:``. A plain string with that prefix is refused wherever a user id is
expected, so an end user who picks the id ``langgraph:memories.bob`` can neither read, list
nor forget that namespace through the user API: only code that builds a ``NamespaceScope``
on purpose (the LangGraph store) reaches it.
"""

from __future__ import annotations

__all__ = ["NAMESPACE_PREFIX", "NamespaceScope", "is_namespace_scope", "reserved_for_scopes"]

NAMESPACE_PREFIX = "langgraph:"


class NamespaceScope(str):
    """The scope id of a LangGraph namespace: a ``str`` the user-id checks let through."""

    __slots__ = ()


def reserved_for_scopes(value: str) -> bool:
    """A plain string that names another scope kind, so it can never be a user id."""
    return value.startswith(NAMESPACE_PREFIX) and not isinstance(value, NamespaceScope)


def is_namespace_scope(value: str) -> bool:
    """A stored scope id (plain text from SQL) that belongs to a namespace, not a user."""
    return value.startswith(NAMESPACE_PREFIX)
