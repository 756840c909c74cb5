# rljudge — one machine, two commands: `make up` (serve) and `make test` (the whole suite).
# Everything installs into .venv; redis-server and firejail come from apt when missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PORT ?= 8000
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server firejail

.PHONY: install system-deps up test lint bench clean

install: system-deps $(STAMP)

# Debian packages the stack needs: installed only when their binary is missing.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v firejail >/dev/null || missing="$$missing firejail"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing with apt-get:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The venv is rebuilt only when a pyproject changes (idempotent otherwise).
$(STAMP): pyproject.toml client/pyproject.toml requirements-verl.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ./client -e '.[dev,trainer,integrations]'
	$(PIP) install -q --no-deps -r requirements-verl.txt
	@touch $(STAMP)

up: install
	$(VENV)/bin/rljudge up --port $(PORT) --workers $(WORKERS) --demo

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile

# The benchmark suite (issue 8): every workload and its baselines in one run (~8 min on 2 cores);
# writes loadtests/results/bench.{json,md,png}. `make bench BENCH_ARGS=--quick` for a short run.
bench: install
	$(PY) -m loadtests.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
