# Every target bootstraps its own virtual environment; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
BROWSER_STAMP := $(VENV)/.chromium

.PHONY: demo test test-fast check lint format bench install browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it via its executable path).
$(BROWSER_STAMP):
	@command -v chromium >/dev/null 2>&1 || scripts/install-chromium.sh
	touch $@

browser: $(BROWSER_STAMP)

demo: $(STAMP)
	$(BIN)/topup demo

test: $(STAMP) $(BROWSER_STAMP)
	scripts/ensure-postgres.sh
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# ruff (lint + format), mypy and the import contracts; `.ci/run` runs it before the tests.
check: lint

bench: $(STAMP)
	scripts/ensure-postgres.sh
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) test-output .pytest_cache
