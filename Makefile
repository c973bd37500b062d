# The two commands a newcomer needs: `make up` (run everything) and `make test` (the whole suite).
# Everything is installed by these targets; nothing needs to be installed by hand.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := readmit ingest scorer alerts_web model_store fhir_mappings

.PHONY: up test install lint typecheck unit test-tools assets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP) assets

# Bootstrap, Chart.js and Swagger UI come from npm (pinned by package-lock.json) and are
# copied into alerts_web/static/vendor/: the app serves them itself, never from a CDN.
ASSETS := alerts_web/static/vendor/.installed
$(ASSETS): alerts_web/package.json alerts_web/package-lock.json
	npm ci --prefix alerts_web --no-audit --no-fund --loglevel=error
	npm run --prefix alerts_web --silent vendor
	touch $(ASSETS)

assets: $(ASSETS)

test-tools:
	./infra/scripts/install_test_tools.sh

up: install
	$(BIN)/readmit up

lint: $(STAMP)
	$(BIN)/ruff check $(PKGS) tests
	$(BIN)/ruff format --check $(PKGS) tests

typecheck: $(STAMP)
	$(BIN)/mypy $(PKGS)

unit: $(STAMP)
	$(BIN)/pytest -m "not integration and not e2e" -q

test: install test-tools lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
