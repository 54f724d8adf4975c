"""Scope kinds: whose memories a partition holds.

A memory belongs to one scope. Most scopes are users; a LangGraph ``PersistentStore``
namespace is a scope of its own kind (:class:`NamespaceScope`), spelled with the reserved
prefix ``langgraph:``. A plain string with that prefix is refused wherever a user id is
expected, so an end user who picks the id ``langgraph:memories.bob`` can neither read, list
nor forget that namespace through the user API: only code that builds a ``NamespaceScope``
on purpose (the LangGraph store) reaches it.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from .errors import InvalidInputError

__all__ = ["ANY_USER", "NAMESPACE_PREFIX", "AnyUser", "NamespaceScope", "by_id_scope",
           "is_namespace_scope", "reserved_for_scopes"]

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


class AnyUser(Enum):
    """The admin opt-in of calls by memory id: ``user_id=ANY_USER`` acts on any user's
    memory. Without it such a call needs the memory's own user."""

    ANY_USER = "ANY_USER"


ANY_USER: Final = AnyUser.ANY_USER


def by_id_scope(user_id: str | AnyUser | None) -> str | None:
    """The scope of a call by memory id: the user given, or None for ``ANY_USER`` (admin).
    Leaving the user out is refused: an id alone must not reach another user's memory."""
    if user_id is AnyUser.ANY_USER:
        return None
    if user_id is None:
        raise InvalidInputError(
            "user_id is required: pass the user the memories belong to, or (for calls by "
            "memory id only) user_id=ANY_USER to act on any user's memory as an admin",
            field="user_id")
    return user_id
