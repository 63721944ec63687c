# Two commands set up and use a fresh clone: `make plan` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: plan test lint image bench drill clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

## plan: the offline plan of both stacks from their stack files (no cloud account needed)
plan: $(STAMP)
	$(BIN)/python -m tools.plan prod dr

## test: the whole test suite (starts its own PostgreSQL and GCS emulator where needed), on two workers;
## --dist loadfile keeps each test file on one worker, with its own servers, so a test that checks what its
## commands leave behind never sees another file's work; --no-loadscope-reorder hands out the files in the order
## tests/conftest.py gives them, the slowest first, so both workers finish together. The suite starts hundreds of
## Python processes: with PYTHONDONTWRITEBYTECODE set, each would compile the project's modules again and each
## worker would rewrite every test module's asserts again, so it is unset here (git ignores __pycache__)
test: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

## test-sdk-newest: the tests that go through the offline plan (tests/program, config, tools, core, components)
## against the newest pulumi and pulumi-policy that requirements.txt allows, in a venv of their own (inside .venv:
## git ignores it, `make clean` removes it). CI runs it after `make test`, so an SDK release that breaks
## components/pulumi_internals.py fails there before anyone upgrades. Run as `test` is (the slowest files first,
## compiled modules kept). 4 min 40 s on 2 cores from a fresh venv (1 min 15 s
## of it installing from pip's cache), 8 min with the cores shared.
SDK_NEWEST := $(VENV)/sdk-newest
.PHONY: test-sdk-newest

$(SDK_NEWEST)/.installed: requirements.txt
	$(PYTHON) -m venv $(SDK_NEWEST)
	$(SDK_NEWEST)/bin/pip install --quiet --upgrade pip
	$(SDK_NEWEST)/bin/pip install --quiet -r requirements.txt
	touch $@

test-sdk-newest: $(SDK_NEWEST)/.installed
	$(SDK_NEWEST)/bin/pip install --quiet --upgrade $$(grep -E '^pulumi(-policy)?[<>=~!]' requirements.txt)
	$(SDK_NEWEST)/bin/pip check
	$(SDK_NEWEST)/bin/pip list 2>/dev/null | grep -iE '^pulumi([-_]policy)? '
	env -u PYTHONDONTWRITEBYTECODE $(SDK_NEWEST)/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder \
		tests/program tests/config tests/tools tests/core tests/components

## image: the site's Artifact Registry repository (a targeted pulumi up) and the backup image built from
## backup_job/Dockerfile and pushed there, before the first full `pulumi up` (Pulumi CLI, docker, credentials)
STACK ?= prod
image: $(STAMP)
	$(BIN)/python -m tools.image $(STACK) --yes

## lint: ruff (0 findings) and mypy against the provider SDKs' types (0 errors)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

$(VENV)/.bench-installed: $(STAMP) bench/requirements.txt
	$(BIN)/pip install --quiet -r bench/requirements.txt
	touch $@

## bench: the backup job beside its peers (barman, smart_open, a plain loop) and the floors, on two datasets, all measured in the same run
## It takes hours: stopped, `make bench` again continues after the last finished run of every tool (--resume).
## Its record is BENCH_RECORD, kept in the repository so that a run continues on a new checkout: commit it when
## you stop. Refused, exit 2, once backup_job/ or bench/ changed: remove it to start again.
BENCH_RECORD ?= docs/bench-run.json
bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench --datasets random,app --sizes-mb 200,600,2000 --repeat 3 --resume $(BENCH_RECORD)

## drill: the recovery drill with a database of 1.2 GB (4 min 30 s on 2 idle cores on 2026-11-29, 7 min with the
## cores shared), then the regional outage again in real time (--time-scale 1: the uptime checks, the alert's
## duration and the TTLs at their plan length; 4 min 30 s on 2026-12-02); root, iproute2, knot, postgresql-15. Each
## files its record (Markdown and JSON, chained to the newest one) in docs/drills/: commit them;
## `python -m tools.drill verify` checks the chain. `python -m tools.drill` is the small one (about 60 s on 2 idle cores).
drill: $(STAMP)
	$(BIN)/python -m tools.drill --size-mb 1200 --record docs/drills
	$(BIN)/python -m tools.drill --scenario regional-outage --time-scale 1 --record docs/drills

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
