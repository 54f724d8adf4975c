"""``lpm chat``: an interactive chat whose memories persist across restarts.

With a chat model configured from the environment the model answers using the user's
relevant memories, and each turn goes through :class:`MemoryManager` (extraction and
reconciliation). Without one the chat still works in *raw mode*: each message is stored as a
memory verbatim and related memories are shown, so the memory side can be tried with no key.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, TextIO

import typer
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from rich.markup import escape

from ..models import ScoredMemory
from ..pipeline import MemoryManager
from ..retrieval.render import render_memories
from ..store import MemoryStore
from .common import console, fail, store_for
from .config import USER_ERRORS, chat_model_from_env, describe
from .render import print_memories

__all__ = ["ChatModelError", "ChatSession", "register", "system_prompt"]

RAW_NOTICE = ("No chat model configured (set OPENAI_API_KEY, optionally OPENAI_BASE_URL and "
              "LPM_CHAT_MODEL): raw mode, each message is stored verbatim as a memory.")
HELP_LINE = "Commands: /memories lists what is remembered, /quit leaves (or Ctrl+D)."
_KEPT_TURNS = 10


class ChatModelError(RuntimeError):
    """The configured chat model could not answer (network, quota, credentials)."""


def system_prompt(related: Sequence[ScoredMemory]) -> str:
    """Instructions plus the memories relevant to the user's message, as a quoted data block
    (:func:`render_memories`: stored text is neutralised and cannot pose as instructions)."""
    intro = "You are a helpful assistant with long-term memory of this user."
    block = render_memories(related, max_tokens=1500)
    if not block:
        return f"{intro}\nYou do not remember anything relevant about this user yet."
    return f"{intro}\n\n{block}"


class ChatSession:
    """One user's conversation: answers with the model (if any) and updates memories."""

    def __init__(self, store: MemoryStore, manager: MemoryManager, llm: BaseChatModel | None, *,
                 user_id: str, session_id: str | None = None, k: int = 5) -> None:
        self.store = store
        self.manager = manager
        self.llm = llm
        self.user_id = user_id
        self.session_id = session_id
        self.k = k
        self.transcript: list[BaseMessage] = []

    def turn(self, text: str) -> str | None:
        """Handle one user message; returns the model's answer (``None`` in raw mode)."""
        related = self.store.search(text, user_id=self.user_id, k=self.k)
        messages: list[BaseMessage] = [HumanMessage(text)]
        answer = None
        if self.llm is not None:
            prompt = [SystemMessage(system_prompt(related)), *self.transcript, HumanMessage(text)]
            try:
                answer = self.llm.invoke(prompt).text
            except Exception as exc:  # network, quota, auth: the provider's, not ours
                raise ChatModelError(f"the chat model failed: {describe(exc)}") from exc
            messages.append(AIMessage(answer))
            self.transcript = [*self.transcript, *messages][-2 * _KEPT_TURNS:]
            console.print(f"[bold blue]assistant>[/] {escape(answer)}")
        elif related:
            print_memories(console, related, title="related memories")
        result = self.manager.process(messages, user_id=self.user_id,
                                      session_id=self.session_id)
        for change in result.operations:
            if change.action != "none":
                console.print(f"[dim]memory {change.action}: {escape(change.memory.content)}[/]")
        if result.error:
            console.print(f"[yellow]memories not updated: {escape(result.error)}[/]")
        return answer

    def run(self, stream: TextIO) -> int:
        """Read messages until EOF or ``/quit``; returns the number of turns."""
        turns = 0
        while True:
            typer.echo("you> ", nl=False)
            try:
                line = stream.readline()
            except KeyboardInterrupt:  # Ctrl+C at the prompt leaves like /quit
                line = ""
            if not line:
                typer.echo("")
                return turns
            text = line.strip()
            if text in ("/quit", "/exit"):
                return turns
            if text == "/memories":
                print_memories(console, self.store.list(self.user_id),
                               title=f"memories of {self.user_id}")
            elif text:
                self.turn(text)
                turns += 1


def chat(ctx: typer.Context,
         user: Annotated[str, typer.Option("--user", "-u", envvar="LPM_USER",
                                           help="Who is chatting (env LPM_USER).")],
         session: Annotated[str | None, typer.Option(help="Session id stored with memories.")
                            ] = None,
         k: Annotated[int, typer.Option("-k", help="Memories recalled per message.")] = 5,
         ) -> None:
    """Chat with memory (model from OPENAI_API_KEY / OPENAI_BASE_URL / LPM_CHAT_MODEL)."""
    try:
        llm = chat_model_from_env()
    except USER_ERRORS as exc:
        fail(describe(exc))
    with store_for(ctx) as store:
        manager = MemoryManager(store, llm=llm)
        if llm is None:
            console.print(f"[yellow]{RAW_NOTICE}[/]")
        else:
            console.print(f"chatting as {user} with {getattr(llm, 'model_name', 'the model')}; "
                          "memories are recalled and updated every turn.")
        console.print(HELP_LINE)
        session_ = ChatSession(store, manager, llm, user_id=user, session_id=session, k=k)
        try:
            turns = session_.run(sys.stdin)
        except ChatModelError as exc:  # store errors are handled by store_for
            fail(str(exc))
        finally:
            manager.close()
        kept = store.count(user)
    console.print(f"bye: {turns} turns; {kept} memories kept for {user}")


def register(app: typer.Typer) -> None:
    app.command()(chat)
