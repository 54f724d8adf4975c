"""A scripted model reply that holds a turn inside its model call until the test lets go.

Why: to forget a user while their turns really are queued or running, the test must keep
the background worker busy at a known point (the model call) for as long as it needs.
"""

from __future__ import annotations

import threading

from langchain_core.messages import AIMessage, BaseMessage

from .fake_chat import tool_call_message


def adds_the_users_line(messages: list[BaseMessage]) -> AIMessage:
    """Stores the turn's user line as a fact, quoting it as evidence."""
    said = messages[-1].text.split("user: ")[-1].split("\n")[0]
    return tool_call_message("MemoryOperations", {"operations": [
        {"op": "ADD", "content": f"The user said: {said}", "evidence": said}]})


class Gate:
    """A script item: signals ``entered``, then waits for ``release`` before answering."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, messages: list[BaseMessage]) -> AIMessage:
        self.entered.set()
        assert self.release.wait(30)
        return adds_the_users_line(messages)
