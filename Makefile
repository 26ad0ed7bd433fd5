# Jalon — the two commands are `make demo` and `make test`; `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install system peers demo serve test test-citus bench-citus test-pgbouncer bench-pgbouncer test-fast test-browser lint format i18n bench load worker migrate clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install Jalon with its development tools

# The demo signs its SSO organization in through the development identity provider
# (api/dev_idp.py) unless JALON_DEV_IDP says otherwise, and only on a loopback HOST; its
# admins verify reserved demo domains (.test, .example) without DNS (ignored in production).
DEMO_DEV_IDP := $(if $(filter 127.0.0.1 localhost ::1,$(HOST)),true,false)
# Development mode is asked for, never fallen into (JALON_ENV defaults to production): the demo,
# the benchmarks and the load test ask for it; `jalon serve` then listens on loopback only.
DEMO_ENV = JALON_ENV=development JALON_DEV_IDP=$${JALON_DEV_IDP:-$(DEMO_DEV_IDP)} JALON_DNS_RESOLVER=$${JALON_DNS_RESOLVER:-development}
bench bench-citus bench-pgbouncer load: export JALON_ENV := $(or $(JALON_ENV),development)

demo: install ## Serve Jalon with demo data on http://127.0.0.1:8000 (embedded PostgreSQL by default)
	$(DEMO_ENV) $(BIN)/jalon migrate
	$(DEMO_ENV) $(BIN)/jalon demo
	$(DEMO_ENV) $(BIN)/jalon serve --host $(HOST) --port $(PORT)

serve: install ## Serve without seeding demo data
	$(BIN)/jalon serve --host $(HOST) --port $(PORT)

migrate: install ## Apply database migrations
	$(BIN)/jalon migrate

worker: install ## Run a background job worker (needs REDIS_URL)
	$(BIN)/jalon worker

system: ## Install the Debian packages the tests drive: Chromium, xmlsec1, poppler-utils, Pango (as root)
	@bash scripts/install-system.sh

peers: ## Install the test peers from the npm registry (the OpenID provider, axe-core for the accessibility audit), from their lock files
	@for dir in tests/peers/*/; do \
	  if [ -f "$$dir/package-lock.json" ]; then npm ci --silent --no-audit --no-fund --prefix "$$dir"; fi; \
	done

test: install system peers ## Run the whole test suite against real PostgreSQL (and Redis when REDIS_URL is set)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-citus: install system peers ## Run the whole suite on a local Citus cluster (coordinator and two workers; needs Citus installed)
	@bash scripts/citus-cluster.sh start
	@status=0; \
	DATABASE_URL=$$(bash scripts/citus-cluster.sh url) \
	JALON_TEST_CITUS_WORKERS=$$(bash scripts/citus-cluster.sh workers) \
	$(BIN)/python -m pytest $(PYTEST_ARGS) || status=$$?; \
	bash scripts/citus-cluster.sh stop; exit $$status

# PgBouncer in transaction mode (scripts/pgbouncer.sh: our own instance on 127.0.0.1:6440) in
# front of DATABASE_URL's server, which must be 127.0.0.1:5432 with trust authentication: the
# runtime role's pool goes through it, the owner (CREATE DATABASE, migrations) goes direct.
PGBOUNCER_TESTS ?= tests/api/test_isolation.py tests/admin/test_admin_isolation.py tests/campaigns tests/api/test_participant.py
test-pgbouncer: install system ## The isolation, campaign and participant tests with the runtime pool through PgBouncer
	@bash scripts/pgbouncer.sh start
	@status=0; \
	JALON_TEST_RUNTIME_VIA=$$(bash scripts/pgbouncer.sh url) \
	$(BIN)/python -m pytest $(PGBOUNCER_TESTS) $(PYTEST_ARGS) || status=$$?; \
	bash scripts/pgbouncer.sh stop; exit $$status

bench-pgbouncer: install system ## The answer-cycle benchmark with the server and the ceiling through PgBouncer
	@bash scripts/pgbouncer.sh start
	@status=0; \
	JALON_BENCH_RUNTIME_VIA=$$(bash scripts/pgbouncer.sh url "$${JALON_DB_RUNTIME_ROLE:-jalon_app}") \
	$(BIN)/python -m bench.answer_bench $(BENCH_ARGS) || status=$$?; \
	bash scripts/pgbouncer.sh stop; exit $$status

test-fast: install ## Run the suite without the slow and browser groups
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

test-browser: install system peers ## Run only the headless Chromium tests
	$(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

# core.i18n compiles the .po catalogues in memory at first use: there is no .mo to build.
i18n: install ## Extract the strings and update the fr, en, nl and de catalogues; list what is left
	sh scripts/update-translations.sh

lint: install ## ruff (lint and format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## Print the engine and hot-path benchmarks (BENCH_ARGS=--quick for a short run)
	$(BIN)/python -m bench.engine_bench $(BENCH_ARGS)
	$(BIN)/python -m bench.campaign_bench $(BENCH_ARGS)
	$(BIN)/python -m bench.sso_bench $(BENCH_ARGS)
	$(BIN)/python -m bench.billing_bench $(BENCH_ARGS)
	$(BIN)/python -m bench.answer_bench $(BENCH_ARGS)

bench-citus: install ## The campaign benchmark through a local Citus coordinator and two workers (needs Citus installed)
	@bash scripts/citus-cluster.sh start
	@status=0; \
	DATABASE_URL=$$(bash scripts/citus-cluster.sh url) \
	JALON_CITUS_WORKERS=$$(bash scripts/citus-cluster.sh workers) \
	$(BIN)/python -m bench.campaign_bench $(BENCH_ARGS) || status=$$?; \
	bash scripts/citus-cluster.sh stop; exit $$status

# The peak of issue 13: 300 participants for 10 minutes beside console and API users; shorter
# with e.g. `LOAD_MINUTES=2 LOAD_PARTICIPANTS=60 make load` (options: loadtests/run.py).
load: install ## The peak: failed requests, lost answers and every process's memory, printed
	$(BIN)/python -m loadtests.run

clean: ## Remove the virtualenv and local data (the embedded database included)
	rm -rf $(VENV) var
