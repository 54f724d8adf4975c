"""Shared fixtures: real SQLite files and a real PostgreSQL server, no mocks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from langchain_persistent_memory import MemoryStore
from tests.support.embeddings import HashEmbeddings
from tests.support.postgres import find_or_start

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """Base URL of a PostgreSQL server; with CI=true a missing server is an error."""
    try:
        url, server = find_or_start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL available: {exc}")
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    name = f"lpm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = postgres_server_url.rpartition("/")
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def embeddings() -> HashEmbeddings:
    return HashEmbeddings()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same store tests run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'memories.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str, embeddings: HashEmbeddings, tmp_path: Path) -> Iterator[MemoryStore]:
    s = MemoryStore(store_url, embeddings=embeddings, index_path=tmp_path / "index.lpm")
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path, embeddings: HashEmbeddings) -> Iterator[MemoryStore]:
    s = MemoryStore(f"sqlite:///{tmp_path / 'memories.db'}", embeddings=embeddings)
    yield s
    s.close()
