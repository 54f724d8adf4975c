"""Find or start a PostgreSQL server for the tests.

Order: ``$LPM_TEST_POSTGRES_URL``; a server answering at 127.0.0.1:5432 (the CI machine has
one, trust auth, database ``test``); else a throw-away cluster started with Debian's
``postgresql`` binaries (installed with apt-get when missing) in a temporary directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _install_postgres() -> Path:
    if shutil.which("apt-get") is None:
        raise RuntimeError("no PostgreSQL server found and apt-get is not available")
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True,
                   capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    pg_bin = _pg_bin()
    if pg_bin is None:
        raise RuntimeError("postgresql installed but initdb not found")
    return pg_bin


class ThrowAwayPostgres:
    """A private cluster on a free port; removed on stop()."""

    def __init__(self) -> None:
        self.pg_bin = _pg_bin() or _install_postgres()
        self.dir = Path(tempfile.mkdtemp(prefix="lpm-pg-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            run_as = ["runuser", "-u", "postgres", "--"]
        self._run_as = run_as
        data = self.dir / "data"
        subprocess.run([*run_as, str(self.pg_bin / "initdb"), "-D", str(data), "-A", "trust",
                        "-U", "postgres"], check=True, capture_output=True)
        subprocess.run([*run_as, str(self.pg_bin / "pg_ctl"), "-D", str(data), "-w", "-l",
                        str(self.dir / "log"), "-o", f"-p {self.port} -k {self.dir} -h 127.0.0.1",
                        "start"], check=True, capture_output=True)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run([*self._run_as, str(self.pg_bin / "pg_ctl"), "-D",
                        str(self.dir / "data"), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def find_or_start() -> tuple[str, ThrowAwayPostgres | None]:
    """A URL for a database the tests may use freely, and the server to stop (if ours)."""
    url = os.environ.get("LPM_TEST_POSTGRES_URL")
    if url:
        return url, None
    if _answers("127.0.0.1", 5432):
        return DEFAULT_URL, None
    server = ThrowAwayPostgres()
    for _ in range(50):
        if _answers("127.0.0.1", server.port):
            break
        time.sleep(0.1)
    return server.url, server
