# The two commands: `make run` (serve on the embedded PostgreSQL) and `make test` (whole suite,
# two pytest-xdist workers, each with its own database).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.iiot-installed
DEV_STAMP := $(VENV)/.iiot-dev-installed
# The ThingsBoard device SDK and IoT Gateway (MQTT tests) pin their own paho fork and pymodbus:
# they get a virtual environment of their own.
TB_VENV := .venv-tb
TB_STAMP := $(TB_VENV)/.installed
TB_PACKAGES := tb-mqtt-client==1.13.13 thingsboard-gateway==3.8.5 pymodbus==3.9.2

.PHONY: run test lint migrate clean

run: $(RUN_STAMP)
	$(BIN)/iiot serve

test: $(DEV_STAMP) $(TB_STAMP)
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

$(TB_STAMP):
	$(PYTHON) -m venv $(TB_VENV)
	$(TB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TB_VENV)/bin/python -m pip install --quiet $(TB_PACKAGES)
	touch $@

clean:
	rm -rf $(VENV) $(TB_VENV) .pytest_cache .ruff_cache .mypy_cache
