# Two commands set up and use a fresh clone: `make plan` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: plan test lint bench clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

## plan: the offline plan of both stacks from their stack files (no cloud account needed)
plan: $(STAMP)
	$(BIN)/python -m tools.plan prod dr

## test: the whole test suite (starts its own PostgreSQL and GCS emulator where needed)
test: $(STAMP)
	$(BIN)/python -m pytest

## lint: ruff (0 findings) and mypy against the provider SDKs' types (0 errors)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

$(VENV)/.bench-installed: $(STAMP) bench/requirements.txt
	$(BIN)/pip install --quiet -r bench/requirements.txt
	touch $@

## bench: the backup job beside its peers (barman, smart_open, a plain loop) and the floors, all measured in the same run
bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench --sizes-mb 200,600 --repeat 3

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
