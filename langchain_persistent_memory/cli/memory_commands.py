"""Commands on single memories: add, search, list, show, edit, forget, users."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..models import Provenance
from ..scopes import ANY_USER, AnyUser
from .common import console, fail, store_for
from .render import memory_json, print_history, print_memories, print_memory, safe, to_json

__all__ = ["register"]

_FROM_CLI = Provenance(origin="cli")  # every write of these commands says so in its history


def _scope(user: str | None) -> str | AnyUser:
    """The CLI works on a local database as its owner: without ``--user`` a command by
    memory id acts on whichever user the memory belongs to (the admin opt-in)."""
    return ANY_USER if user is None else user


User = Annotated[str, typer.Option("--user", "-u", envvar="LPM_USER",
                                   help="User the memories belong to (env LPM_USER).")]
OptionalUser = Annotated[str | None, typer.Option(
    "--user", "-u", envvar="LPM_USER",
    help="Only act if the memory belongs to this user (env LPM_USER); without it the "
         "command acts on the memory whoever it belongs to (local admin).")]
Category = Annotated[str | None, typer.Option("--category", "-c", help="Category label.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]
WithSuperseded = Annotated[bool, typer.Option(
    "--all", "-a", help="Include superseded memories (facts that stopped being true).")]


def _metadata(pairs: list[str] | None) -> dict[str, Any] | None:
    """``key=value`` pairs; values that parse as JSON (numbers, true…) keep their type."""
    if not pairs:
        return None
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"metadata must look like key=value, got {pair!r}")
        try:
            result[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            result[key.strip()] = value
    return result


def add(ctx: typer.Context,
        content: Annotated[str, typer.Argument(help="The fact to remember.")],
        user: User,
        category: Category = None,
        importance: Annotated[float, typer.Option(help="0 (trivia) to 1 (vital).")] = 0.5,
        meta: Annotated[list[str] | None, typer.Option(
            "--meta", "-m", help="Metadata as key=value; repeat for several.")] = None,
        as_json: AsJson = False) -> None:
    """Remember a fact for a user and print its id."""
    metadata = _metadata(meta)
    with store_for(ctx) as store:
        memory = store.add(content, user_id=user, category=category, importance=importance,
                           metadata=metadata, provenance=_FROM_CLI)
    if as_json:
        typer.echo(memory_json(memory))
    else:
        console.print(f"[green]remembered[/] {memory.id}")


def search(ctx: typer.Context,
           query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
           user: User,
           k: Annotated[int, typer.Option("-k", help="How many results.")] = 5,
           category: Category = None,
           include_superseded: WithSuperseded = False,
           as_json: AsJson = False) -> None:
    """Semantic search over one user's memories, best match first."""
    with store_for(ctx) as store:
        hits = store.search(query, user_id=user, k=k, category=category,
                            include_superseded=include_superseded)
    if as_json:
        for memory, score in hits:
            typer.echo(memory_json(memory, score))
    elif hits:
        print_memories(console, hits, title=f"results for {query!r}")
    else:
        console.print("no matching memories")


def list_memories(ctx: typer.Context, user: User,
                  category: Category = None,
                  include_superseded: WithSuperseded = False,
                  limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
                  as_json: AsJson = False) -> None:
    """List a user's memories, newest first."""
    with store_for(ctx, needs_embeddings=False) as store:
        items = store.list(user, category=category, include_superseded=include_superseded,
                           limit=limit)
    if as_json:
        for memory in items:
            typer.echo(memory_json(memory))
    elif items:
        print_memories(console, items, title=f"memories of {user} ({len(items)})")
    else:
        console.print(f"no memories for {escape(safe(repr(user)))}")


def show(ctx: typer.Context,
         memory_id: Annotated[str, typer.Argument(help="Id of the memory.")],
         user: OptionalUser = None,
         as_json: AsJson = False) -> None:
    """Show one memory with its full history (added, updated, superseded, deleted)."""
    with store_for(ctx, needs_embeddings=False) as store:
        events = store.history(memory_id, user_id=_scope(user))
        try:
            memory = store.get(memory_id, user_id=_scope(user))
        except KeyError:  # deleted: only the history is left
            memory = None
    if as_json:
        typer.echo(to_json({
            "memory": json.loads(memory_json(memory)) if memory else None,
            "history": [e.model_dump(mode="json") for e in events]}))
        return
    if memory is not None:
        print_memory(console, memory)
    else:
        console.print(f"memory {memory_id} was deleted; its history:")
    print_history(console, events)


def edit(ctx: typer.Context,
         memory_id: Annotated[str, typer.Argument(help="Id of the memory.")],
         content: Annotated[str | None, typer.Option(help="New text.")] = None,
         category: Category = None,
         importance: Annotated[float | None, typer.Option(help="New importance, 0 to 1.")] = None,
         supersede: Annotated[bool, typer.Option(
             "--supersede", help="The fact changed: keep the old one as history and record "
             "the new text as a new memory (instead of correcting it in place).")] = False,
         user: OptionalUser = None) -> None:
    """Correct a memory in place, or supersede it with a new fact."""
    if content is None and category is None and importance is None:
        fail("nothing to change: give --content, --category or --importance")
    with store_for(ctx) as store:
        if supersede:
            if content is None:
                fail("--supersede needs --content (the new fact)")
            memory = store.supersede(memory_id, content, user_id=_scope(user), category=category,
                                     importance=importance, provenance=_FROM_CLI)
            console.print(f"[green]superseded[/] {memory_id} by {memory.id}")
        else:
            store.update(memory_id, content=content, category=category, importance=importance,
                         user_id=_scope(user), provenance=_FROM_CLI)
            console.print(f"[green]updated[/] {memory_id}")


def forget(ctx: typer.Context,
           memory_id: Annotated[str, typer.Argument(help="Id of the memory.")],
           user: OptionalUser = None,
           reason: Annotated[str | None, typer.Option(help="Why, kept in history.")] = None,
           ) -> None:
    """Delete one memory (its history keeps the deletion)."""
    with store_for(ctx, needs_embeddings=False) as store:
        store.delete(memory_id, user_id=_scope(user), reason=reason, provenance=_FROM_CLI)
    console.print(f"[green]forgot[/] {memory_id}")


def users(ctx: typer.Context) -> None:
    """List every user that has memories, with counts."""
    with store_for(ctx, needs_embeddings=False) as store:
        rows = [(u, store.count(u)) for u in store.users()]
    if not rows:
        console.print("no users yet")
    for name, count in rows:
        typer.echo(f"{safe(name)}\t{count}")


def register(app: typer.Typer) -> None:
    app.command()(add)
    app.command()(search)
    app.command("list")(list_memories)
    app.command()(show)
    app.command()(edit)
    app.command()(forget)
    app.command()(users)
