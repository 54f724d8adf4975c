"""The throw-away PostgreSQL cluster the tests start on machines without a server works.

Why: on CI a server answers at 127.0.0.1:5432, so this fallback would otherwise never run;
a user's fresh machine depends on it.
"""

from __future__ import annotations

import shutil

import pytest

from langchain_persistent_memory import MemoryStore
from tests.support.embeddings import HashEmbeddings
from tests.support.postgres import ThrowAwayPostgres, _pg_bin


@pytest.mark.postgres
def test_throw_away_cluster_serves_a_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    if _pg_bin() is None and shutil.which("apt-get") is None:
        pytest.skip("neither PostgreSQL binaries nor apt-get on this machine")
    server = ThrowAwayPostgres()
    try:
        with MemoryStore(server.url, embeddings=HashEmbeddings(),
                         index_path=tmp_path / "index.lpm") as store:
            store.add("stored in a cluster the tests started", user_id="u")
            hits = store.search("cluster the tests started", user_id="u", k=1)
            assert hits[0].memory.content == "stored in a cluster the tests started"
    finally:
        server.stop()
    assert not server.dir.exists()
