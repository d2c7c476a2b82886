# SupportLens: `make demo` sets up and runs the demo; `make test` sets up and runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export PLAYWRIGHT_BROWSERS_PATH ?= 0

.PHONY: setup demo test lint typecheck audit pytest services chromium clean

setup: $(VENV)/.installed node_modules/.installed chromium

$(VENV)/.installed: pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the product with its development tools, and the development package (simulators, demo, shop)
	$(BIN)/pip install --quiet -e '.[dev]' -e ./sandbox
	touch $@

node_modules/.installed: package.json package-lock.json scripts/vendor_assets.py
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python scripts/vendor_assets.py
	touch $@

# Browser tests drive Debian's Chromium; Playwright's own browser download is not used.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: run 'sudo apt-get install -y chromium' (needed by browser tests)"; fi; }

demo: setup
	$(BIN)/supportlens demo

services:
	@scripts/services.sh

lint:
	$(BIN)/ruff check src sandbox tests bench scripts
	$(BIN)/ruff format --check src sandbox tests bench scripts
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_sizes.py

typecheck:
	$(BIN)/mypy

# pip-audit against PyPI's vulnerability data: fails on a known vulnerability; when the service cannot be
# reached it says so loudly and fails only with AUDIT_STRICT=1 (set it where PyPI's vulnerability data is reachable). See scripts/audit_deps.py.
audit:
	$(BIN)/python scripts/audit_deps.py

# The suite runs once, on PostgreSQL: the server on 127.0.0.1:5432 when it answers, else an embedded
# one (tests/support/database.py).
pytest: services
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-report= $(PYTEST_ARGS)

test: setup lint typecheck audit
	rm -f .coverage
	$(MAKE) --no-print-directory pytest
	$(BIN)/coverage report --fail-under=80 --skip-covered --sort=cover | tail -25

clean:
	rm -rf $(VENV) node_modules src/supportlens/web/static/vendor .coverage .supportlens-demo artifacts
