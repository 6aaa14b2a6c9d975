# recpipe: two commands do all the set-up on a fresh Debian/Ubuntu machine with Python 3.11.
#   make demo   the whole pipeline end to end on the embedded defaults
#   make test   the test suite (installs MariaDB for the integration tests when run as root)

SHELL  := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
SCALE  ?= small

.PHONY: demo test lint bench clean system-deps help

help:
	@echo "make demo   run the pipeline end to end on the embedded defaults (SCALE=$(SCALE))"
	@echo "make test   install everything the tests need and run them"
	@echo "make bench  run the benchmarks under bench/"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "recpipe needs Python 3.11 (Glue 5.0)"' \
	  || { echo "install Python 3.11 (Debian 12: apt-get install python3 python3-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip==25.3

# The embedded path only (source, ETL, training): no Spark, AWS or dev tools. pip, not uv:
# pip takes torch's CPU build.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[train,vectors,serve]'
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[train,vectors,serve,mysql,postgres,aws,spark,dev]'
	@touch $@ $(VENV)/.base

# at a terminal the service then stays up for the page until Ctrl-C; elsewhere the demo ends
demo: $(VENV)/.base
	@serve=; if [ -t 0 ] && [ -t 1 ]; then serve=--serve; fi; \
	echo "$(BIN)/recpipe demo --scale $(SCALE) $$serve"; $(BIN)/recpipe demo --scale $(SCALE) $$serve

# System packages the tests use: MariaDB (a private server is started by the tests), Java and
# the JDBC drivers for the Spark engine, PostgreSQL 15 without pgvector (an error case), wrk
# (bench/serve.py) and chromium (the page's browser tests; playwright drives it, never downloads one).
SYSTEM_PACKAGES := mariadb-server mariadb-client openjdk-17-jre-headless libmariadb-java \
                   libxerial-sqlite-jdbc-java libpostgresql-jdbc-java postgresql-15 wrk chromium
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing system packages: sudo apt-get install $$missing"; fi; \
	fi

# checkov scans terraform/ from its own virtualenv: it pins an older boto3 than recpipe's
CHECKOV := .venv-checkov
$(CHECKOV)/.ok: | $(BIN)/python
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip --disable-pip-version-check -q install checkov==3.3.30
	@touch $@

# mypy over the package; --strict over the contracts and the adapters' Protocols
lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/mypy --strict src/recpipe/contracts src/recpipe/adapters/base.py

test: system-deps $(VENV)/.dev $(CHECKOV)/.ok lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: system-deps $(VENV)/.dev
	$(BIN)/python bench/source.py
	$(BIN)/python bench/etl.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/vectors.py
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) .recpipe
