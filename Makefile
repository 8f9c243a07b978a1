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

.PHONY: bootstrap system-deps demo test lint docs clean

# unixodbc gives pyodbc its libodbc.so.2; tdsodbc is FreeTDS's ODBC driver (SQL Server path only).
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in unixodbc tdsodbc; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
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

test: $(STAMP)
	$(BIN)/ruff check src flows tests
	$(BIN)/python -m pytest -q -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src flows tests
	$(BIN)/ruff format --check src flows tests

# The catalogue of the demo warehouse (run `make demo` first).
docs: $(STAMP)
	EXIGO_SYNC_PROFILES_DIR=$(CURDIR)/data/profiles $(BIN)/exigo-sync docs

clean:
	rm -rf $(VENV) .prefect data dbt_project/target dbt_project/logs .pytest_cache
