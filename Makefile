# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install lint typecheck unit integration e2e bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start Clarion on SQLite at http://127.0.0.1:8000 (API + worker + scheduler in one process).
run: install
	$(BIN)/clarion serve

## Lint, type-check, check the layering, and run every test (unit, integration, e2e).
# The suite on one process per core (at most 4): every test makes its own database and ports.
test: install lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider --numprocesses=auto --maxprocesses=4

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q -m unit
integration: install
	$(BIN)/pytest -q -m integration
e2e: install
	$(BIN)/pytest -q -m e2e

## Benchmarks (not part of the tests): see docs/benchmarks.md.
bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
