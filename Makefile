# The two commands a newcomer needs: `make up` (run everything) and `make test` (the whole suite).
# Everything is installed by these targets; nothing needs to be installed by hand.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := readmit readmit_core ingest scorer alerts_web model_store fhir_mappings patient_state

LOCKS  := requirements/build.lock requirements/dev.lock
.PHONY: up test install lint typecheck unit test-tools assets clean lock audit

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Only locked versions, each checked against its hash: a rebuild next year installs what
# was tested today. The project itself goes in last, without resolving anything.
$(STAMP): $(LOCKS) pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/build.lock
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

# Re-resolve the locks from pyproject.toml (newest versions inside its ranges), then run
# `make test`. dev.lock is resolved first; runtime.lock (the image) is constrained to it,
# so production and the tests run the same versions.
UV_COMPILE := $(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes
lock: | $(BIN)/python
	test -x $(BIN)/uv || $(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(UV_COMPILE) requirements/build.in -o requirements/build.lock
	$(UV_COMPILE) pyproject.toml --extra embedded --extra dev -o requirements/dev.lock
	$(UV_COMPILE) pyproject.toml -c requirements/dev.lock -o requirements/runtime.lock
	rm -f $(STAMP)

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
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy $(PKGS)

unit: $(STAMP)
	$(BIN)/pytest -m "not integration and not e2e" -q

# Known vulnerabilities in the exact locked versions (PyPI's advisory data, via pip-audit);
# a finding fails the run: upgrade inside pyproject's ranges with `make lock`. --strict also
# fails when a package could not be looked up: an audit that checked nothing is no pass.
AUDIT_STRICT ?= --strict
audit: $(STAMP)
	$(BIN)/pip-audit $(AUDIT_STRICT) --progress-spinner off --disable-pip --require-hashes \
		-r requirements/dev.lock

test: install test-tools lint typecheck audit
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
