# The two commands of the README. Both are idempotent from a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint docs setup data bench

demo: setup data  ## set up, then compare cnn3, kap-cnn3 and madry-cnn-at on Fashion-MNIST (docs/suites/demo.yaml)
	bash scripts/demo.sh $(BIN)/advbench

test: setup data  ## set up, lint and type-check, build the docs (--strict), run the whole test suite, then the robustness regression gate
	bash scripts/ensure-chromium.sh
	bash scripts/lint.sh $(BIN)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python -m pytest -q -n auto --dist loadgroup --durations=15
	rm -f results/ci-gate.sqlite
	$(BIN)/advbench check --suite docs/suites/ci.yaml --baseline docs/suites/ci-baseline.json --db results/ci-gate.sqlite

lint: setup  ## ruff (lint and format check) and mypy on advbench/
	bash scripts/lint.sh $(BIN)

docs: setup  ## the documentation site, into site/ (mkdocs build --strict: a broken link or docstring fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(PY) $(VENV)
	touch $@

data:
	bash scripts/ensure-fashion-mnist.sh $(BIN)/advbench

bench: setup data
	$(BIN)/python benchmarks/gradient_attacks.py
	$(BIN)/python benchmarks/autoattack_overhead.py
	$(BIN)/python benchmarks/certify_throughput.py
