"""Settings and file handling shared by the sync and async clients (no network here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from ..errors import InvalidInputError

__all__ = ["API_KEY_ENV", "ClientOptions", "poll_delays", "read_source", "write_export"]

API_KEY_ENV = "LPM_API_KEY"


@dataclass(frozen=True)
class ClientOptions:
    base_url: str
    headers: dict[str, str]

    @classmethod
    def of(cls, base_url: str, api_key: str | None, timeout: float) -> ClientOptions:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InvalidInputError("base_url must be an http(s) URL", field="base_url")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise InvalidInputError("timeout must be a positive number", field="timeout")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return cls(base_url.rstrip("/"), headers)


def poll_delays(first: float = 0.02, most: float = 0.5) -> Iterator[float]:
    """Waits between job polls: quick at first (most turns finish fast), then capped."""
    delay = first
    while True:
        yield delay
        delay = min(most, delay * 1.5)


def read_source(src: str | os.PathLike[str] | IO[str]) -> str:
    """The text of an export to upload: a path or an open text file."""
    if isinstance(src, str | os.PathLike):
        return Path(src).read_text(encoding="utf-8")
    return src.read()


def write_export(response: httpx.Response, dest: str | os.PathLike[str] | IO[str]) -> int:
    """Write a downloaded export where the store's ``export_jsonl`` would; returns the
    number of memories (the server counts them in a header)."""
    if isinstance(dest, str | os.PathLike):
        Path(dest).write_text(response.text, encoding="utf-8")
    else:
        dest.write(response.text)
    return int(response.headers.get("X-LPM-Memories", "0"))
