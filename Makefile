# Qorgau — `make run` serves the platform with demo data, `make test` runs every check.
# Everything installs into .venv from this repository's own files (pyproject.toml + constraints.txt).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.qorgau-installed
DEV_STAMP := $(VENV)/.qorgau-dev-installed
LOCALES := src/qorgau/locale
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install install-dev run test lint fmt i18n i18n-compile browser-deps bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Qorgau needs Python 3.11 or newer (set PYTHON=python3.11)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e .
	@$(MAKE) --no-print-directory i18n-compile
	@touch $@

install-dev: $(DEV_STAMP)

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

i18n-compile:
	$(VENV)/bin/pybabel compile -d $(LOCALES) -D messages

# Extract every user-facing string, merge it into the kk/ru/en catalogues, compile.
i18n: install
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k _ --no-location --sort-output -o $(LOCALES)/messages.pot src/qorgau
	$(VENV)/bin/pybabel update --no-wrap --ignore-obsolete --init-missing --no-fuzzy-matching --ignore-pot-creation-date -i $(LOCALES)/messages.pot -d $(LOCALES) -D messages -l kk
	$(VENV)/bin/pybabel update --no-wrap --ignore-obsolete --init-missing --no-fuzzy-matching --ignore-pot-creation-date -i $(LOCALES)/messages.pot -d $(LOCALES) -D messages -l ru
	$(VENV)/bin/pybabel update --no-wrap --ignore-obsolete --init-missing --no-fuzzy-matching --ignore-pot-creation-date -i $(LOCALES)/messages.pot -d $(LOCALES) -D messages -l en
	@$(MAKE) --no-print-directory i18n-compile

run: install
	$(VENV)/bin/qorgau serve --demo --host $(HOST) --port $(PORT)

browser-deps:
	@bash scripts/ensure-chromium.sh

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install-dev browser-deps lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install-dev
	$(PY) bench/ledger.py
	$(PY) bench/http.py
	$(PY) bench/matrix_sync.py
	$(PY) bench/pii.py
	$(PY) bench/reports.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info src/*.egg-info
