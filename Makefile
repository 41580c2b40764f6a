# Two commands for a newcomer: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ACME := $(BIN)/acme
DEMO_ORDERS ?= 3000
DEMO_CONCURRENCY ?= 4
# Test workers: one per core, at most 4. Each runs its own two servers; the suite's time is
# mostly one Python process at a time (dbt), so a second worker keeps the second core busy.
TEST_WORKERS ?= auto

.PHONY: venv system-packages demo test compose-test torture bench bench-quick docs down status clean

$(BIN)/acme: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(BIN)/acme

venv: $(BIN)/acme

demo: venv
	ACME_DEMO_ORDERS=$(DEMO_ORDERS) ACME_DEMO_CONCURRENCY=$(DEMO_CONCURRENCY) $(BIN)/python -m cli demo

# Chromium (the docs site test), docker-compose (the deployment test) and Prometheus (the alerts
# test), from Debian.
system-packages:
	./scripts/install-system-packages.sh

test: venv system-packages
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint --processes 0 dbt_project sql
	$(BIN)/pytest --numprocesses $(TEST_WORKERS) --maxprocesses 4 --dist worksteal --durations 15

# The docker-compose deployment for real: its images built offline (deploy/offline/), the
# stack up under podman, orders written, the four CSVs checked, a restart, down. As root.
compose-test: venv
	./scripts/install-system-packages.sh compose
	ACME_COMPOSE_TEST=1 $(BIN)/pytest --durations 0 tests/compose

# The benchmark suite (bench/README.md): full size, about 12 minutes; results in bench/results/.
bench: venv
	$(BIN)/python -m bench

# The same benchmarks at a small size, to keep them working; their figures mean little.
# make test runs it too (tests/test_bench_quick.py), beside the other tests.
bench-quick: venv
	$(BIN)/python -m bench --quick

# Generates dbt's docs site for the local warehouse and serves it on http://127.0.0.1:8080.
docs: venv
	$(ACME) local up
	$(ACME) docs serve

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
