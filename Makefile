# Two entry points for a fresh machine; each sets up .venv on first use and is idempotent.
#   make demo   runs the demo DAG (`dvc repro` on the embedded demo profile in params.yaml)
#   make test   runs the test suite
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test setup bench postgres

setup: $(STAMP) postgres

# PostgreSQL's server binaries for the team stack (python -m pipeline.stack, tests/e2e/test_team_stack.py):
# found on PATH or under /usr/lib/postgresql/*/bin (Debian), else Debian's package is installed (needs root)
postgres:
	@command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL (Debian's postgresql-15, or the distribution's default postgresql)"; \
	  apt-get update -qq && { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 \
	    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }; }

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.lock
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(PY) -m pipeline.params
	dvc repro

test: $(STAMP) postgres
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) bench/render_speed.py
