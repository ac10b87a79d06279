# Two commands do everything on a fresh machine: `make run` and `make test`.
PORT ?= 7071
# make run REGIONS=2: the registry in two regions (PORT, PORT+1) on one Azurite, replicating (docs/replication.md).
REGIONS ?= 1
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# checkov and pycep-parser live in their own venv: their dependencies clash with the app's pins.
TOOLS := .venv-tools

.PHONY: setup run test test-all lint bench conformance mutation clean

setup: $(VENV)/.installed node_modules/.installed $(TOOLS)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	PORT=$(PORT) $(PY) -m scripts.run_local --port $(PORT) --regions $(REGIONS)

test: setup
	@command -v skopeo >/dev/null || { echo "skopeo is required by the end-to-end tests: apt-get install skopeo"; exit 1; }
	$(PY) -m pytest -m "not slow"

# Everything, the slow end-to-end tests included (CI runs this).
test-all: setup
	@command -v skopeo >/dev/null || { echo "skopeo is required by the end-to-end tests: apt-get install skopeo"; exit 1; }
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) -m bench.run
	$(PY) -m bench.replication_copy
	$(PY) -m bench.replication_lag

# Both OCI conformance suites (prebuilt, outside the repository: OCI_CONFORMANCE_DIR) against a fresh registry,
# then against the home region of a two-region registry.
conformance: setup
	$(PY) -m scripts.conformance
	$(PY) -m scripts.conformance --replicated

# Mutation testing (mutmut) of the security- and integrity-critical modules, each against the tests
# that exercise it; prints the surviving mutants. MODULES="shared/auth/permissions.py" for some.
mutation: setup
	$(PY) -m scripts.mutation $(MODULES)

clean:
	rm -rf $(VENV) $(TOOLS) node_modules .azurite .pytest_cache .mypy_cache .ruff_cache .mutation .import_linter_cache
