# The two commands a newcomer needs: `make up` (run everything) and `make test` (the whole suite).
# Everything is installed by these targets; nothing needs to be installed by hand.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := readmit ingest scorer alerts_web model_store fhir_mappings

.PHONY: up test install lint typecheck unit integration e2e browser assets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP) assets

assets:
	@if [ -x alerts_web/scripts/install_assets.sh ]; then ./alerts_web/scripts/install_assets.sh; fi

browser:
	./infra/scripts/install_browser.sh

up: install
	$(BIN)/readmit up

lint: $(STAMP)
	$(BIN)/ruff check $(PKGS) tests
	$(BIN)/ruff format --check $(PKGS) tests

typecheck: $(STAMP)
	$(BIN)/mypy $(PKGS)

unit: $(STAMP)
	$(BIN)/pytest -m "not integration and not e2e" -q

test: install browser lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
