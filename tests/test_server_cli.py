"""``lpm serve`` / ``lpm mcp`` refuse unsafe or impossible setups with one clear line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langchain_persistent_memory.cli.app import app
from tests.support.service import HASH_EMBEDDINGS


def run(*args: str, **env: str | None) -> tuple[int, str]:
    before = dict(os.environ)
    result = CliRunner().invoke(app, ["--embeddings", HASH_EMBEDDINGS, *args],
                                env={"LPM_API_KEYS": None, **env})
    assert dict(os.environ) == before  # a refused serve leaves the caller's environment
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


def test_several_workers_need_postgres(tmp_path: Path) -> None:
    code, err = run("serve", "--db", f"sqlite:///{tmp_path / 'm.db'}", "--workers", "2",
                    LPM_API_KEYS="a:k")
    assert code == 1 and err.startswith("Error: several workers need PostgreSQL")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.org"])
def test_public_bind_without_keys_is_refused(tmp_path: Path, host: str) -> None:
    code, err = run("serve", "--db", f"sqlite:///{tmp_path / 'm.db'}", "--host", host)
    assert code == 1 and "without API keys" in err


@pytest.mark.parametrize(("keys", "fragment"), [
    ("acme", "tenant:key"), ("Acme:k", "tenant name"), ("a:k,b:k", "two tenants"),
    ("a b:k", "tenant name")])
def test_malformed_keys_are_refused(tmp_path: Path, keys: str, fragment: str) -> None:
    code, err = run("serve", "--db", f"sqlite:///{tmp_path / 'm.db'}", LPM_API_KEYS=keys)
    assert code == 1 and fragment in err and err.count("\n") == 1


def test_keys_file_is_read(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# tenants\nacme:k1\nbeta :k2  # second\n", encoding="utf-8")
    from langchain_persistent_memory.server.config import ServiceConfig

    config = ServiceConfig.from_env({"LPM_API_KEYS_FILE": str(keys),
                                     "LPM_DATABASE_URL": "sqlite://"})
    assert config.tenants == ["acme", "beta"]
    assert "k1" not in repr(config.keys)  # keys are held as digests only


def test_mcp_needs_a_valid_user(tmp_path: Path) -> None:
    code, err = run("mcp", "--db", f"sqlite:///{tmp_path / 'm.db'}", "--user-id", "  ")
    assert code == 1 and "user_id" in err


def test_tenant_urls_are_separate_stores() -> None:
    from langchain_persistent_memory.server import tenant_url

    assert tenant_url("sqlite:////data/memories.db", "acme") == \
        "sqlite:////data/memories.acme.db"
    assert tenant_url("sqlite:////data/memories.db", "default") == "sqlite:////data/memories.db"
    assert tenant_url("sqlite://", "acme") == "sqlite://"
    pg = "postgresql+psycopg://app@db/memories"
    assert tenant_url(pg, "acme") == f"{pg}?options=-csearch_path%3Dlpm_t_acme"
    assert tenant_url(f"{pg}?options=-csearch_path%3Dbase", "acme").endswith(
        "options=-csearch_path%3Dbase_t_acme")
