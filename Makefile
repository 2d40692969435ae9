# wlsync: every target creates and uses the local virtualenv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv migrate functions test test-all lint demo clean bench bench-quick

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

# Apply migrations (and install sql/functions) to $$WLSYNC_SOURCE, else the PG* database.
migrate: venv
	$(PY) wlsync_migrate.py migrate

# Development: re-install every sql/functions file without a migration.
functions: venv
	$(PY) wlsync_migrate.py functions

# Two pytest-xdist workers; tests of one xdist_group run on the same worker, one
# after another (the soaks and the benchmark smoke, the throwaway cluster's crashes).
# TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

test: venv
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-all: venv
	$(PY) -m pytest -m ''

# ruff over the Python, squawk over the migrations (.squawk.toml), plpgsql_check over
# every function of schema wlsync in a scratch database (tests/lint_sql.py).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/squawk migrations/*.sql
	$(PY) -m tests.lint_sql

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

# The main job end to end on the embedded default (SQLite as WL).
demo: venv
	$(PY) demo/run_demo.py

# The benchmark (bench/bench.py): the full run takes 15-20 minutes on 2 cores and
# rewrites bench/RESULTS.md; BENCH_QUICK=1 (or make bench-quick) is a smoke run of
# under 3 minutes that leaves RESULTS.md alone. Raw output: bench/out/.
bench: venv
	$(PY) bench/bench.py

bench-quick: venv
	BENCH_QUICK=1 $(PY) bench/bench.py
