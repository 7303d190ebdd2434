# tabserve — every target installs what it needs into .venv first (python3, make, git suffice).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help install demo test test-unit test-integration lint fmt fuzz bench bench-grid soak clean lock image stack

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# Reinstall only when pyproject.toml or the lock changed since the last install. The lock
# (requirements.lock, pip constraints) holds the versions CI tested, for CPython 3.11 on Linux
# x86-64 as CI and the images run; another Python installs from pyproject's ranges and says so.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(if $(wildcard requirements.lock),-c requirements.lock)
	@if $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
	    echo "$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'"; \
	    $(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'; \
	else \
	    echo "note: requirements.lock is for Python 3.11; installing from pyproject's ranges"; \
	    $(BIN)/python -m pip install --quiet -e '.[dev]'; \
	fi
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install tabserve with every extra

demo: $(STAMP)  ## train Titanic, register the champion, serve it, load-test it, report drift
	$(BIN)/python -m tabserve.demo

test: $(STAMP)  ## the whole test suite (starts PostgreSQL, MLflow, moto S3 itself)
	$(BIN)/python -m pytest -q -ra --durations=15

test-unit: $(STAMP)  ## unit tests only
	$(BIN)/python -m pytest -q -ra tests/unit

test-integration: $(STAMP)  ## integration tests only
	$(BIN)/python -m pytest -q -ra tests/integration

lint: $(STAMP)  ## ruff, mypy and pip-audit (says so when it cannot reach the advisories)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/audit.py

fuzz: $(STAMP)  ## schemathesis and hypothesis at 20x the examples of make test (~1 h)
	FUZZ_EXAMPLES=20000 $(BIN)/python -m pytest -q -ra tests/integration/test_fuzz_openapi.py tests/unit/serving/test_validation_properties.py

fmt: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## side-by-side serving benchmark (installs peers under benchmarks/)
	$(BIN)/python benchmarks/serving.py --out benchmarks/results/

soak: $(STAMP)  ## 10 minutes at 70 % of one worker's capacity: RSS, errors, p99 per minute
	$(BIN)/python benchmarks/soak.py --minutes 10 --out benchmarks/results/soak/

bench-grid: $(STAMP)  ## the training grid locally vs on a local Dask cluster (~1.5 min)
	$(BIN)/python benchmarks/grid.py

lock: $(STAMP)  ## re-resolve requirements.lock from pyproject.toml (uv; UPGRADE=1 for newer versions)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" \
	    $(if $(UPGRADE),--upgrade) -o requirements.lock

image: $(STAMP)  ## build the serving and training images (a local base where no registry is reachable)
	$(BIN)/python scripts/images.py build

stack: $(STAMP)  ## the compose stack for real: build, train, serve 2 replicas, load-test, tear down
	$(BIN)/python scripts/stack.py

clean:  ## remove generated state (keeps .venv)
	rm -rf mlflow.db mlartifacts mlruns results .tabserve predictions.db* drift.html drift.json
