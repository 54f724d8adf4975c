"""Headless-browser plumbing for UI tests: Debian's chromium, a free port, a running app.

Why Debian's chromium and not Playwright's own download: no browser binaries may be fetched at
test time, and the system package is reproducible in CI. It is installed on first use with
apt-get when missing (root only); with ``CI=true`` a missing browser fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "free_port", "require_chromium", "running_server"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


def require_chromium() -> str:
    """Path of Debian's chromium, installing it with apt-get if needed."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        _unavailable("chromium is missing and cannot be installed (needs apt-get as root)")
    for step in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(step, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if done.returncode != 0:
            _unavailable(f"{' '.join(step)} failed: {done.stderr.strip()[-300:]}")
    if not Path(CHROMIUM).exists():
        _unavailable("apt-get installed chromium but /usr/bin/chromium is missing")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(args: list[str], *, env: dict[str, str], health_url: str, log: Path,
                   timeout: float = 60.0) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``args``, wait until ``health_url`` answers 200, stop it afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}:\n"
                                       f"{log.read_text(errors='replace')[-2000:]}")
                try:
                    with urllib.request.urlopen(health_url, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not healthy after {timeout:.0f}s:\n"
                                       f"{log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
