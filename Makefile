# exigo-sync: every target bootstraps what it needs from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: bootstrap system-deps demo test test-slow test-all lint docs clean

# unixodbc gives pyodbc its libodbc.so.2; tdsodbc is FreeTDS's ODBC driver (SQL Server path only);
# chromium is the headless browser of the docs-site test (tests/docs).
SYSTEM_PACKAGES := unixodbc tdsodbc chromium
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(SYSTEM_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	  done; \
	  if [ -n "$$missing" ]; then echo "installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@$(MAKE) --no-print-directory system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

bootstrap: $(STAMP)

demo: $(STAMP)
	$(BIN)/exigo-sync demo

# `make test`: everything but the tests marked slow (13–18 minutes on 2 cores in the last runs,
# as fast as the machine was; the target is 15: see the slowest tests it prints; longest files first, in the order
# tests/conftest.py sets, hence --no-loadscope-reorder);
# `make test-slow`: those (the long T1 oracles, both topologies); `make test-all`: both.
test: $(STAMP)
	$(BIN)/ruff check src flows tests
	PYTHONPATH=src $(BIN)/lint-imports
	$(BIN)/deptry src
	$(BIN)/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder -m "not slow" --durations=25

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder -m slow

test-all: $(STAMP)
	$(BIN)/ruff check src flows tests
	$(BIN)/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder

# ruff; the import layers (a new circle or an upward import fails: pyproject [tool.importlinter]);
# declared dependencies against imports (deptry).
lint: $(STAMP)
	$(BIN)/ruff check src flows tests
	$(BIN)/ruff format --check src flows tests
	PYTHONPATH=src $(BIN)/lint-imports
	$(BIN)/deptry src

# The catalogue of the demo warehouse as a static site (run `make demo` first; serve it with
# `.venv/bin/exigo-sync docs --serve`).
# The demo's paths are absolute here: dbt runs in dbt_project/, where the profile's relative
# defaults (data/warehouse.duckdb) name no file.
docs: $(STAMP)
	EXIGO_SYNC_PROFILES_DIR=$(CURDIR)/data/profiles \
	  EXIGO_SYNC_WAREHOUSE_PATH=$(CURDIR)/data/warehouse.duckdb \
	  EXIGO_SYNC_SOURCE_PATH=$(CURDIR)/data/exigo_source.duckdb $(BIN)/exigo-sync docs

clean:
	rm -rf $(VENV) .prefect data dbt_project/target dbt_project/logs .pytest_cache

# --- SQL Server sandbox (deploy/sqlserver/README.md) ------------------------------------------
# Needs Docker with Compose v2. Passwords come from EXIGO_SYNC_SANDBOX_SA_PASSWORD,
# EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD and EXIGO_SYNC_SANDBOX_WAREHOUSE_PASSWORD (never defaulted,
# never echoed: recipes name the variables, the shell expands them); the port from
# EXIGO_SYNC_SANDBOX_PORT (1433), bound to 127.0.0.1 only.
.PHONY: sqlserver-docker sqlserver-sql sqlserver-up sqlserver-load test-sqlserver sqlserver-down

SQLSERVER_COMPOSE := docker compose -f deploy/sqlserver/compose.yaml
SQLSERVER_SQLCMD := $(SQLSERVER_COMPOSE) exec -T sqlserver sh /exigo-sync/sqlcmd.sh
SQLSERVER_PORT := $(or $(EXIGO_SYNC_SANDBOX_PORT),1433)
SQLSERVER_SIMULATOR ?= data/exigo_source.duckdb
SQLSERVER_CUSTOMERS ?= 2000
SQLSERVER_LOAD_ARGS ?=
# The host's ODBC driver: Microsoft's ODBC Driver 18 when installed, else FreeTDS (tdsodbc, which
# `make bootstrap` installs when run as root).
SQLSERVER_DRIVER ?= $(shell odbcinst -q -d 2>/dev/null | grep -qx '\[ODBC Driver 18 for SQL Server\]' && echo 'ODBC Driver 18 for SQL Server' || echo FreeTDS)
# Who the live tests connect as: the least-privilege warehouse login, in the warehouse database
# (the connection, ledger and lock tests); the tests that build databases of their own (the
# flow, the landing, the sandbox's scratch copies) connect as sa (EXIGO_SYNC_TEST_MSSQL_ADMIN_*).
SQLSERVER_TEST_USER ?= exigo_sync_warehouse
SQLSERVER_TEST_DATABASE ?= ExigoWarehouse
# TDSVER: FreeTDS must speak TDS 7.3+ for the date/time types (dbt-sqlserver has no key for it;
# Microsoft's driver ignores the variable).
SQLSERVER_HOST_ENV = EXIGO_SYNC_TEST_MSSQL_SERVER=127.0.0.1 EXIGO_SYNC_TEST_MSSQL_PORT=$(SQLSERVER_PORT) \
	EXIGO_SYNC_TEST_MSSQL_DRIVER="$(SQLSERVER_DRIVER)" EXIGO_SYNC_TEST_MSSQL_TRUST_CERT=yes TDSVER=7.4

# Stops with one line when the variables named in $(1) are not all set.
define sqlserver-require
@for v in $(1); do [ -n "$${!v}" ] || { echo "error: set $$v (see deploy/sqlserver/README.md)" >&2; exit 1; }; done
endef

# Every sandbox target needs Docker: one clear line, then stop, when `docker info` fails.
sqlserver-docker:
	$(if $(shell docker info >/dev/null 2>&1 && echo ok),,$(error Docker is not available ('docker info' failed): the SQL Server sandbox needs Docker with a running daemon))
	$(if $(shell docker compose version >/dev/null 2>&1 && echo ok),,$(error 'docker compose' is not available: the SQL Server sandbox needs Docker Compose v2))

# Regenerate deploy/sqlserver/sql/*.sql from the catalogue (a test fails while they differ).
sqlserver-sql: $(STAMP)
	$(BIN)/python deploy/sqlserver/generate_sql.py

# SQL Server 2022 up and healthy, then the sync database, queue.Refresh, the warehouse database and
# the logins (idempotent: run it again at will).
sqlserver-up: sqlserver-docker
	$(call sqlserver-require,EXIGO_SYNC_SANDBOX_SA_PASSWORD EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD EXIGO_SYNC_SANDBOX_WAREHOUSE_PASSWORD)
	$(SQLSERVER_COMPOSE) up --detach --wait
	@for f in $(sort $(notdir $(wildcard deploy/sqlserver/sql/*.sql))); do \
	  echo "sqlcmd -i sql/$$f"; $(SQLSERVER_SQLCMD) -i /exigo-sync/sql/$$f || exit 1; \
	done
	@echo "SQL Server sandbox ready on 127.0.0.1:$(SQLSERVER_PORT) (ExigoSync, ExigoWarehouse; logins exigo_sync_source, exigo_sync_warehouse)"

# Fill ExigoSync.dbo from the simulator file (created if missing); run again after
# `exigo-sync simulate advance` to apply the changes. Extra options: SQLSERVER_LOAD_ARGS=--full.
sqlserver-load: sqlserver-docker $(STAMP)
	$(call sqlserver-require,EXIGO_SYNC_SANDBOX_SA_PASSWORD)
	@test -f $(SQLSERVER_SIMULATOR) || { mkdir -p $(dir $(SQLSERVER_SIMULATOR)) && \
	  $(BIN)/exigo-sync simulate create $(SQLSERVER_SIMULATOR) --customers $(SQLSERVER_CUSTOMERS); }
	$(SQLSERVER_HOST_ENV) EXIGO_SYNC_TEST_MSSQL_USER=sa EXIGO_SYNC_TEST_MSSQL_PASSWORD="$$EXIGO_SYNC_SANDBOX_SA_PASSWORD" \
	  $(BIN)/python deploy/sqlserver/load_simulator.py $(SQLSERVER_SIMULATOR) $(SQLSERVER_LOAD_ARGS)

# The live test suite (pytest -m sqlserver: tests/sqlserver, the SQL Server side of the engine
# fixture in tests/warehouse, tests/source) against the sandbox, each test with the login it needs
# (SQLSERVER_TEST_USER, and sa for the tests that create databases).
test-sqlserver: sqlserver-docker $(STAMP)
	$(call sqlserver-require,EXIGO_SYNC_SANDBOX_SA_PASSWORD EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD EXIGO_SYNC_SANDBOX_WAREHOUSE_PASSWORD)
	$(SQLSERVER_HOST_ENV) EXIGO_SYNC_TEST_MSSQL_USER=$(SQLSERVER_TEST_USER) \
	  EXIGO_SYNC_TEST_MSSQL_DATABASE=$(SQLSERVER_TEST_DATABASE) \
	  EXIGO_SYNC_TEST_MSSQL_PASSWORD="$$(case $(SQLSERVER_TEST_USER) in \
	    sa) printf %s "$$EXIGO_SYNC_SANDBOX_SA_PASSWORD";; \
	    exigo_sync_source) printf %s "$$EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD";; \
	    *) printf %s "$$EXIGO_SYNC_SANDBOX_WAREHOUSE_PASSWORD";; esac)" \
	  EXIGO_SYNC_TEST_MSSQL_ADMIN_USER=sa EXIGO_SYNC_TEST_MSSQL_ADMIN_PASSWORD="$$EXIGO_SYNC_SANDBOX_SA_PASSWORD" \
	  $(BIN)/python -m pytest -q -m sqlserver tests/sqlserver tests/warehouse tests/source

# Stop the sandbox and delete its data volume (compose needs the password variables set to read
# the file; for `down` their values do not matter).
sqlserver-down: sqlserver-docker
	EXIGO_SYNC_SANDBOX_SA_PASSWORD="$${EXIGO_SYNC_SANDBOX_SA_PASSWORD:-unused}" \
	EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD="$${EXIGO_SYNC_SANDBOX_SOURCE_PASSWORD:-unused}" \
	EXIGO_SYNC_SANDBOX_WAREHOUSE_PASSWORD="$${EXIGO_SYNC_SANDBOX_WAREHOUSE_PASSWORD:-unused}" \
	  $(SQLSERVER_COMPOSE) down --volumes

# --- Benchmarks (not part of `make test`) -----------------------------------------------------
# BENCHMARKS.md: a batch against history size, the hand-written floor, a full-table dbt snapshot,
# a no-change batch, the initial load, the simulator (bench/__init__.py). Full sizes take about
# 70 minutes on 2 cores and about 60 GB of disk: everything built is cached under bench/.work/
# (the 10M-history warehouses and their batches), so a rerun resumes.
# Smaller sizes write bench/.work/BENCHMARKS-<sizes>.md: `make bench BENCH_SIZES=small`.
# One figure again: `make bench BENCH_ARGS='--only batch/h10M/k100k --rerun'`.
BENCH_SIZES ?= full
BENCH_ARGS ?=
.PHONY: bench
bench: $(STAMP)
	@# The floor is a floor only if it writes what exigo-sync writes: proven before measuring.
	$(BIN)/python -m pytest -q -m slow tests/bench/test_bench_harness.py -k floor
	$(BIN)/python -m bench run --sizes $(BENCH_SIZES) $(BENCH_ARGS)
