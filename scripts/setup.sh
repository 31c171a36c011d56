#!/usr/bin/env bash
# Create the virtual environment and install advbench. torch comes first, pinned to the CPU
# wheel on local disk: a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
PY=${1:-python3}
VENV=${2:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  "$VENV/bin/pip" install -q "torch==${ADVBENCH_TORCH_VERSION:-2.13.0}"
fi
"$VENV/bin/pip" install -q -e ".[test,ray]"
