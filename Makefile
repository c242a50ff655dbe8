# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint format install compare bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

install: $(VENV)/.installed

# the workplace's copies of the official weights, when present, stand in for downloads
DEMO_ARGS ?= $(if $(wildcard ../shared/weights),--source ../shared/weights)

demo: install
	$(BIN)/mnet demo $(DEMO_ARGS)

compare: install
	$(BIN)/mnet compare

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/backbone_latency.py
