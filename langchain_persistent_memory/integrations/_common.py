"""Small helpers shared by the adapters: who the user is, and how a memory is described.

Why here: every adapter must resolve the user the same way (a missing user id is always an
error, never "all users") and expose the same metadata, so a LangChain ``Document`` and a
LlamaIndex node of one memory carry identical fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInputError
from ..models import Memory
from ..validation import check_user_id

__all__ = ["memory_metadata", "require_user_id", "user_id_from_config", "user_id_from_context"]


def require_user_id(*candidates: Any, where: str = "") -> str:
    """The first candidate that is not None, validated; a clear error when there is none."""
    for candidate in candidates:
        if candidate is not None:
            return check_user_id(candidate)
    hint = f" ({where})" if where else ""
    raise InvalidInputError(f"user_id is required{hint}", field="user_id")


def user_id_from_config(config: Mapping[str, Any] | None) -> Any:
    """``user_id`` from a RunnableConfig: ``configurable`` first, then ``metadata``; the raw
    value (the caller validates it, so a non-string id is refused, not converted)."""
    if not config:
        return None
    for section in ("configurable", "metadata"):
        value = (config.get(section) or {}).get("user_id")
        if value is not None:
            return value
    return None


def user_id_from_context(context: Any) -> Any:
    """``user_id`` of an agent's runtime context: a dict key or an attribute."""
    if isinstance(context, Mapping):
        return context.get("user_id")
    return getattr(context, "user_id", None)


def memory_metadata(memory: Memory, score: float | None = None) -> dict[str, Any]:
    """Flat, JSON-friendly description of a memory for documents and nodes."""
    data: dict[str, Any] = {
        "id": memory.id,
        "user_id": memory.user_id,
        "category": memory.category,
        "importance": memory.importance,
        "created_at": memory.created_at.isoformat(),
        "updated_at": memory.updated_at.isoformat(),
        "valid_from": memory.valid_from.isoformat(),
        "valid_to": memory.valid_to.isoformat() if memory.valid_to else None,
    }
    if score is not None:
        data["score"] = float(score)
    if memory.agent_id is not None:
        data["agent_id"] = memory.agent_id
    if memory.session_id is not None:
        data["session_id"] = memory.session_id
    if memory.metadata:
        data["metadata"] = dict(memory.metadata)
    return data
