"""``lpm graph``: the entities a user's memories name, and which memories name each."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import console, store_for
from .render import safe, to_json

__all__ = ["register"]


def graph(ctx: typer.Context,
          user: Annotated[str, typer.Option("--user", "-u", envvar="LPM_USER",
                                            help="User whose entities to show (env LPM_USER).")],
          as_json: Annotated[bool, typer.Option(
              "--json", help="Print one JSON object per entity instead of a table.")] = False,
          include_superseded: Annotated[bool, typer.Option(
              "--all", "-a", help="Also count superseded memories' links.")] = False,
          limit: Annotated[int, typer.Option(
              "--limit", "-n", min=1, help="Show at most this many entities.")] = 50) -> None:
    """Entities of a user (people, names, titles), most often named first, with counts
    and aliases."""
    with store_for(ctx, needs_embeddings=False) as store:
        rows = store.entities(user, include_superseded=include_superseded)
    links = sum(len(r.memory_ids) for r in rows)
    if as_json:
        for row in rows[:limit]:
            typer.echo(to_json({"key": row.key, "name": row.name, "kind": row.kind,
                                "memories": len(row.memory_ids),
                                "subject_of": row.subject_of, "aliases": list(row.aliases),
                                "memory_ids": list(row.memory_ids)}))
        return
    if not rows:
        console.print(f"no entities for user {safe(user)!r}", markup=False)
        return
    typer.echo(f"{len(rows)} entities, {links} links")
    for row in rows[:limit]:
        about = f" (about: {row.subject_of})" if row.subject_of else ""
        also = f"\taka {', '.join(safe(a) for a in row.aliases)}" if row.aliases else ""
        typer.echo(f"{safe(row.name)}\t{row.kind}\t{len(row.memory_ids)}{about}{also}")


def register(app: typer.Typer) -> None:
    app.command()(graph)
