# Entry points: `make demo` and `make test` install what they need on a fresh machine
# (deploy/setup.sh is idempotent), start the local services, then run.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# The locks are for Python 3.11 on Linux x86_64; `make lock LOCK_ARGS=--upgrade` moves every pin.
LOCK_PYTHON ?= python3.11
LOCK_VENV := .venv-lock
LOCK_ARGS ?=
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--all-build-deps --no-emit-find-links $(LOCK_ARGS)

.PHONY: help setup services demo test lint bench lock

help:
	@echo "make demo   install, start Kafka, run the demo"
	@echo "make test   install (with test packages), start Kafka and PostgreSQL, ruff, mypy, pytest"
	@echo "make lock   regenerate requirements.lock and requirements-test.lock from pyproject.toml"
	@echo "make setup | services | lint | bench"

setup:
	deploy/setup.sh

services:
	deploy/kafka.sh start
	if [ -x deploy/postgres.sh ]; then deploy/postgres.sh start; fi

demo: setup
	deploy/kafka.sh start
	$(PY) -m clearing.ops.demo

test:
	deploy/setup.sh --test
	$(MAKE) --no-print-directory services
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check clearing tests
	$(VENV)/bin/mypy

bench: setup
	deploy/kafka.sh start
	mkdir -p out
	$(VENV)/bin/clearing bench price --json out/bench-price.json
	$(VENV)/bin/clearing bench stream --json out/bench-stream.json

lock:
	[ -x $(LOCK_VENV)/bin/python ] || $(LOCK_PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q pip==26.3 pip-tools==7.6.2
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra test --constraint requirements.lock \
		--output-file requirements-test.lock pyproject.toml
