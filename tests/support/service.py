"""Run the real memory service (``lpm serve`` → uvicorn) in a subprocess on a free port.

Tests talk to it over loopback with httpx, ``MemoryClient`` and the MCP SDK's client:
nothing of the server runs in the test process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

__all__ = ["HASH_EMBEDDINGS", "LPM", "TWO_TENANTS", "RunningService", "drop_tenant_schemas",
           "free_port", "lpm_command", "two_tenant_service"]

ROOT = Path(__file__).resolve().parents[2]
HASH_EMBEDDINGS = "tests.support.embeddings:HashEmbeddings"
LPM = [sys.executable, "-c", "from langchain_persistent_memory.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lpm_command(*args: str, embeddings: str = HASH_EMBEDDINGS) -> list[str]:
    return [*LPM, "--embeddings", embeddings, *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LPM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    env["LPM_CACHE_DIR"] = os.environ.get("LPM_CACHE_DIR", "")
    env.update(extra)
    return env


class RunningService:
    """``lpm serve`` on 127.0.0.1:<free port>; ``stop()`` ends it (and its workers)."""

    def __init__(self, db: str, *, keys: str | None = None, workers: int = 1,
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 log: Path | None = None, embeddings: str = HASH_EMBEDDINGS) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        extra_env = dict(env or {})
        if keys is not None:
            extra_env["LPM_API_KEYS"] = keys
        self._log = open(log or os.devnull, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            lpm_command("serve", "--db", db, "--port", str(self.port), "--workers",
                        str(workers), "--log-level", "warning", *extra,
                        embeddings=embeddings),
            env=child_env(**extra_env), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lpm serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("lpm serve did not start in time")

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)  # our own session: uvicorn and its workers
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(10)
        self._log.close()


TWO_TENANTS = "acme:k-acme,beta:k-beta"


@contextmanager
def two_tenant_service(db: str, *, workers: int = 1) -> Iterator[RunningService]:
    """The service most tests share: tenants ``acme`` and ``beta`` (keys ``k-acme`` and
    ``k-beta``), no rate limit, stopped on exit."""
    running = RunningService(db, keys=TWO_TENANTS, workers=workers,
                             extra=("--rate-limit", "0"))
    try:
        yield running
    finally:
        running.stop()


def drop_tenant_schemas(server_url: str, base_schema: str) -> None:
    """PostgreSQL: drop the per-tenant schemas the service created beside ``base_schema``."""
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            names = [r[0] for r in conn.execute(text(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                {"p": f"{base_schema}_t_%"})]
            for name in names:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        admin.dispose()
