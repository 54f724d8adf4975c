#!/usr/bin/env bash
# Command one: set up, then run the demo on the embedded default (SQLite + FAISS + local
# embeddings; no API key, no server). Two processes: the second proves persistence.
set -euo pipefail
cd "$(dirname "$0")/.."
LPM_EXTRAS=${LPM_EXTRAS:-local,cli} bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
DB=${LPM_DEMO_DB:-demo_data/memories.db}
rm -rf "$(dirname "$DB")"
.venv/bin/python examples/demo.py remember --db "$DB"
.venv/bin/python examples/demo.py recall --db "$DB"
