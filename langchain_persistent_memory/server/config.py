"""The service's settings: read once from the environment, so every uvicorn worker process
(started by ``lpm serve --workers N``) builds the same app.

Keys and tenants: ``LPM_API_KEYS="tenant:key,tenant2:key2"`` or a file of such entries
(``LPM_API_KEYS_FILE``, one per line or comma separated, ``#`` comments). A key decides the
tenant; tenant names are ``[a-z0-9_]{1,40}`` because they name a schema or a file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError

__all__ = ["DEFAULT_TENANT", "ENV", "ServiceConfig", "key_digest", "parse_api_keys"]

DEFAULT_TENANT = "default"
"""The only tenant when no key is configured (loopback-only mode)."""

ENV = {
    "db": "LPM_DATABASE_URL",
    "embeddings": "LPM_EMBEDDINGS",
    "api_keys": "LPM_API_KEYS",
    "api_keys_file": "LPM_API_KEYS_FILE",
    "model": "LPM_SERVE_MODEL",
    "rate_limit": "LPM_RATE_LIMIT",
    "max_body_bytes": "LPM_MAX_BODY_BYTES",
    "max_import_bytes": "LPM_MAX_IMPORT_BYTES",
    "job_concurrency": "LPM_JOB_CONCURRENCY",
}
_TENANT = re.compile(r"^[a-z0-9_]{1,40}$")


def key_digest(key: str) -> str:
    """Keys are looked up by digest: the table never holds them, and a lookup's timing
    says nothing about how close a guess came."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_api_keys(text: str) -> dict[str, str]:
    """``"tenant:key,…"`` → {key digest: tenant}; malformed entries are an error."""
    keys: dict[str, str] = {}
    for raw in re.split(r"[,\n]", text):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        tenant, sep, key = entry.partition(":")
        tenant, key = tenant.strip(), key.strip()
        if not sep or not key:
            raise InvalidInputError(f"API key entry {tenant!r} must look like tenant:key",
                                    field="api_keys")
        if not _TENANT.match(tenant):
            raise InvalidInputError(
                f"tenant name {tenant!r} must be 1-40 characters of a-z, 0-9 and _",
                field="api_keys")
        digest = key_digest(key)
        if digest in keys and keys[digest] != tenant:
            raise InvalidInputError("the same key is given to two tenants", field="api_keys")
        keys[digest] = tenant
    return keys


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(ENV[name], "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInputError(f"{ENV[name]} must be a number, not {raw!r}",
                                field=name) from None
    if value < 0:
        raise InvalidInputError(f"{ENV[name]} must not be negative", field=name)
    return value


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the app needs; :meth:`from_env` is what the workers use.

    Attributes:
        db: base database URL; each tenant gets its own schema or file derived from it.
        embeddings: embedding spec (``local``, ``openai[:model]``, ``module:name``).
        keys: key digest → tenant; empty means no auth, one ``default`` tenant.
        model: chat model for turns, as ``provider:name`` for ``init_chat_model``;
            ``None`` stores user messages as they are (raw mode).
        rate_limit: requests per second per tenant and process (0: no limit).
        max_body_bytes / max_import_bytes: request size limits (413 beyond them).
        job_concurrency: turns processed at once by one process.
    """

    db: str
    embeddings: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    rate_limit: float = 100.0
    max_body_bytes: int = 1 << 20
    max_import_bytes: int = 64 << 20
    job_concurrency: int = 4

    @property
    def tenants(self) -> list[str]:
        return sorted(set(self.keys.values())) or [DEFAULT_TENANT]

    @property
    def auth_required(self) -> bool:
        return bool(self.keys)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceConfig:
        """Settings from ``environ`` (default ``os.environ``).

        Raises:
            InvalidInputError: a malformed key entry, tenant name or number.
        """
        from ..cli.config import resolve_database_url

        environ = os.environ if environ is None else environ
        text = environ.get(ENV["api_keys"], "")
        keys_file = environ.get(ENV["api_keys_file"], "").strip()
        if keys_file:
            text += "\n" + Path(keys_file).read_text(encoding="utf-8")
        return cls(
            db=resolve_database_url(environ.get(ENV["db"])),
            embeddings=environ.get(ENV["embeddings"]) or None,
            keys=parse_api_keys(text),
            model=environ.get(ENV["model"]) or None,
            rate_limit=_number(environ, "rate_limit", 100.0),
            max_body_bytes=int(_number(environ, "max_body_bytes", 1 << 20)),
            max_import_bytes=int(_number(environ, "max_import_bytes", 64 << 20)),
            job_concurrency=max(1, int(_number(environ, "job_concurrency", 4))),
        )
