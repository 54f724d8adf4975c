"""Turn normalisation: whatever the caller passes becomes a list of ``(role, text)`` lines.

Why: the pipeline accepts LangChain messages, OpenAI-style role/content dicts or plain strings,
and everything downstream (hashing, embedding, prompting) wants one plain shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from langchain_core.messages import BaseMessage

from ..errors import InvalidInputError
from ..validation import check_id

__all__ = ["Role", "TurnMessage", "normalize_messages", "turn_messages", "user_texts"]

Role = Literal["user", "assistant", "system", "tool"]

_ROLES: dict[str, Role] = {
    "user": "user", "human": "user",
    "assistant": "assistant", "ai": "assistant",
    "system": "system", "developer": "system",
    "tool": "tool", "function": "tool",
}


class TurnMessage(NamedTuple):
    """One message of a turn, reduced to its role and plain text.

    ``position`` is the message's index in the list the caller passed and ``id`` its
    LangChain message id (or a dict's ``"id"``), so provenance can point at the message a
    fact came from.
    """

    role: Role
    text: str
    position: int = 0
    id: str | None = None


def _text_of(content: Any) -> str:
    """Plain text of message content (a string or a list of content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type", "text") == "text":
                parts.append(str(block.get("text", "")))
        return "\n".join(p for p in parts if p)
    if content is None:
        return ""
    raise InvalidInputError(f"message content must be text, not {type(content).__name__}",
                            field="messages")


def _message_role(message: BaseMessage) -> str:
    """``human``, ``ai``, ... for messages and their streaming chunks; a ChatMessage's role."""
    kind = message.type
    if kind.endswith("MessageChunk"):
        kind = kind[: -len("MessageChunk")].lower()
    if kind == "chat":
        kind = str(getattr(message, "role", "")).lower()
    return kind


def _one(position: int, message: Any) -> TurnMessage | None:
    message_id: Any = None
    if isinstance(message, BaseMessage):
        role = _ROLES.get(_message_role(message))
        if role is None:  # e.g. RemoveMessage from agent state: not conversation content
            return None
        content: Any = message.content
        message_id = message.id
    elif isinstance(message, dict):
        raw_role = message.get("role", message.get("type"))
        role = _ROLES.get(str(raw_role).lower()) if raw_role is not None else None
        content = message.get("content")
        message_id = message.get("id")
    elif isinstance(message, tuple) and len(message) == 2:
        role, content = _ROLES.get(str(message[0]).lower()), message[1]
    else:
        raise InvalidInputError(
            "each message must be a LangChain message, a {'role', 'content'} dict or a "
            f"(role, content) tuple, not {type(message).__name__}", field="messages")
    if role is None:
        raise InvalidInputError(f"unknown message role in {message!r:.80}", field="messages")
    text = _text_of(content).replace("\x00", "").strip()
    return TurnMessage(role, text, position, _usable_id(message_id))


def _usable_id(value: Any) -> str | None:
    """A message id fit to be stored in provenance; anything else is left out (an odd id
    must never cost the turn)."""
    if value is None:
        return None
    try:
        return check_id(value, "message id")
    except InvalidInputError:
        return None


def turn_messages(messages: Any) -> list[TurnMessage]:
    """Every conversation message of ``messages``, empty ones included (so a client can
    send the turn on with each message at its caller's position).

    Raises:
        InvalidInputError: an item is not a message, or has an unknown role.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    elif isinstance(messages, (BaseMessage, dict)):
        messages = [messages]
    if not isinstance(messages, Sequence):
        raise InvalidInputError("messages must be a list of messages or a string",
                                field="messages")
    return [m for m in (_one(i, x) for i, x in enumerate(messages)) if m is not None]


def normalize_messages(messages: Any) -> list[TurnMessage]:
    """Turn ``messages`` into non-empty :class:`TurnMessage` lines.

    A bare string is one user message. Empty messages are dropped, so an all-empty turn
    becomes ``[]`` (and costs no model call).

    Raises:
        InvalidInputError: an item is not a message, or has an unknown role.
    """
    return [m for m in turn_messages(messages) if m.text]


def user_texts(turn: Sequence[TurnMessage]) -> list[str]:
    """What the user said: the only text raw mode stores and the pipeline extracts from."""
    return [m.text for m in turn if m.role == "user"]
