"""Configuration shared by the ``lpm`` command and the web UI, read from flags or the environment.

Both surfaces must open a store with the embedding model it was built with, so the model is
named by one spec string (``--embeddings`` or ``$LPM_EMBEDDINGS``) that both understand:

* ``local`` (default): the bundled all-MiniLM-L6-v2 model, offline;
* ``openai`` or ``openai:<model>``: ``langchain_openai.OpenAIEmbeddings`` (needs a key);
* ``package.module:name``: any importable ``Embeddings`` instance, class or factory.

Nothing here imports typer or streamlit, so the UI can use it without the ``cli`` extra.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ..errors import EmbeddingMismatchError, InvalidInputError, PersistentMemoryError
from ..store import LocalEmbeddings, MemoryStore, default_database_url
from ..store.schema import read_meta

__all__ = [
    "CHAT_MODEL_ENV",
    "DATABASE_ENV",
    "DEFAULT_CHAT_MODEL",
    "EMBEDDINGS_ENV",
    "USER_ERRORS",
    "chat_model_from_env",
    "check_sqlite_directory",
    "describe",
    "load_embeddings",
    "open_store",
    "resolve_database_url",
    "stored_model_name",
]

_T = TypeVar("_T")

DATABASE_ENV = "LPM_DATABASE_URL"
EMBEDDINGS_ENV = "LPM_EMBEDDINGS"
CHAT_MODEL_ENV = "LPM_CHAT_MODEL"
DEFAULT_CHAT_MODEL = "gpt-4o-mini"
DEFAULT_OPENAI_EMBEDDINGS = "text-embedding-3-small"

USER_ERRORS: tuple[type[BaseException], ...] = (
    PersistentMemoryError, SQLAlchemyError, OSError, ImportError)
"""Errors caused by input or environment: shown as one line, never as a traceback."""


def describe(exc: BaseException) -> str:
    """The first line of an error, with a hint where the bare message would puzzle a user."""
    if isinstance(exc, SQLAlchemyError):
        text = f"database error: {getattr(exc, 'orig', None) or exc}"
    elif isinstance(exc, ImportError):
        text = f"missing dependency: {exc}"
    elif isinstance(exc, EmbeddingMismatchError) and exc.stored and not exc.stored.isdigit():
        text = (f"this store was built with the embedding model {exc.stored!r}; pass the same "
                "one with --embeddings (or LPM_EMBEDDINGS), or switch with lpm reembed --to")
    else:
        text = str(exc)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def resolve_database_url(url: str | None = None) -> str:
    """The explicit URL, else ``$LPM_DATABASE_URL``, else a file in the user data dir.

    A bare file path is accepted too and turned into a SQLite URL.
    """
    url = (url or "").strip() or default_database_url()
    if "://" not in url:
        url = f"sqlite:///{os.path.abspath(os.path.expanduser(url))}"
    return url


def load_embeddings(spec: str | None = None) -> Embeddings:
    """Build the embedding model named by ``spec`` (see the module docstring).

    Raises:
        InvalidInputError: the spec is malformed or names something that is not embeddings.
        PersistentMemoryError: the package the spec needs is not installed.
    """
    spec = (spec or os.environ.get(EMBEDDINGS_ENV) or "local").strip()
    if spec == "local":
        return LocalEmbeddings()
    if spec == "openai" or spec.startswith("openai:"):
        try:
            from langchain_openai import OpenAIEmbeddings
        except ImportError as exc:
            raise PersistentMemoryError(
                'OpenAI embeddings need the openai extra: '
                'pip install "langchain-persistent-memory[openai]"') from exc
        if not os.environ.get("OPENAI_API_KEY"):
            raise InvalidInputError(
                f"embeddings {spec!r} need an OpenAI API key: set OPENAI_API_KEY "
                "(and OPENAI_BASE_URL for another OpenAI-compatible server)",
                field="embeddings")
        model = spec.partition(":")[2] or DEFAULT_OPENAI_EMBEDDINGS
        return _build(spec, lambda: OpenAIEmbeddings(model=model))
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidInputError(
            f"unknown embeddings {spec!r}: use 'local', 'openai[:model]' or 'module:name'",
            field="embeddings")
    try:
        target: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"cannot load embeddings {spec!r}: {exc}",
                                field="embeddings") from None
    embeddings = target if isinstance(target, Embeddings) else _build(spec, target)
    if not isinstance(embeddings, Embeddings):
        raise InvalidInputError(f"{spec!r} is not a LangChain Embeddings",
                                field="embeddings")
    return embeddings


def _build(spec: str, factory: Callable[[], _T]) -> _T:
    """Call a third-party constructor: whatever it raises (a pydantic ValidationError for a
    missing argument, the client's error for a missing key) becomes one readable line."""
    try:
        return factory()
    except Exception as exc:  # any library's own error: reported with its cause, not hidden
        lines = [line.strip() for line in str(exc).splitlines()
                 if line.strip() and not line.strip().startswith("For further information")]
        reason = "; ".join(lines[:3]) or type(exc).__name__
        raise InvalidInputError(f"cannot create embeddings {spec!r}: {reason}",
                                field="embeddings") from exc


def check_sqlite_directory(url: str) -> None:
    """A SQLite file in a directory that does not exist is a typo, not a request to create
    the directory (and an empty database in it)."""
    parsed = make_url(url)
    path = parsed.database
    if not parsed.drivername.startswith("sqlite") or not path or path == ":memory:" \
            or path.startswith("file:"):
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InvalidInputError(f"no such directory for the database file: {folder}",
                                field="db")


def open_store(url: str | None = None, embeddings: str | None = None, *,
               needs_embeddings: bool = True) -> MemoryStore:
    """Open the store at ``url`` with the configured embeddings.

    Commands that never embed (list, show, delete, export…) pass ``needs_embeddings=False``:
    the model is then never loaded (the lazy local one stands in), so they keep working on a
    store built with a model that is not available here.
    """
    resolved = resolve_database_url(url)
    if url or os.environ.get(DATABASE_ENV):  # the default directory is ours to create
        check_sqlite_directory(resolved)
    model = load_embeddings(embeddings) if needs_embeddings else LocalEmbeddings()
    return MemoryStore(resolved, embeddings=model,
                       check_embedding_model=needs_embeddings)


def stored_model_name(store: MemoryStore) -> str | None:
    """The embedding model the store's vectors were made with (``None`` while empty).

    Differs from ``store.model_name`` when the store was opened with
    ``needs_embeddings=False``.
    """
    with store.engine.connect() as conn:
        return read_meta(conn).get("embedding_model")


def chat_model_from_env() -> BaseChatModel | None:
    """A chat model when ``$OPENAI_API_KEY`` is set, else ``None`` (raw storage mode).

    ``$OPENAI_BASE_URL`` points it at any OpenAI-compatible server; ``$LPM_CHAT_MODEL``
    picks the model (default ``gpt-4o-mini``).
    """
    if not os.environ.get("OPENAI_API_KEY"):
        return None
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise PersistentMemoryError(
            'OPENAI_API_KEY is set but langchain-openai is missing: '
            'pip install "langchain-persistent-memory[openai]"') from exc
    return ChatOpenAI(model=os.environ.get(CHAT_MODEL_ENV) or DEFAULT_CHAT_MODEL,
                      base_url=os.environ.get("OPENAI_BASE_URL") or None, temperature=0)
