# Entry points: `make demo` and `make test` install what they need on a fresh machine
# (deploy/setup.sh is idempotent), start the local services, then run.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help setup services demo test lint bench

help:
	@echo "make demo   install, start Kafka, run the demo"
	@echo "make test   install (with test packages), start Kafka and PostgreSQL, lint, pytest"
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
	$(VENV)/bin/ruff check clearing tests
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

lint:
	$(VENV)/bin/ruff check clearing tests

bench: setup
	deploy/kafka.sh start
	mkdir -p out
	$(VENV)/bin/clearing bench price --json out/bench-price.json
	$(VENV)/bin/clearing bench stream --json out/bench-stream.json
