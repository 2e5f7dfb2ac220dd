# packline: `make demo` brings up the whole system, `make test` runs every test.
# Both create .venv and install system packages when missing; a second run is fast.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := packline edge drivers sync central web

.PHONY: demo test lint format bench setup system-deps clean

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=24'
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/packline demo $(DEMO_ARGS)

# Two pytest-xdist workers: most of the suite waits on brokers, processes and browsers,
# so two at once nearly halve it on a 2-core machine. Every test is safe beside another:
# its own broker port, SQLite file, PostgreSQL schema, and a database per worker
# (tests/support/central.py). TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check $(PACKAGES) tests bench
	$(BIN)/ruff format --check $(PACKAGES) tests bench
	$(BIN)/mypy --strict $(PACKAGES)

format: setup
	$(BIN)/ruff check --fix $(PACKAGES) tests bench
	$(BIN)/ruff format $(PACKAGES) tests bench

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
