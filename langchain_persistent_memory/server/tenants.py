"""One store per tenant: the tenant scope is structural, never a user-id convention.

Each tenant's memories live in their own PostgreSQL schema or their own SQLite file, derived
from the base ``--db`` URL. A user id is only ever looked up inside the store of the tenant
its API key belongs to, so no string a client sends (``"acme/alice"``,
``"langgraph:…"``) can name another tenant's data: tenant A's ``alice`` and tenant B's
``alice`` are rows in different databases. The no-key mode has one tenant that uses the
base URL itself, so ``lpm ui --db`` on the same URL shows the same memories.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from ..store import MemoryStore
from .config import DEFAULT_TENANT

__all__ = ["TenantStores", "tenant_url"]


def _search_path(url: URL) -> str | None:
    """The schema a PostgreSQL URL selects with ``options=-csearch_path=…``, if any."""
    options = url.query.get("options")
    value = options if isinstance(options, str) else " ".join(options or ())
    for part in unquote(value).split():
        if part.startswith("-csearch_path="):
            return part.split("=", 1)[1].split(",")[0].strip()
    return None


def tenant_url(base: str, tenant: str) -> str:
    """The database URL holding ``tenant``'s memories.

    SQLite ``memories.db`` → ``memories.<tenant>.db`` beside it; PostgreSQL → schema
    ``lpm_t_<tenant>`` (or ``<base schema>_t_<tenant>`` when the base URL sets a
    ``search_path``); an in-memory SQLite URL is private to its store already.
    """
    if tenant == DEFAULT_TENANT:
        return base
    url = make_url(base)
    if url.drivername.startswith("sqlite"):
        db = url.database
        if not db or db == ":memory:" or db.startswith("file::memory:"):
            return base
        path = Path(db)
        return url.set(database=str(path.with_name(f"{path.stem}.{tenant}{path.suffix}"))) \
            .render_as_string(hide_password=False)
    schema = f"{_search_path(url) or 'lpm'}_t_{tenant}"
    query = {k: v for k, v in url.query.items() if k != "options"}
    query["options"] = f"-csearch_path={schema}"
    return url.set(query=query).render_as_string(hide_password=False)


def _ensure_schema(url: str) -> None:
    """PostgreSQL: create the tenant's schema before the store migrates into it."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return
    schema = _search_path(parsed)
    if schema is None:
        return
    admin = create_engine(parsed.set(query={k: v for k, v in parsed.query.items()
                                            if k != "options"}),
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        admin.dispose()


class TenantStores:
    """Opens each tenant's store on first use and keeps it for the process's life.

    Args:
        base_url: the ``--db`` URL.
        tenants: the tenant names the keys allow (others are never opened).
        open_store: builds a store for a URL (the app passes shared embeddings).
    """

    def __init__(self, base_url: str, tenants: list[str],
                 open_store: Callable[[str], MemoryStore]) -> None:
        self.base_url = base_url
        self.tenants = frozenset(tenants)
        self._open = open_store
        self._stores: dict[str, MemoryStore] = {}
        self._lock = threading.Lock()

    def url(self, tenant: str) -> str:
        return tenant_url(self.base_url, tenant)

    def store(self, tenant: str) -> MemoryStore:
        """The tenant's store (opened, migrated and its schema created on first use)."""
        store = self._stores.get(tenant)
        if store is not None:
            return store
        if tenant not in self.tenants:
            raise KeyError(tenant)
        with self._lock:
            if tenant not in self._stores:
                url = self.url(tenant)
                _ensure_schema(url)
                self._stores[tenant] = self._open(url)
            return self._stores[tenant]

    def opened(self) -> dict[str, MemoryStore]:
        return dict(self._stores)

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()

    def describe(self) -> dict[str, Any]:
        return {t: make_url(self.url(t)).render_as_string(hide_password=True)
                for t in sorted(self.tenants)}
