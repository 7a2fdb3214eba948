# `make demo` and `make test` each set up everything on a fresh machine first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: setup system-deps vendor demo test lint serve clean

setup: system-deps $(STAMP)

# CBC (the MILP solver behind Pyomo), Chromium and its driver (headless tests of the plan page and the console)
# come from Debian.
system-deps:
	@if ! command -v cbc >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
	     || ! command -v chromedriver >/dev/null 2>&1; then \
	  echo "installing coinor-cbc, chromium and chromium-driver from Debian"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq coinor-cbc chromium chromium-driver >/dev/null; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Prefect's own database (SQLite in PREFECT_HOME unless PREFECT_API_DATABASE_CONNECTION_URL names another), migrated
# once as part of the set-up: the demo's first Prefect server would otherwise spend 15-20 s on it.
PREFECT_DB_STAMP := $(PREFECT_HOME)/.migrated
$(PREFECT_DB_STAMP): $(STAMP)
	mkdir -p $(PREFECT_HOME)
	$(VENV)/bin/prefect server database upgrade -y >/dev/null
	touch $@

demo: setup vendor $(PREFECT_DB_STAMP)
	$(VENV)/bin/truckroll demo

test: setup vendor
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

serve: setup vendor
	bash scripts/serve.sh

# The console's front-end libraries (Leaflet), pinned, from the npm registry into service/static/vendor/.
vendor:
	bash scripts/vendor.sh

clean:
	rm -rf $(VENV) .prefect truckroll.db
