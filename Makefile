# Two commands for a newcomer: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ACME := $(BIN)/acme
DEMO_ORDERS ?= 3000
DEMO_CONCURRENCY ?= 4

.PHONY: venv demo test torture lint down status clean

$(BIN)/acme: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(BIN)/acme

venv: $(BIN)/acme

demo: venv
	ACME_DEMO_ORDERS=$(DEMO_ORDERS) ACME_DEMO_CONCURRENCY=$(DEMO_CONCURRENCY) $(BIN)/python -m cli demo

test: venv
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint dbt_project sql
	$(BIN)/pytest

# The concurrency, crash and restart tests at full size (more pgbench seeds and clients,
# longer runs, more SIGKILLs and restart rounds); `make test` runs them small.
torture: venv
	ACME_TORTURE_SCALE=full $(BIN)/pytest -s --durations=0 tests/test_torture.py tests/test_crash.py tests/test_restarts.py

down: venv
	$(ACME) local down

status: venv
	$(ACME) local status

clean: down
	rm -rf .acme data-exports
