"""What every ``lpm`` command shares: global options, opening the store, one-line errors.

User mistakes (bad ids, bad input, unreachable database, wrong embedding model) must end in
one readable line and exit code 1, never a traceback: :func:`store_for` turns the errors we
expect (:data:`.config.USER_ERRORS`) into that, and lets real bugs through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

import typer
from rich.console import Console

from ..store import MemoryStore
from .config import USER_ERRORS, describe, open_store
from .render import safe

__all__ = ["Settings", "console", "fail", "settings", "store_for"]

console = Console()


@dataclass(frozen=True)
class Settings:
    """Global options, given before the command (``lpm --db URL list -u alice``)."""

    db: str | None = None
    embeddings: str | None = None


def settings(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else Settings()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with ``code``."""
    typer.echo(f"Error: {safe(message)}", err=True)
    raise typer.Exit(code)


@contextmanager
def store_for(ctx: typer.Context, *, needs_embeddings: bool = True) -> Iterator[MemoryStore]:
    """Open the configured store for one command; expected errors become :func:`fail`."""
    options = settings(ctx)
    try:
        store = open_store(options.db, options.embeddings, needs_embeddings=needs_embeddings)
    except USER_ERRORS as exc:
        fail(describe(exc))
    try:
        yield store
    except USER_ERRORS as exc:
        fail(describe(exc))
    finally:
        store.close()
