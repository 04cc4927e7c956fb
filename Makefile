# K2: the two commands are `make run` and `make test`; both set up what they need, idempotently.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.k2-installed
JVM_STAMP := jvm/lib/.k2-fetched
SOURCE ?= live
PYTEST_ARGS ?=
# `make docs` serves the site here; the API's own default port is 8000.
DOCS_PORT ?= 8001
# Material prints a notice about its successor on every build; the build output stays readable.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs
# Debian packages some tests drive as a person would: a real Prometheus (promtool and server) and
# a real browser; the HTTP load generator the API benchmark drives; and the PostgreSQL server of
# the local cluster (`k2 stack up --cluster`). Installed by `make test` and `make bench` when
# missing (as root, or through sudo).
SYSTEM_PACKAGES := prometheus chromium chromium-driver hey postgresql
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help run stop test lint format docs bench venv jvm sysdeps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

venv: $(VENV_STAMP)  ## virtualenv with the pinned Python packages
$(VENV_STAMP): pyproject.toml requirements.lock
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11+ is needed (found $$($(PY) --version)); install it or run make PY=python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing Python packages into $(VENV) (first run only)..."
	@$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]' > $(VENV)/pip.log 2>&1 || { tail -n 5 $(VENV)/pip.log; echo "error: pip could not install the pinned packages (see $(VENV)/pip.log); check access to PyPI"; exit 1; }
	@touch $@

jvm: $(JVM_STAMP)  ## JVM artifacts (Kafka, registry, Spark connectors, Iceberg) via Maven
$(JVM_STAMP): jvm/pom.xml
	@command -v mvn >/dev/null || { echo "error: Maven (mvn) not found; install it (apt-get install maven)"; exit 1; }
	@echo "fetching JVM artifacts with Maven into jvm/lib (first run only)..."
	@mvn -q -B -f jvm/pom.xml package > jvm/mvn.log 2>&1 || { grep -m1 ERROR jvm/mvn.log; echo "error: Maven could not fetch the JVM artifacts (see jvm/mvn.log); check access to Maven Central or ~/.m2/settings.xml"; exit 1; }
	@touch $@

sysdeps:  ## Debian packages the tests use (Prometheus, Chromium, PostgreSQL), installed when missing
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for the tests (first run only): "$$missing; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { $(SUDO) apt-get install -y -q --no-install-recommends $$missing || \
	    { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends $$missing; }; \
	  } > apt.log 2>&1 || { tail -n 5 apt.log; echo "error: apt-get could not install $$missing (see apt.log); install them, or run make test as root"; exit 1; }; \
	fi

run: venv jvm  ## run the pipeline until Ctrl-C: stack, ingests, Bronze (SOURCE=simulator: local exchanges)
	@$(BIN)/k2 run $(if $(SOURCE),--source $(SOURCE))

stop: venv  ## stop the embedded stack (data stays in K2_HOME, default ./.k2)
	@$(BIN)/k2 stack down

lint: venv  ## ruff (lint + format check), mypy --strict, the layer contracts (import-linter), the docs site
	@$(BIN)/ruff check src tests bench docs
	@$(BIN)/ruff format --check src tests bench docs
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-logo
	@$(MKDOCS) build --strict

format: venv  ## apply ruff's fixes and formatting
	@$(BIN)/ruff check --fix src tests bench docs
	@$(BIN)/ruff format src tests bench docs

docs: venv  ## serve the docs site on 127.0.0.1:8001 (DOCS_PORT), rebuilt as docs/ or src/ change
	@$(MKDOCS) serve --dev-addr 127.0.0.1:$(DOCS_PORT)

test: venv jvm sysdeps lint  ## lint, then every test (unit, integration against real services, e2e)
	@$(BIN)/pytest $(PYTEST_ARGS)

bench: venv jvm sysdeps  ## benchmarks: print figures and write bench/results/*.json
	@$(BIN)/python -m bench $(BENCH_ARGS)

clean:  ## remove the virtualenv and fetched JVM artifacts (keeps K2_HOME data)
	rm -rf $(VENV) jvm/lib jvm/mvn.log
