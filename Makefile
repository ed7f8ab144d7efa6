# The two commands: `make run` (serve on the embedded PostgreSQL) and `make test` (whole suite,
# two pytest-xdist workers, each with its own database).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.iiot-installed
DEV_STAMP := $(VENV)/.iiot-dev-installed

.PHONY: run test lint migrate clean

run: $(RUN_STAMP)
	$(BIN)/iiot serve

test: $(DEV_STAMP)
	$(BIN)/pytest -q -n 2

lint: $(DEV_STAMP)
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy

migrate: $(RUN_STAMP)
	$(BIN)/iiot db upgrade

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "iiot needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
