# The two commands a new user needs: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[lab,dev,postgres]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/parityprobe demo

test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src probes tests bench
	$(BIN)/ruff format --check src probes tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run_overhead.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/many_scenarios.py
	$(BIN)/python bench/redact.py
	$(BIN)/python bench/yaml_load.py
	$(BIN)/python bench/vault_rotation.py

fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz

clean:
	rm -rf $(VENV) .parityprobe build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
