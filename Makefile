# The two commands: `make run` (serve on the embedded PostgreSQL) and `make test` (whole suite,
# two pytest-xdist workers, each with its own database; a worker that runs out of tests takes
# some from the other). Both build the web UI (Node 20+) when its sources changed.
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
# The web UI: sources in ui/, built into the Python package (served by `iiot serve`).
UI_BUILT := src/iiot/web/ui/index.html
UI_DEPS := ui/node_modules/.package-lock.json
UI_SOURCES := $(shell find ui/src ui/public ui/scripts -type f 2>/dev/null) \
	ui/index.html ui/vite.config.ts ui/tsconfig.json

.PHONY: run test test-ui lint migrate clean ui

run: $(RUN_STAMP) $(UI_BUILT)
	$(BIN)/iiot serve

# Bytecode is cached even where the environment turns it off (PYTHONDONTWRITEBYTECODE): every
# worker imports the application and every test module, and compiling them again each run (and
# pytest's assertion rewriting of the tests) costs each process about 5 s of CPU.
test: $(DEV_STAMP) $(TB_STAMP) $(UI_BUILT) test-ui
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -q -n 2 --dist worksteal

# Vitest unit tests of the UI (the end-to-end browser test runs in pytest: tests/web).
test-ui: $(UI_DEPS)
	cd ui && npm test

ui: $(UI_BUILT)

$(UI_DEPS): ui/package.json ui/package-lock.json
	@command -v node >/dev/null 2>&1 || { echo "the web UI needs Node 20+ and npm (not found)"; exit 1; }
	@node -e 'const v = +process.versions.node.split(".")[0]; if (v < 20) { console.error("the web UI needs Node 20+ (found " + process.version + ")"); process.exit(1); }'
	cd ui && npm ci
	touch $@

$(UI_BUILT): $(UI_DEPS) $(UI_SOURCES)
	cd ui && npm run build

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
	rm -rf $(VENV) $(TB_VENV) .pytest_cache .ruff_cache .mypy_cache ui/node_modules src/iiot/web/ui test-artifacts
