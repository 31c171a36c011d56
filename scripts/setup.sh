#!/usr/bin/env bash
# Create the virtual environment and install advbench. torch comes first, pinned: a bare `torch`
# requirement would pull a multi-GB CUDA build. Where pip's find-links hold the CPU wheel of the
# pinned version (this project's machines: /opt/wheels), that wheel is the one installed.
# uv (from PyPI) installs in seconds what pip takes a minute or more for; pip is the fallback.
set -euo pipefail
PY=${1:-python3}
VENV=${2:-.venv}
TORCH_VERSION=${ADVBENCH_TORCH_VERSION:-2.13.0}
EXTRAS=".[test,ray,docs]"  # docs: mkdocs for `make docs`, also built by `make test`
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
FIND_LINKS=${PIP_FIND_LINKS:-$("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true)}
TORCH="torch==$TORCH_VERSION"
if [ -n "$FIND_LINKS" ] && ls "$FIND_LINKS"/torch-"$TORCH_VERSION"+cpu-*.whl >/dev/null 2>&1; then
  TORCH="torch==$TORCH_VERSION+cpu"
fi
NEED_TORCH=()
"$VENV/bin/python" -c "import torch" >/dev/null 2>&1 || NEED_TORCH=("$TORCH")
if "$VENV/bin/python" -m pip install -q uv >/dev/null 2>&1; then
  # --compile-bytecode: as pip does; where PYTHONDONTWRITEBYTECODE is set (this project's machines),
  # every process would otherwise compile torch from source again (+1.7 s per CLI call).
  UV=("$VENV/bin/uv" pip install -q --compile-bytecode --python "$VENV/bin/python")
  [ -n "$FIND_LINKS" ] && UV+=(--find-links "$FIND_LINKS")
  "${UV[@]}" "${NEED_TORCH[@]}" -e "$EXTRAS" && exit 0
  echo "uv could not install advbench; trying pip" >&2
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
[ ${#NEED_TORCH[@]} -eq 0 ] || "$VENV/bin/pip" install -q "${NEED_TORCH[@]}"
"$VENV/bin/pip" install -q -e "$EXTRAS"
