"""Shared fixtures: real SQLite files and a real PostgreSQL server, no mocks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_persistent_memory import MemoryStore
from tests.support.embeddings import HashEmbeddings
from tests.support.pg_schema import fresh_schema
from tests.support.postgres import find_or_start

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The local model's exported ONNX graph: one cache for every test and child process,
# outside the user's own cache directory.
os.environ.setdefault("LPM_CACHE_DIR", str(Path(tempfile.gettempdir()) / "lpm-test-cache"))


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
    """A fresh, empty schema for one test (dropped afterwards): isolated like a new database,
    at a fraction of the cost."""
    with fresh_schema(postgres_server_url) as url:
        yield url


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
