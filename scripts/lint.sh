#!/usr/bin/env bash
# Static checks of the package: ruff's lint rules, ruff's formatting (checked, never applied) and
# mypy, all configured in pyproject.toml. Arg 1: the bin directory holding ruff and mypy
# (default: the repository's .venv/bin). Every check runs; the exit status is 1 when any failed.
set -uo pipefail
if [ $# -ge 1 ]; then
  BIN=$(cd "$1" && pwd) || { echo "lint.sh: no directory $1" >&2; exit 2; }
fi
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/.venv/bin}
status=0
run() {
  echo "+ $*" >&2
  "$@" || status=1
}
run "$BIN/ruff" check advbench
run "$BIN/ruff" format --check advbench
run "$BIN/mypy" advbench
exit $status
