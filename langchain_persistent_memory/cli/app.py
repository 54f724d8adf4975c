"""The ``lpm`` Typer application: global options and the command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from . import chat, graph_commands, memory_commands, serve_commands, store_commands
from .common import Settings

__all__ = ["app"]

app = typer.Typer(
    name="lpm",
    help="Long-term memory for LLM apps: browse, search, edit and chat with stored memories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's plain help: Rich help in Typer shows flags as taking a value ("--json <bool>").
    rich_markup_mode=None,
)


@app.callback()
def options(ctx: typer.Context,
            db: Annotated[str | None, typer.Option(
                "--db", envvar="LPM_DATABASE_URL",
                help="Database URL or SQLite file (env LPM_DATABASE_URL; default: "
                "memories.db in the user data directory).")] = None,
            embeddings: Annotated[str | None, typer.Option(
                "--embeddings", envvar="LPM_EMBEDDINGS",
                help="Embedding model the store uses: 'local' (default), 'openai[:model]' "
                "or 'module:name' (env LPM_EMBEDDINGS).")] = None) -> None:
    """Long-term memory for LLM apps."""
    ctx.obj = Settings(db=db, embeddings=embeddings)


memory_commands.register(app)
store_commands.register(app)
chat.register(app)
serve_commands.register(app)
graph_commands.register(app)
