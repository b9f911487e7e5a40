# The two commands of the README. Both create ./.venv and install everything driftwatch needs
# from pyproject.toml, so they work on a fresh machine with only python3 (>= 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast test-slow install install-dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

demo: install
	$(BIN)/driftwatch demo

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Both tiers: the fast one (library, in-memory use case, CLI; a few minutes) first, then the
# slow one (real Prefect API and servers, MLflow server, daemon subprocesses) on two workers, a
# test file per worker: its tests spend most of their time waiting on servers and subprocesses.
SLOW := -m slow -n 2 --dist loadfile
test: lint
	$(BIN)/pytest -q -m "not slow"
	$(BIN)/pytest -q $(SLOW)

test-fast: install-dev
	$(BIN)/pytest -q -m "not slow"

test-slow: install-dev
	$(BIN)/pytest -q $(SLOW)

bench: install-dev
	$(BIN)/python benchmarks/drift_speed.py

clean:
	rm -rf $(VENV) state .pytest_cache .ruff_cache
