"""Commands on the whole store: forget-user, export, import, reindex, reembed, stats, ui."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import InvalidInputError
from .common import console, fail, settings, store_for
from .config import (
    DATABASE_ENV,
    EMBEDDINGS_ENV,
    USER_ERRORS,
    check_sqlite_directory,
    describe,
    load_embeddings,
    resolve_database_url,
    stored_model_name,
)
from .render import print_stats, safe

__all__ = ["register"]

UI_APP = Path(__file__).resolve().parent.parent / "ui" / "app.py"


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def forget_user(ctx: typer.Context,
                user: Annotated[str, typer.Argument(help="The user to erase.")],
                yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
                ) -> None:
    """Erase a user completely: memories, history and vectors."""
    with store_for(ctx, needs_embeddings=False) as store:
        if not store.count(user, include_superseded=True):
            fail(f"user {user!r} has no memories (lpm users lists who has)")
        if not yes:
            typer.confirm(f"Erase every memory of {user!r}, with its history?", abort=True)
        count = store.forget_user(user)
    console.print(f"[green]erased[/] {count} memories of {escape(safe(user))}")


def export(ctx: typer.Context,
           dest: Annotated[str, typer.Argument(help="JSON Lines file to write, - for stdout.")],
           user: Annotated[str | None, typer.Option(
               "--user", "-u", help="Only this user's memories (default: everyone).")] = None,
           ) -> None:
    """Export memories with their history and vectors to JSON Lines (a full backup)."""
    with store_for(ctx, needs_embeddings=False) as store:
        count = store.export_jsonl(sys.stdout if dest == "-" else dest, user_id=user)
    if dest != "-":
        console.print(f"[green]exported[/] {count} memories to {dest}")


def import_(ctx: typer.Context,
            src: Annotated[str, typer.Argument(help="JSON Lines file made by lpm export, "
                                               "- for stdin.")],
            user: Annotated[str | None, typer.Option(
                "--user", "-u", help="Import only this user's memories.")] = None,
            skip_existing: Annotated[bool, typer.Option(
                "--skip-existing", help="Skip memories whose id already exists (resumes an "
                "interrupted import) instead of refusing the file.")] = False,
            ) -> None:
    """Restore memories from an export; a bad file is refused before anything is written."""
    with store_for(ctx) as store:
        try:
            count = store.import_jsonl(sys.stdin if src == "-" else src, user_id=user,
                                       on_conflict="skip" if skip_existing else "error")
        except InvalidInputError as exc:
            if exc.field != "on_conflict":
                raise
            fail(describe(exc).replace("Use on_conflict='skip'", "Pass --skip-existing"))
    if count == 0 and user is not None and not skip_existing:
        fail(f"the file holds no memories of user {user!r}; nothing was imported")
    console.print(f"[green]imported[/] {count} memories from {escape(safe(src))}")


def reindex(ctx: typer.Context) -> None:
    """Rebuild the search index from the vectors stored in SQL (no model calls)."""
    with store_for(ctx, needs_embeddings=False) as store, _progress() as progress:
        task = progress.add_task("rebuilding index", total=None)
        count = store.rebuild_index()
        progress.update(task, total=count, completed=count)
    console.print(f"[green]indexed[/] {count} vectors")


def reembed(ctx: typer.Context,
            to: Annotated[str | None, typer.Option(
                "--to", help="Embedding model to switch to: 'local', 'openai[:model]' or "
                "'module:name' (default: the --embeddings setting).")] = None,
            force: Annotated[bool, typer.Option(
                "--force", help="Re-embed even if the store already uses that model.")] = False,
            ) -> None:
    """Re-embed every memory with another embedding model, then rebuild the index."""
    options = settings(ctx)
    try:
        target = load_embeddings(to or options.embeddings)
        from ..store import MemoryStore

        url = resolve_database_url(options.db)
        check_sqlite_directory(url)
        store = MemoryStore(url, embeddings=target, check_embedding_model=False)
        current = stored_model_name(store)
    except USER_ERRORS as exc:
        fail(describe(exc))
    if current == store.model_name and not force:
        store.close()
        console.print(f"the store already uses {escape(current)}: nothing to re-embed "
                      "(--force re-embeds anyway)")
        return
    try:
        with _progress() as progress:
            task = progress.add_task("re-embedding", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            count = store.reembed(target, progress=advance)
    except USER_ERRORS as exc:
        fail(describe(exc))
    finally:
        store.close()
    console.print(f"[green]re-embedded[/] {count} memories with {store.model_name}")


def stats(ctx: typer.Context,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Counts, embedding model and index state of the store."""
    with store_for(ctx, needs_embeddings=False) as store:
        data = store.stats()
        data["embedding_model"] = stored_model_name(store)
    if as_json:
        typer.echo(json.dumps(data))
    else:
        print_stats(console, data)


def ui(ctx: typer.Context,
       port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
       host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1") -> None:
    """Start the web UI (Streamlit) to browse, search and edit memories."""
    if importlib.util.find_spec("streamlit") is None:
        fail('the web UI needs the ui extra: pip install "langchain-persistent-memory[ui]"')
    options = settings(ctx)
    env = dict(os.environ)
    env[DATABASE_ENV] = resolve_database_url(options.db)
    if options.embeddings:
        env[EMBEDDINGS_ENV] = options.embeddings
    args = [sys.executable, "-m", "streamlit", "run", str(UI_APP),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]
    console.print(f"web UI on http://{host}:{port}  (Ctrl+C to stop)")
    sys.stdout.flush()
    os.execve(sys.executable, args, env)  # become the server: signals reach it directly


def register(app: typer.Typer) -> None:
    app.command("forget-user")(forget_user)
    app.command()(export)
    app.command("import")(import_)
    app.command()(reindex)
    app.command()(reembed)
    app.command()(stats)
    app.command()(ui)
