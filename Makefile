# The two commands that matter: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

.DEFAULT_GOAL := help
# Python may cache what it compiles: the project's modules in src/**/__pycache__, and pytest
# its rewritten test modules beside them (both ignored by git). An environment that sets
# PYTHONDONTWRITEBYTECODE (some container images do) would have every test process parse and
# rewrite the 18,000 lines of tests again, about 4 s each, and every server the suite starts
# compile the project again.
unexport PYTHONDONTWRITEBYTECODE
.PHONY: help install run test lint format fuzz bench profile bench-large bench-statements bench-worker clean

help:
	@echo "make run    - serve the API and worker (embedded PostgreSQL/Redis/Stripe sandbox by default)"
	@echo "make test   - run the test suite (embedded servers unless TEST_DATABASE_URL/TEST_REDIS_URL)"
	@echo "make lint   - ruff (lint + format check) and mypy --strict"
	@echo "make fuzz   - schemathesis against the OpenAPI schema"
	@echo "make bench  - load benchmark, prints the results table"
	@echo "make profile - the bench's reads and cycle with py-spy profiles of the API and worker"
	@echo "make bench-large - every list, search, write and sweep on a small and a 2M-loan library"
	@echo "make bench-statements - the API's CPU per database statement, layer by layer"
	@echo "make bench-worker - the worker's CPU per staff message and member notice, nothing else running"

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Installs exactly what uv.lock pins (dev tools included); re-runs when the lock changes.
# Compiled to bytecode once here: with PYTHONDONTWRITEBYTECODE set (as in the image), every
# Python process (the suite, and each server or worker it starts) would compile the
# dependencies again, seconds of CPU each time.
$(VENV)/.installed: $(BIN)/uv pyproject.toml uv.lock Makefile
	$(BIN)/uv sync --frozen --inexact --quiet --compile-bytecode
	@touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/library-service run

# Two test processes (pytest-xdist), each with its own database, Redis database and server
# folders (tests/servers.py); TEST_WORKERS=0 runs the suite in this one process. The tests in
# the browser all go to one of them (xdist_group "browser"), so that one Chromium serves them;
# the tests marked `waits` go one after another to one of them (group "waits", tests/conftest.py).
TEST_WORKERS ?= 2
# The many-process tests (tests/scaleout/) start a dozen processes of their own: they run
# after the rest, alone, so that their timings do not depend on what the other test process
# is doing. SCALEOUT=0 leaves them out.
SCALEOUT ?= 1

test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not scaleout"
ifneq ($(SCALEOUT),0)
	$(BIN)/pytest -n 0 tests/scaleout
endif

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/lint_migrations.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

fuzz: install
	$(BIN)/pytest tests/service/test_schema_fuzz.py -p no:randomly

bench: install
	$(BIN)/python bench/run.py

# The bench's reads and cycle at 16 concurrent, with py-spy sampling each API worker and the
# worker: raw profiles in bench/results/profiles/, the heaviest frames in the report.
profile: install
	$(BIN)/python bench/run.py --profile --scenarios books,borrowings,cycle --concurrency 16

bench-large: install
	$(BIN)/python bench/large.py

bench-statements: install
	$(BIN)/python bench/statements.py

bench-worker: install
	$(BIN)/python bench/worker.py

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
