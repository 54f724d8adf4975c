#!/usr/bin/env bash
# The project's test command: set up (idempotent), lint, then the whole test suite on
# SQLite and PostgreSQL (found at 127.0.0.1:5432 or started by the tests). Type-checks the
# package with mypy --strict (configured in pyproject.toml: py.typed is a promise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check langchain_persistent_memory tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
