"""The service's docs stay true: the README's client example runs against a live server,
and docs/service.md names every route and every error type the server can answer."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.service import RunningService

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SERVICE_DOC = ROOT / "docs" / "service.md"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    db = tmp_path_factory.mktemp("docs") / "memories.db"
    running = RunningService(f"sqlite:///{db}", keys="acme:secret-key")
    yield running
    running.stop()


def test_readme_service_example_runs(service: RunningService) -> None:
    section = README.read_text(encoding="utf-8").split("## Run as a service\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert "lpm serve" in section and "curl" in section
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    code = code.replace("http://127.0.0.1:8080", service.base_url)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README service", "exec"), {"__name__": "readme"})
    assert out.getvalue().splitlines() == [
        "Prefers window seats", "done", "['I moved to Berlin', 'Prefers window seats']"]


def test_every_route_and_error_type_is_documented(service: RunningService) -> None:
    doc = SERVICE_DOC.read_text(encoding="utf-8")
    paths = httpx.get(f"{service.base_url}/openapi.json").json()["paths"]
    for path, methods in paths.items():
        for method in methods:
            assert f"`{method.upper()} {path.replace('{memory_id}', '{id}')}" in doc, \
                (method, path)
    source = "\n".join(p.read_text(encoding="utf-8") for p in
                       (ROOT / "langchain_persistent_memory" / "server").glob("*.py"))
    kinds = set(re.findall(r'ServiceError\(\d+, "(\w+)"', source))
    kinds |= {"MemoryNotFoundError", "InvalidInputError", "EmbeddingMismatchError"}
    assert kinds <= set(re.findall(r"`(\w+)`", doc)), kinds - set(re.findall(r"`(\w+)`", doc))
