# tabserve — every target installs what it needs into .venv first (python3, make, git suffice).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help install demo test test-unit test-integration lint fmt fuzz bench bench-grid soak clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install tabserve with every extra

demo: $(STAMP)  ## train Titanic, register the champion, serve it, load-test it, report drift
	$(BIN)/python -m tabserve.demo

test: $(STAMP)  ## the whole test suite (starts PostgreSQL, MLflow, moto S3 itself)
	$(BIN)/python -m pytest -q -ra

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

clean:  ## remove generated state (keeps .venv)
	rm -rf mlflow.db mlartifacts mlruns results .tabserve predictions.db* drift.html drift.json
