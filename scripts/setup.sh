#!/usr/bin/env bash
# Create .venv and install the package with everything the tests, demo and notebooks need.
# torch's CPU build goes in first: otherwise pip resolves sentence-transformers' torch
# requirement to the multi-GB CUDA build.
set -euo pipefail
# pip warns about every missing mirror folder; keep the log readable.
quiet() { "$@" 2> >(grep -v "WARNING: Location" >&2); }
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${LPM_EXTRAS:-dev}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
quiet .venv/bin/python -m pip install -q --upgrade pip >/dev/null
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  # Override TORCH_SPEC (e.g. add your CPU wheel index) on machines without a local CPU wheel.
  quiet .venv/bin/python -m pip install -q ${TORCH_SPEC:-"torch==2.13.0"}
fi
quiet .venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
echo "setup: .venv ready (extras: ${EXTRAS})"
