# Two commands do all set-up on a fresh machine:
#   make run   - create .venv from pinned dependencies, initialise db/, serve on 127.0.0.1:8000
#   make test  - create .venv, then ruff, mypy, the rule files' own tests and the whole pytest
#                suite in three steps (quick tests on both cores, browser tests, long tests marked slow)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: browser-deps run test typecheck lint bench bench-audit install init-db clean help

help:
	@echo "make run    - set up .venv and db/, then serve on $(HOST):$(PORT)"
	@echo "make test   - set up .venv, then ruff + mypy + rules check + pytest (quick, browser, slow)"
	@echo "make bench  - engine, HTTP and CDS Hooks benchmarks (figures for the README)"
	@echo "make bench-audit - audit reads on a generated 1,000,000-decision log (AUDIT_DB)"

$(STAMP): requirements-dev.lock requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

init-db: $(STAMP)
	$(BIN)/referral-api init-db

run: init-db
	$(BIN)/referral-api serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .

# Chromium and axe-core for the browser tests (idempotent). Outside CI a machine that cannot
# install them (no root, no npm) still runs everything else: the browser tests then skip and
# say what is missing; under CI=true a missing tool fails the run.
browser-deps:
	bash scripts/install-chromium.sh || [ "$${CI:-}" != "true" ]

test: $(STAMP) browser-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/referral-api rules check
	$(BIN)/pytest -q -n 2 -m "not slow and not browser"
	$(BIN)/pytest -q -m "browser and not slow"
	$(BIN)/pytest -q -m slow

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python scripts/bench_engine.py
	$(BIN)/python scripts/bench_http.py --ceiling
	$(BIN)/python scripts/bench_cds.py
	$(BIN)/python scripts/bench_pg_chain.py
	$(BIN)/python scripts/bench_pg_http.py

# The million-decision log takes several minutes to generate; it is kept outside the repo.
AUDIT_DB ?= /tmp/referral-audit-1m.sqlite
AUDIT_COUNT ?= 1000000

$(AUDIT_DB): | $(STAMP)
	$(BIN)/python scripts/generate_log.py --count $(AUDIT_COUNT) $(AUDIT_DB)

bench-audit: $(STAMP) $(AUDIT_DB)
	$(BIN)/python scripts/bench_audit.py $(AUDIT_DB)
	$(BIN)/python scripts/bench_pg_audit.py $(AUDIT_DB)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
